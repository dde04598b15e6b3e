/**
 * The trust model of file mode: whoever can write the followed log can knock. kern.log is written only
 * from the kernel's messages (rsyslog turns a user's `logger -p kern.*` into user.*), but any local user
 * can put a line shaped exactly like a kernel LOG line into /var/log/syslog or /var/log/messages with
 * `logger -t kernel` (fixtures/real/forged/). Following those needs an explicit `AllowForgeableLog = yes`.
 * The check goes by file name (after symlinks): it catches the usual places, not a custom rsyslog rule that
 * sends user.* somewhere else, which the README's trust model section explains.
 */
import { realpathSync } from 'node:fs';
import { basename } from 'node:path';
import { isLogPattern } from '../config/log-pattern.js';
import { type Config, type Diagnostic, isKernelSource } from '../config/types.js';

/**
 * Files every local user can get arbitrary text into through syslog(3) / logger(1). ufw.log is one: ufw's
 * rsyslog rule (/etc/rsyslog.d/20-ufw.conf) copies every message containing "[UFW " there, whatever its facility.
 */
const FORGEABLE = new Set([
  'syslog', 'messages', 'user.log', 'daemon.log', 'auth.log', 'debug', 'ufw.log',
  // Debian's rsyslog.conf also writes these from facilities any user may use (logger -p mail.warning).
  'mail.log', 'mail.err', 'mail.warn', 'mail.info', 'cron.log', 'lpr.log',
]);

/** Names that, by convention, hold kernel messages only (rsyslog's kern.* file, a custom firewall file, ulogd's). */
const KERNEL_ONLY = new Set(['kern.log', 'kernel.log', 'firewall.log', 'iptables.log', 'nftables.log', 'syslogemu.log']);

/** The resolved name of a log path (a symlink to /var/log/syslog is /var/log/syslog), or the path itself. */
function realName(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** The log's file name without a rotation suffix (syslog.1, messages.2.gz, syslog-20261121 → syslog…). */
function logName(path: string): string {
  return basename(realName(path)).replace(/(?:\.\d+|-\d{8})?(?:\.gz)?$/, '');
}

/** Whether `path` is (or points to) a log any user can write lines into. */
export function isForgeableLog(path: string): boolean {
  return FORGEABLE.has(logName(path));
}

/** Problems with the configured FirewallLog entries (empty when the config is trusted or explicitly allows it). */
export function untrustedLogProblems(config: Config): Diagnostic[] {
  if (config.options.allowForgeableLog) return [];
  const at = config.optionsAt.firewallLogs ?? { file: config.path, line: 0 };
  return config.options.firewallLogs
    .filter((path) => !isKernelSource(path) && isForgeableLog(path))
    .map((path) => ({
      at,
      message: `refusing to follow ${path}: any local user can write lines there that look exactly like the kernel's (logger -t kernel), so anyone could knock`,
      hint: 'follow /var/log/kern.log (or FirewallLog = journal) instead; if you accept the risk, add "AllowForgeableLog = yes" to [options]',
    }));
}

/**
 * Warnings for followed logs knocktail cannot place: neither known to be kernel-only nor known to be
 * forgeable (a file of a custom syslog rule). Whoever can write to them can knock.
 */
export function uncertainLogWarnings(config: Config): Diagnostic[] {
  const at = config.optionsAt.firewallLogs ?? { file: config.path, line: 0 };
  return config.options.firewallLogs
    .filter((path) => !isKernelSource(path) && !isForgeableLog(path) && !KERNEL_ONLY.has(logName(path)))
    .map((path) =>
      isLogPattern(path)
        ? {
            at,
            message: `${path}: make sure your syslog collector writes only the firewalls' own messages into these files: anyone who can put a line into one can knock`,
            hint: 'see "Many firewalls, one knocktail" in the README: TCP or TLS from the firewalls, one file per sender address, firewall messages only',
          }
        : {
            at,
            message: `${path}: make sure only the kernel (or ulogd) writes this file: anyone who can put a line into it can knock`,
            hint: 'see "Trust model" in the README; rsyslog: a kern.* rule, no other selector, for this file',
          },
    );
}
