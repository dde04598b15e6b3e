/**
 * The parsed configuration: a knockd.conf plus knocktail's own directives.
 * Produced by `config/parse.ts`, consumed by every other stage; nothing here does I/O.
 */
import type { Cidr } from '../address.js';
import type { Protocol } from '../hit.js';

/** Where something was written: for error messages that name file and line. */
export interface SourceRef {
  file: string;
  line: number;
}

export interface KnockStep {
  proto: Protocol;
  port: number;
}

/** TCPFlags as two masks: bits that must be set, bits that must be clear; other bits don't matter. */
export interface FlagRule {
  set: number;
  clear: number;
}

export type ReopenPolicy = 'extend' | 'rerun';

export interface DoorConfig {
  /** Section name exactly as written (knockd does not trim it). */
  name: string;
  /** The section header line. */
  at: SourceRef;
  /** Steps of `Sequence`; for a one-time door, the sequence found in the file at load (may be empty when used up). */
  sequence: KnockStep[];
  /** Absolute path of the `One_Time_Sequences` file, or null. */
  oneTimeSequences: string | null;
  /** `Seq_Timeout`/`Timeout` in seconds (default 25); 0 means every multi-step attempt expires at once, as in knockd. */
  seqTimeout: number;
  tcpFlags: FlagRule;
  /** null = not configured; '' = configured empty (runs nothing; for *_6 also suppresses the IPv4 fallback). */
  startCommand: string | null;
  startCommand6: string | null;
  stopCommand: string | null;
  stopCommand6: string | null;
  /** `Cmd_Timeout` in seconds (default 10): the stop command runs this long after the start command finished. */
  cmdTimeout: number;
  /** Canonical `Target` address, or null (= the host's own addresses; in file mode, any destination). */
  target: string | null;
  /** `Allow_From`: only these sources can knock on this door; empty = anyone. */
  allowFrom: Cidr[];
  /** `Ignore_Repeats`: an exact repeat of the previous step (retransmitted SYN, `nc -z`) is ignored instead of failing the attempt. */
  ignoreRepeats: boolean;
  /** `On_Reopen`: what a repeated success does while this door's stop for that source is pending. */
  onReopen: ReopenPolicy;
  /** `Command_Limit` for this door in seconds (null = the global one): a command running longer is killed. */
  commandLimit: number | null;
}

export type Mode = 'file' | 'pcap';

export interface Options {
  /** `UseSyslog`: log to syslog as well (knockd's bare directive; `= yes|no` also accepted). */
  useSyslog: boolean;
  logFile: string | null;
  pidFile: string | null;
  /** `Interface = eth0[,eth1…]` (pcap mode). Empty = not configured. */
  interfaces: string[];
  /** `Mode = file|pcap` (default file). */
  mode: Mode;
  /**
   * `FirewallLog = PATH[,PATH…]` (default /var/log/kern.log); the word `journal` means the kernel journal, `kmsg`
   * the kernel log read from /dev/kmsg, `nflog:GROUP` an NFLOG group (isKernelSource).
   */
  firewallLogs: string[];
  /** `NflogPrefix`: the rule prefix an `nflog:GROUP` message must carry to count (null: any prefix). */
  nflogPrefix: string | null;
  /** `LogFormat = NAME[,NAME…]` (default iptables): formats tried in order on every line. */
  logFormats: string[];
  /** `StateDir = DIR` (default /var/lib/knocktail). */
  stateDir: string;
  /** `MaxSources`: hard cap on sources with a knock in progress (default 100000); the oldest are evicted first. */
  maxSources: number;
  /** `CommandLimit` in seconds (default 60; 0 = none): a start/stop command still running after this is killed. */
  commandLimit: number;
  /** `MaxLineLength` in bytes (default 65536): longer log lines are dropped with a warning. */
  maxLineLength: number;
  /** `AllowForgeableLog = yes`: permit following /var/log/syslog or /var/log/messages, where any user can forge lines. */
  allowForgeableLog: boolean;
  /** `OnStart`/`OnStop`: commands run when the daemon starts and stops. */
  onStartCommand: string | null;
  onStopCommand: string | null;
  /** `CloseOnExit = yes`: run every pending stop command when the daemon exits, instead of keeping them for the next start. */
  closeOnExit: boolean;
  /** `Promiscuous = yes` (pcap mode; default no). */
  promiscuous: boolean;
}

/** Fields a `<logformat>` block may define (Krzywinski's names plus flags, time and sport). */
export const LOG_FIELDS = ['required', 'interface', 'protocol', 'ipserver', 'ipclient', 'port', 'flags', 'time', 'sport'] as const;
export type LogField = (typeof LOG_FIELDS)[number];

export interface LogFormatBlock {
  name: string;
  at: SourceRef;
  /** Raw regex text per field, with where it was written. */
  fields: Partial<Record<LogField, { pattern: string; at: SourceRef }>>;
}

export interface Diagnostic {
  at: SourceRef;
  message: string;
  /** How to fix it, when there is something to say. */
  hint?: string;
}

export interface Config {
  /** Absolute path of the main config file. */
  path: string;
  options: Options;
  /** Where each option was set (key = Options property name). */
  optionsAt: Partial<Record<keyof Options, SourceRef>>;
  doors: DoorConfig[];
  logFormats: LogFormatBlock[];
  /** Accepted but worth a look (printed by check-config and at start-up). */
  warnings: Diagnostic[];
}

/** Formats a diagnostic as `file:line: message` plus an indented `fix:` line. */
export function formatDiagnostic(d: Diagnostic): string {
  return `${d.at.file}:${d.at.line}: ${d.message}${d.hint ? `\n  fix: ${d.hint}` : ''}`;
}

/** A config that cannot be used; carries every problem found, not just the first. */
export class ConfigError extends Error {
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
    this.name = 'ConfigError';
    this.diagnostics = diagnostics;
  }
}

/** FirewallLog values that name no file but a kernel source: the journal, /dev/kmsg, an NFLOG group. */
export function isKernelSource(log: string): boolean {
  return log === 'journal' || log === 'kmsg' || /^nflog:\d+$/.test(log);
}
