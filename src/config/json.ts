/**
 * A parsed config as JSON for `knocktail check-config --json` (the shape is documented in README.md,
 * "`knocktail check-config`"): options keyed by their directive names, doors with what they listen for and run.
 */
import { TCP_FLAG_NAMES } from '../hit.js';
import { OPTION_NAMES } from './parse.js';
import type { Config, Diagnostic, DoorConfig, FlagRule, LogFormatBlock, Options } from './types.js';

export interface DoorJson {
  name: string;
  line: number;
  /** The door's Sequence; empty for a one-time door, whose sequence is the first unused line of its file. */
  sequence: Array<{ port: number; protocol: 'tcp' | 'udp' }>;
  oneTimeSequences: string | null;
  seqTimeout: number;
  /** TCPFlags: flags that must be set, and flags that must be clear (upper-case names). */
  tcpFlags: { set: string[]; clear: string[] };
  target: string | null;
  allowFrom: string[];
  ignoreRepeats: boolean;
  onReopen: DoorConfig['onReopen'];
  cmdTimeout: number;
  commandLimit: number | null;
  /** Knock_Scope: `firewall` or `any` (matters with a FirewallLog pattern that names firewalls). */
  knockScope: DoorConfig['knockScope'];
  /** As written (null: not set); knockd's IPv6 fallback to the IPv4 commands applies. */
  commands: { start: string | null; stop: string | null; start6: string | null; stop6: string | null };
}

export interface FormatJson {
  name: string;
  /** Where its block is: a shipped formats/*.conf file or the config. */
  file: string;
  line: number;
}

export interface ProblemJson {
  severity: 'error' | 'warning';
  file: string;
  /** 0 when the problem is about the whole file. */
  line: number;
  message: string;
  hint: string | null;
}

export function optionsJson(options: Options): Record<string, Options[keyof Options]> {
  return Object.fromEntries(OPTION_NAMES.map(([directive, property]) => [directive, options[property]]));
}

export function doorJson(door: DoorConfig): DoorJson {
  return {
    name: door.name,
    line: door.at.line,
    sequence: door.sequence.map((step) => ({ port: step.port, protocol: step.proto })),
    oneTimeSequences: door.oneTimeSequences,
    seqTimeout: door.seqTimeout,
    tcpFlags: flagsJson(door.tcpFlags),
    target: door.target,
    allowFrom: door.allowFrom.map((cidr) => cidr.text),
    ignoreRepeats: door.ignoreRepeats,
    onReopen: door.onReopen,
    cmdTimeout: door.cmdTimeout,
    commandLimit: door.commandLimit,
    knockScope: door.knockScope,
    commands: { start: door.startCommand, stop: door.stopCommand, start6: door.startCommand6, stop6: door.stopCommand6 },
  };
}

function flagsJson(rule: FlagRule): DoorJson['tcpFlags'] {
  return {
    set: TCP_FLAG_NAMES.filter(([, bit]) => (rule.set & bit) !== 0).map(([name]) => name),
    clear: TCP_FLAG_NAMES.filter(([, bit]) => (rule.clear & bit) !== 0).map(([name]) => name),
  };
}

export function formatJson(block: LogFormatBlock): FormatJson {
  return { name: block.name, file: block.at.file, line: block.at.line };
}

export function problemJson(severity: ProblemJson['severity'], d: Diagnostic): ProblemJson {
  return { severity, file: d.at.file, line: d.at.line, message: d.message, hint: d.hint ?? null };
}

/** The doors and options of a config that parsed. */
export function configJson(config: Config): { options: ReturnType<typeof optionsJson>; doors: DoorJson[] } {
  return { options: optionsJson(config.options), doors: config.doors.map(doorJson) };
}
