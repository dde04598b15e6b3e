/**
 * A parsed config in words: `knocktail check-config` prints explainConfig(), `-D` prints
 * debugConfigLines() (knockd's `config: …` lines of `-D`).
 */
import { TCP_FLAG_NAMES } from '../hit.js';
import { isLogPattern, namesFirewalls } from './log-pattern.js';
import { sequenceBits } from './rolling.js';
import { describeSecretFile } from './secret-file.js';
import { ADDRESS_KINDS, dataKnocks } from '../knocks/format.js';
import { formatRange } from './encrypted-door.js';
import { flagRuleTokens, formatSequence } from './sequence.js';
import { formatDiagnostics, type Config, type DoorConfig, type FlagRule, type KnockStep, type Options, type RollingConfig } from './types.js';

export function explainConfig(config: Config): string {
  const out = [`config ${config.path}`, ...globalLines(config.options).map((line) => `  ${line}`)];
  if (config.logFormats.length > 0) {
    out.push(`  logformat blocks defined here: ${config.logFormats.map((block) => `${block.name} (line ${block.at.line})`).join(', ')}`);
  }
  if (config.doors.length === 0) out.push('', 'no doors: nothing can open');
  for (const door of config.doors) out.push('', ...doorLines(door, config.options));
  if (config.warnings.length > 0) {
    out.push('', `${config.warnings.length} warning${config.warnings.length === 1 ? '' : 's'}:`);
    out.push(...formatDiagnostics(config.warnings).split('\n').map((line) => `  ${line}`));
  }
  return `${out.join('\n')}\n`;
}

function describeLog(log: string): string {
  if (log === 'journal') return 'the kernel journal';
  if (log === 'kmsg') return 'the kernel log (/dev/kmsg)';
  if (log.startsWith('nflog:')) return `NFLOG group ${log.slice(6)}`;
  return log;
}

function globalLines(options: Options): string[] {
  const lines =
    options.mode === 'file'
      ? [
          `mode: file, following ${options.firewallLogs.map(describeLog).join(', ')}${options.allowForgeableLog ? ' (forgeable logs allowed)' : ''}`,
          ...(options.nflogPrefix !== null ? [`NFLOG messages count only with the rule prefix "${options.nflogPrefix}"`] : []),
          `log formats, tried in order: ${options.logFormats.join(', ')}`,
        ]
      : [
          `mode: pcap, capturing on ${options.interfaces.length > 0 ? options.interfaces.join(', ') : '(no Interface set)'}${options.promiscuous ? ', promiscuous' : ''}`,
        ];
  lines.push(`state directory: ${options.stateDir}`);
  const files = options.mode === 'file' && options.firewallLogs.some(isLogPattern) ? `; at most ${options.maxFollowedFiles} files followed per pattern` : '';
  lines.push(`limits: ${options.maxSources} sources with a knock in progress; knocks older than ${options.maxKnockAge} s refused; ${commandLimit(options.commandLimit)}; log lines over ${options.maxLineLength} bytes dropped${files}`);
  const logging = [options.logFile, options.useSyslog ? 'syslog' : null].filter((sink) => sink !== null);
  if (logging.length > 0) lines.push(`logging to: ${logging.join(', ')}`);
  if (options.pidFile !== null) lines.push(`pid file: ${options.pidFile}`);
  if (options.onStartCommand !== null) lines.push(`at daemon start, run: ${options.onStartCommand}`);
  if (options.onStopCommand !== null) lines.push(`at daemon stop, run: ${options.onStopCommand}`);
  lines.push(options.closeOnExit ? 'at exit: pending stop commands run at once' : 'at exit: pending stop commands are kept for the next start');
  return lines;
}

/** Command_Limit in words (0 = no limit). */
function commandLimit(limit: number): string {
  return limit === 0 ? 'commands are never killed' : `commands killed after ${limit} s`;
}

