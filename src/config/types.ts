/**
 * The parsed configuration: a knockd.conf plus knocktail's own directives.
 * Produced by `config/parse.ts`, consumed by every other stage; nothing here does I/O.
 */
import type { Cidr } from '../address.js';
import type { Protocol } from '../hit.js';
import { capRepeats, clip, messageKind, moreLikeThis, safeText } from '../safe-text.js';
import type { SecretFile } from './secret-file.js';

/** Where something was written: for error messages that name file and line. */
export interface SourceRef {
  file: string;
  /** 1-based; 0 when the value was not written on a line (a default, the command line). */
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

export type KnockScope = 'firewall' | 'any';

/** Ports `first` to `last` (inclusive) of one protocol. */
export interface PortRange {
  proto: Protocol;
  first: number;
  last: number;
}

/** A rolling door's sequence source (docs/rolling-sequences.md): a new sequence of the range every period. */
export interface RollingConfig {
  /** `Sequence_Secret`: the checked key file. */
  secret: SecretFile;
  /** `Sequence_Ports`. */
  ports: PortRange;
  /** `Sequence_Length`: knocks per sequence (distinct ports). */
  length: number;
  /** `Sequence_Period` in seconds. */
  period: number;
}

/** A door opened by encrypted knocks (docs/encrypted-knocks.md); parsed by config/encrypted-door.ts. */
export interface EncryptedKnocks {
  /** `Knock_Key`: the key file, read and checked at load. */
  key: SecretFile;
  /** `Port_Span`: 2^k ports, in the order written (the order gives each port its value). */
  span: PortRange[];
  /** `Allowed_Ports`: the door ports a message may ask for (the protocol is the commands' business). */
  allowedPorts: Array<{ first: number; last: number }>;
  /** `Max_Duration`: the longest open a message may ask for, seconds. */
  maxDuration: number;
  /** `Knock_Window`: how far a message's timestamp may be from the knock's time, seconds. */
  window: number;
  /** `Trust_Knock_IP`: open for the address a message names, even when the knocks came from another. */
  trustKnockIp: boolean;
}

/** What an accepted encrypted message asks a door for (docs/encrypted-knocks.md): only doors with Knock_Key have one. */
export interface OpenRequest {
  port: number;
  /** Seconds; the stop runs this long after the start instead of Cmd_Timeout. */
  duration: number;
  /** Canonical address the knocks came from (the door opens for %IP%, which Trust_Knock_IP may make another). */
  knockIp: string;
}

export interface DoorConfig {
  /** Section name exactly as written (knockd does not trim it). */
  name: string;
  /** The section header line. */
  at: SourceRef;
  /** Steps of `Sequence`; for a one-time door, the sequence found in the file at load (may be empty when used up); empty for a rolling door. */
  sequence: KnockStep[];
  /** Absolute path of the `One_Time_Sequences` file, or null. */
  oneTimeSequences: string | null;
  /** The `Sequence_*` directives of a rolling door, or null. */
  rolling: RollingConfig | null;
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
  /**
   * `Knock_Scope`: with logs of several firewalls, whether a sequence must be knocked on one firewall (`firewall`,
   * the default: each firewall's knocks count apart) or may be spread over several (`any`).
   */
  knockScope: KnockScope;
  /** The line of each directive written in this door's section, by its documented name (for later checks' file:line). */
  lines?: Readonly<Record<string, number>>;
  /** Set by `Knock_Key` and its companions: the door opens for encrypted messages, not for a `Sequence`. */
  encrypted: EncryptedKnocks | null;
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
   * the kernel log read from /dev/kmsg, `nflog:GROUP` an NFLOG group (isKernelSource); a path with `*`, `?` or
   * `{firewall}` is a pattern of many files (config/log-pattern.ts).
   */
  firewallLogs: string[];
  /** `NflogPrefix`: the rule prefix an `nflog:GROUP` message must carry to count (null: any prefix). */
  nflogPrefix: string | null;
  /** `MaxFollowedFiles` (default 1000): most files a FirewallLog pattern follows at once; beyond it, a warning names the others. */
  maxFollowedFiles: number;
  /** `LogFormat = NAME[,NAME…]` (default iptables): formats tried in order on every line. */
  logFormats: string[];
  /** `StateDir = DIR` (default /var/lib/knocktail). */
  stateDir: string;
  /** `MaxSources`: hard cap on sources with a knock in progress (default 100000); the oldest are evicted first. */
  maxSources: number;
  /**
   * `MaxKnockAge` in seconds (default 60): the daemon refuses a knock stamped longer ago than this (or ahead of
   * its clock), so old log lines read again can never open a door; a backlog read after a restart still counts.
   */
  maxKnockAge: number;
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

/**
 * A diagnostic as `file:line: message` plus an indented `fix:` line (`file: message` when it has no line).
 * Its text may come from a hostile file: control characters are escaped and an overlong message is clipped.
 */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.at.line > 0 ? `${d.at.file}:${d.at.line}` : d.at.file;
  return safeText(`${where}: ${clip(d.message)}${d.hint ? `\n  fix: ${clip(d.hint)}` : ''}`);
}

/** Diagnostics one per entry, at most a few of each kind ("… and 3,812 more like this"), so a binary file cannot flood a terminal. */
export function formatDiagnostics(diagnostics: readonly Diagnostic[]): string {
  return capRepeats(diagnostics, (d) => messageKind(`${d.at.file}: ${d.message}`))
    .map(({ item, more }) => (more > 0 ? `${formatDiagnostic(item)}\n${moreLikeThis(more)} in ${safeText(item.at.file)}` : formatDiagnostic(item)))
    .join('\n');
}

/** A config that cannot be used; carries every problem found, not just the first. */
export class ConfigError extends Error {
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic[]) {
    super(formatDiagnostics(diagnostics));
    this.name = 'ConfigError';
    this.diagnostics = diagnostics;
  }
}

/** FirewallLog values that name no file but a kernel source: the journal, /dev/kmsg, an NFLOG group. */
export function isKernelSource(log: string): boolean {
  return log === 'journal' || log === 'kmsg' || nflogGroup(log) !== null;
}

/** `nflog:5` → 5; null when the text is not such a name. */
export function nflogGroup(name: string): number | null {
  const match = /^nflog:(\d{1,5})$/.exec(name);
  if (match === null) return null;
  const group = Number(match[1]);
  return group <= 65535 ? group : null;
}
