# bash completion for knocktail: commands, options, and door names.
# Install: copy to /usr/share/bash-completion/completions/knocktail (or source it from ~/.bashrc).
#
# Commands and options are read from knocktail itself (`knocktail help`, `knocktail COMMAND --help`),
# once per shell, so they always match the installed version. Door names (for a command whose usage
# names a DOOR) are the [sections] of the config given with -c, or of /etc/knocktail.conf.

# The options of `knocktail [COMMAND] --help`, one per line: "--long=VALUE -s" (VALUE empty when it
# takes none, -s absent when it has no short form).
_knocktail_options() {
    local knocktail=$1 command=$2
    # Option lines start within a few blanks: "  -c, --config FILE   text" or "      --json   text".
    "$knocktail" ${command:+"$command"} --help 2>/dev/null |
        sed -n -E 's/^ {2,6}((-[A-Za-z0-9]), )?(--[a-z0-9-]+)( ([A-Z][A-Z_]*))?( .*)?$/\3=\5 \2/p'
}

# The [sections] of a config file but [options]: its doors.
_knocktail_doors() {
    local config=$1
    [[ -r $config ]] || return
    sed -n -E 's/^[[:space:]]*\[([^]]+)\][[:space:]]*$/\1/p' -- "$config" | grep -v -x -e options
}

_knocktail() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local knocktail=${COMP_WORDS[0]} command= config=/etc/knocktail.conf i
    COMPREPLY=()

    if [[ -z ${_knocktail_commands+set} ]]; then
        _knocktail_commands=$("$knocktail" help 2>/dev/null | sed -n -E 's/^(usage:| ) +knocktail ([a-z][a-z-]*) .*/\2/p' | tr '\n' ' ')
    fi
    if (( COMP_CWORD > 1 )) && [[ " $_knocktail_commands " == *" ${COMP_WORDS[1]} "* ]]; then
        command=${COMP_WORDS[1]}
    fi
    for (( i = 1; i < COMP_CWORD; i++ )); do
        case ${COMP_WORDS[i]} in
            -c|--config) config=${COMP_WORDS[i+1]} ;;
            --config=*) config=${COMP_WORDS[i]#--config=} ;;
        esac
    done

    local cache=_knocktail_opts_${command//-/_}
    if [[ -z ${!cache+set} ]]; then
        printf -v "$cache" '%s' "$(_knocktail_options "$knocktail" "$command")"
    fi
    local options=${!cache} long short value
    # The value an option before the cursor asks for.
    while read -r long short; do
        value=${long#*=}
        long=${long%%=*}
        [[ -n $long && ( $prev == "$long" || ( -n $short && $prev == "$short" ) ) ]] || continue
        case $value in
            '') break ;;
            FILE|CONFIG) COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null; return ;;
            DIR) COMPREPLY=($(compgen -d -- "$cur")); compopt -o filenames 2>/dev/null; return ;;
            IF) COMPREPLY=($(compgen -W "any $(ls /sys/class/net 2>/dev/null)" -- "$cur")); return ;;
            *) return ;;
        esac
    done <<< "$options"

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(sed -E 's/=[A-Z_]*//' <<< "$options")" -- "$cur"))
        return
    fi
    if (( COMP_CWORD == 1 )); then
        COMPREPLY=($(compgen -W "$_knocktail_commands" -- "$cur"))
        return
    fi
    case $command in
        help) COMPREPLY=($(compgen -W "$_knocktail_commands" -- "$cur")) ;;
        '') ;;
        *)
            local usage
            usage=$("$knocktail" help "$command" 2>/dev/null | head -n 1)
            if [[ $usage == *DOOR* ]]; then
                local IFS=$'\n' hosts=
                [[ $usage == *HOST* ]] && hosts=$(compgen -A hostname -- "$cur")
                COMPREPLY=($(compgen -W "$(_knocktail_doors "$config")" -- "$cur") $hosts)
            elif [[ $usage == *FILE* ]]; then
                COMPREPLY=($(compgen -f -- "$cur"))
                compopt -o filenames 2>/dev/null
            fi
            ;;
    esac
}

complete -F _knocktail knocktail