function doorLines(door: DoorConfig, options: Options): string[] {
  const destination = door.target ?? (options.mode === 'file' ? 'any destination' : "this host's addresses");
  const sources = door.allowFrom.length > 0 ? `only from ${door.allowFrom.map((cidr) => cidr.text).join(', ')}` : 'from anyone';
  const lines = [`door [${door.name}] (line ${door.at.line})`];
  if (door.oneTimeSequences !== null) {
    lines.push(`  one-time sequences: the first unused line of ${door.oneTimeSequences}`);
  }
  let delay = `${door.cmdTimeout} s`;
  if (door.encrypted !== null) {
    lines.push(...encryptedLines(door, destination, sources));
    delay = `the duration the message asks for (at most ${door.encrypted.maxDuration} s)`;
  } else if (door.rolling !== null) {
    const knock = door.rolling.length === 1 ? 'knock to' : `knocks within ${door.seqTimeout} s of the first knock, to`;
    lines.push(...rollingLines(door.rolling, door.tcpFlags), `  ${knock} ${destination}, ${sources}`);
    lines.push(`  any other knock on the range${door.ignoreRepeats ? ' (but an exact repeat of the previous one, which is ignored)' : ', a repeat included,'} fails the attempt`);
  } else {
    const knock = door.sequence.length === 1 ? 'knock to' : `knocks within ${door.seqTimeout} s of the first knock, to`;
    lines.push(`  ${knock} ${destination}, ${sources}${door.sequence.length > 0 ? ':' : ''}`);
    door.sequence.forEach((step, index) => lines.push(`    ${index + 1}. ${describeStep(step, door.tcpFlags)}`));
    lines.push(door.ignoreRepeats ? '  an exact repeat of the previous knock is ignored' : '  any other monitored knock, a repeat included, fails the attempt');
  }
  const ipv4: Commands = { start: door.startCommand, stop: door.stopCommand };
  const ipv6: Commands = { start: door.startCommand6 ?? door.startCommand, stop: door.stopCommand6 ?? door.stopCommand };
  if (door.startCommand6 === null && door.stopCommand6 === null) {
    lines.push('  on success (IPv4 and IPv6):', ...commandLines(ipv4, delay));
  } else {
    const sources6 = [door.startCommand6 === null ? 'Start_Command' : 'Start_Command_6'];
    if (ipv6.stop !== null) sources6.push(door.stopCommand6 === null ? 'Stop_Command' : 'Stop_Command_6');
    lines.push('  on success from IPv4:', ...commandLines(ipv4, delay));
    lines.push(`  on success from IPv6 (${sources6.join(', ')}):`, ...commandLines(ipv6, delay));
  }
  if (runsStop(ipv4) || runsStop(ipv6)) {
    lines.push(
      door.onReopen === 'extend'
        ? '  opened again while its stop is pending: the stop is postponed'
        : '  opened again while its stop is pending: the start command runs again',
    );
  }
  if (door.commandLimit !== null) lines.push(`  ${commandLimit(door.commandLimit)} (Command_Limit)`);
  if (namesFirewalls(options)) {
    lines.push(
      door.knockScope === 'any'
        ? '  the knocks of a sequence may pass through different firewalls; commands act on the firewall of the last one (Knock_Scope = any)'
        : "  the knocks of a sequence count only when one firewall logged them all (Knock_Scope = firewall)",
    );
  }
  return lines;
}

/** A rolling door in words: never its secret, never a current sequence. */
function rollingLines(rolling: RollingConfig, flags: FlagRule): string[] {
  const { ports, length, period } = rolling;
  const size = ports.last - ports.first + 1;
  const protocol = ports.proto === 'udp' ? 'UDP' : `TCP with ${describeFlags(flags)}`;
  return [
    `  rolling sequence: ${length} distinct port${length === 1 ? '' : 's'} of ${ports.first}-${ports.last} over ${protocol} (${size} ports, about 2^${Math.floor(sequenceBits(size, length))} possible sequences), a new one every ${period} s`,
    `    the sequences of the periods just before and after count too (clocks ${period} s apart still work); each opens the door once, for one knocker`,
    `  secret: ${describeSecretFile(rolling.secret)}`,
  ];
}

/** An encrypted door in words; the key file is described by its checks, never by its content. */
function encryptedLines(door: DoorConfig, destination: string, sources: string): string[] {
  const encrypted = door.encrypted!;
  const size = encrypted.span.reduce((sum, range) => sum + range.last - range.first + 1, 0);
  const bits = Math.log2(size);
  const knocks = ADDRESS_KINDS.map((kind) => 1 + dataKnocks(kind, bits));
  const protocols = new Set(encrypted.span.map((range) => range.proto));
  return [
    `  encrypted knocks (docs/encrypted-knocks.md) to ${destination}, ${sources}, each message within ${door.seqTimeout} s of its first knock:`,
    `    port span: ${encrypted.span.map((range) => formatRange(range)).join(', ')} (${size} ${[...protocols].join('/').toUpperCase()} ports = 2^${bits})`,
    `    a message is ${knocks[0]} knocks, ${knocks[1]} naming an IPv4 address, ${knocks[2]} naming an IPv6 address`,
    `    key file: ${describeSecretFile(encrypted.key)}`,
    `    may ask to open (Allowed_Ports): ${encrypted.allowedPorts.map((range) => formatRange(range)).join(', ')}; for 1 to ${encrypted.maxDuration} s`,
    `    the message's timestamp must be within ${encrypted.window} s of the knock's time; each message opens once`,
    encrypted.trustKnockIp
      ? '    a message naming an address opens for that address, wherever the knocks came from (Trust_Knock_IP)'
      : '    a message naming another address than the knocks came from opens nothing',
  ];
}

function describeStep(step: KnockStep, flags: FlagRule): string {
  if (step.proto === 'udp') return `UDP port ${step.port}`;
  return `TCP port ${step.port} (${describeFlags(flags)})`;
}

function describeFlags(rule: FlagRule): string {
  const words: string[] = [];
  for (const [name, bit] of TCP_FLAG_NAMES) {
    if (rule.set & bit) words.push(`${name} set`);
    else if (rule.clear & bit) words.push(`${name} clear`);
  }
  return words.length > 0 ? words.join(', ') : 'any flags';
}

/** The commands one address family gets, after knockd's IPv6 fallback to the IPv4 ones. */
interface Commands {
  start: string | null;
  stop: string | null;
}

/** knockd runs nothing, not even the stop command, unless the start command is non-empty. */
function runsStop(commands: Commands): boolean {
  return !!commands.start && commands.stop !== null;
}

/** `delay`: when the stop runs, e.g. "10 s". */
function commandLines({ start, stop }: Commands, delay: string): string[] {
  if (start === null) return [`    nothing runs (no start command${stop !== null ? ', so the stop command never runs' : ''})`];
  if (start === '') return ['    nothing runs (empty start command)'];
  const lines = [`    run: ${start}`];
  if (stop !== null) lines.push(`    ${delay} after it finishes, ${stop === '' ? 'nothing (empty stop command)' : `run: ${stop}`}`);
  return lines;
}

/** Labels of knockd's option lines, then knocktail's own, as `config: LABEL: VALUE`. */
const OPTION_LABELS: ReadonlyArray<readonly [keyof Options, string]> = [
  ['logFile', 'log file'],
  ['pidFile', 'pid file'],
  ['interfaces', 'interface'],
  ['mode', 'mode'],
  ['firewallLogs', 'firewall log'],
  ['maxFollowedFiles', 'max followed files'],
  ['logFormats', 'log format'],
  ['nflogPrefix', 'nflog prefix'],
  ['stateDir', 'state dir'],
  ['maxSources', 'max sources'],
  ['maxKnockAge', 'max knock age'],
  ['commandLimit', 'command limit'],
  ['maxLineLength', 'max line length'],
  ['allowForgeableLog', 'allow forgeable log'],
  ['onStartCommand', 'on start'],
  ['onStopCommand', 'on stop'],
  ['closeOnExit', 'close on exit'],
  ['promiscuous', 'promiscuous'],
];

/** knockd's `-D` config lines: the options that were set (in file order), then each door. */
export function debugConfigLines(config: Config): string[] {
  const { options, optionsAt } = config;
  const lines: string[] = [];
  const set = (Object.keys(optionsAt) as (keyof Options)[]).sort((a, b) => optionsAt[a]!.line - optionsAt[b]!.line);
  if (set.length > 0) lines.push("config: new section: 'options'");
  for (const property of set) {
    if (property === 'useSyslog') {
      if (options.useSyslog) lines.push('config: usesyslog');
      continue;
    }
    const label = OPTION_LABELS.find(([key]) => key === property)![1];
    lines.push(`config: ${label}: ${debugValue(options[property])}`);
  }
  for (const door of config.doors) lines.push(...doorDebugLines(door));
  return lines;
}

function debugValue(value: Options[keyof Options]): string {
  if (Array.isArray(value)) return value.join(',');
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return String(value ?? '');
}

function doorDebugLines(door: DoorConfig): string[] {
  const name = door.name;
  const lines = [`config: new section: '${name}'`];
  if (door.target !== null) lines.push(`config: ${name}: target: ${door.target}`);
  if (door.oneTimeSequences !== null) lines.push(`config: ${name}: one time sequences file: ${door.oneTimeSequences}`);
  if (door.sequence.length > 0) lines.push(`config: ${name}: sequence: ${formatSequence(door.sequence)}`);
  if (door.rolling !== null) {
    const { secret, ports, length, period } = door.rolling;
    lines.push(
      `config: ${name}: sequence_secret: ${secret.path}`,
      `config: ${name}: sequence_ports: ${ports.first}-${ports.last}:${ports.proto}`,
      `config: ${name}: sequence_length: ${length}`,
      `config: ${name}: sequence_period: ${period}`,
    );
  }
  lines.push(`config: ${name}: seq_timeout: ${door.seqTimeout}`);
  for (const token of flagRuleTokens(door.tcpFlags)) lines.push(`config: tcp flag: ${token}`);
  if (door.startCommand !== null) lines.push(`config: ${name}: start_command: ${door.startCommand}`);
  if (door.startCommand6 !== null) lines.push(`config: ${name}: start_command_6: ${door.startCommand6}`);
  lines.push(`config: ${name}: cmd_timeout: ${door.cmdTimeout}`);
  if (door.stopCommand !== null) lines.push(`config: ${name}: stop_command: ${door.stopCommand}`);
  if (door.stopCommand6 !== null) lines.push(`config: ${name}: stop_command_6: ${door.stopCommand6}`);
  if (door.allowFrom.length > 0) lines.push(`config: ${name}: allow_from: ${door.allowFrom.map((cidr) => cidr.text).join(',')}`);
  if (door.ignoreRepeats) lines.push(`config: ${name}: ignore_repeats: yes`);
  if (door.onReopen !== 'extend') lines.push(`config: ${name}: on_reopen: ${door.onReopen}`);
  if (door.commandLimit !== null) lines.push(`config: ${name}: command_limit: ${door.commandLimit}`);
  const encrypted = door.encrypted;
  if (encrypted !== null) {
    lines.push(`config: ${name}: knock_key: ${encrypted.key.path}`);
    lines.push(`config: ${name}: port_span: ${encrypted.span.map((range) => formatRange(range)).join(',')}`);
    lines.push(`config: ${name}: allowed_ports: ${encrypted.allowedPorts.map((range) => formatRange(range)).join(',')}`);
    lines.push(`config: ${name}: max_duration: ${encrypted.maxDuration}`);
    lines.push(`config: ${name}: knock_window: ${encrypted.window}`);
    lines.push(`config: ${name}: trust_knock_ip: ${encrypted.trustKnockIp ? 'yes' : 'no'}`);
  }
  if (door.knockScope !== 'firewall') lines.push(`config: ${name}: knock_scope: ${door.knockScope}`);
  return lines;
}
