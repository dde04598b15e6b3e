/**
 * knockd.conf parser: knockd 0.8's grammar and meaning (README, "Configuration") plus
 * knocktail's own directives (a rolling door's in rolling.ts), with the nonsense knockd silently
 * accepts rejected. Every problem in a file is collected and reported at once, each with its line
 * and a fix.
 *
 * Relative paths in a config (LogFile, PidFile, FirewallLog, StateDir, One_Time_Sequences,
 * Sequence_Secret) are
 * resolved against the directory of the config file, not the working directory as knockd did:
 * under `-d` the working directory is `/`, so knockd's relative paths broke on reload.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { canonicalIp, parseCidr } from '../address.js';
import { binaryLine } from '../safe-text.js';
import { checkEncryptedDoors, ENCRYPTED_DOOR_DIRECTIVES } from './encrypted-door.js';
import { Report, trimC, walkLines, NAME_PATTERN, type Line } from './reader.js';
import { type Directive, type DoorDirective, InvalidValue, list, path, type ValueContext, wholeNumber, yesNo } from './directive.js';
import { isLogPattern, LogPattern, namesFirewalls, PatternError } from './log-pattern.js';
import { finishRollingDoor, ROLLING_DIRECTIVES } from './rolling.js';
import { mergeFlagRules, parseSequence, parseTcpFlags, SequenceError } from './sequence.js';
import { ConfigError, type Config, type Diagnostic, type DoorConfig, type LogFormatBlock, nflogGroup, type Options, type SourceRef } from './types.js';

export function defaultOptions(): Options {
  return {
    useSyslog: false,
    logFile: null,
    pidFile: null,
    interfaces: [],
    mode: 'file',
    firewallLogs: ['/var/log/kern.log'],
    nflogPrefix: null,
    maxFollowedFiles: 1000,
    logFormats: ['iptables'],
    stateDir: '/var/lib/knocktail',
    maxSources: 100_000,
    maxKnockAge: 60,
    commandLimit: 60,
    maxLineLength: 65_536,
    allowForgeableLog: false,
    onStartCommand: null,
    onStopCommand: null,
    closeOnExit: false,
    promiscuous: false,
  };
}

/** Reads and parses a config file (`path` relative to the working directory). */
export function loadConfig(path: string): Config {
  const absolute = resolve(path);
  let content: Buffer;
  try {
    // A device or a FIFO (-c /dev/urandom) would be read forever.
    if (!statSync(absolute).isFile()) throw new Error('not a regular file');
    content = readFileSync(absolute);
  } catch (error) {
    throw new Error(`cannot read config file ${absolute}: ${(error as Error).message}`);
  }
  const binary = binaryLine(content);
  if (binary !== null) {
    throw new ConfigError([
      { at: { file: absolute, line: binary }, message: 'this is not a config file: it holds binary data (a NUL byte)', hint: 'give the path of your knockd.conf / knocktail.conf with -c' },
    ]);
  }
  return parseConfigText(content.toString('utf8'), absolute);
}

/** Parses config text; `path` names the file in messages and anchors its relative paths. */
export function parseConfigText(text: string, path: string): Config {
  const report = new Report(path);
  const parser = new ConfigParser(report, dirname(resolve(path)));
  const logFormats = walkLines(text, report, (line) => parser.line(line));
  const doors = parser.finish();
  if (report.errors.length > 0) throw new ConfigError(byLine(report.errors));
  return { path: resolve(path), options: parser.options, optionsAt: parser.optionsAt, doors, logFormats, warnings: byLine(report.warnings) };
}

/** Parses a shipped `formats/*.conf` file: comments and `<logformat>` blocks only. */
export function parseFormatFile(text: string, path: string): LogFormatBlock[] {
  const report = new Report(path);
  const blocks = walkLines(text, report, (line) =>
    report.error(line.number, `"${line.text}" is outside a <logformat> block`, 'a format file holds only comments and <logformat NAME> … </logformat> blocks'),
  );
  if (report.errors.length > 0) throw new ConfigError(byLine(report.errors));
  return blocks;
}

function byLine(diagnostics: Diagnostic[]): Diagnostic[] {
  return diagnostics.sort((a, b) => a.at.line - b.at.line);
}

interface OptionDirective extends Directive<Options> {
  property: keyof Options;
}

// ---- value grammars -------------------------------------------------------------------------

/** Upper bounds that keep every value usable by timers and buffers (setTimeout holds about 24.8 days). */
const MAX_TIMER_SECONDS = 2_147_483;
const MAX_DOOR_OPEN_SECONDS = 366 * 86_400;
const MAX_LINE_BYTES = 16 * 1024 * 1024;
const MAX_SOURCES = 10_000_000;
/** Each followed file holds a descriptor and is polled: beyond this, a collector wants several knocktails. */
const MAX_FOLLOWED_FILES = 100_000;
/** A knock older than a day is never a knock someone is waiting on. */
const MAX_KNOCK_AGE = 86_400;

/** Seconds a timer or command limit can wait. */
function seconds(value: string): number {
  return wholeNumber(value, 0, MAX_TIMER_SECONDS, 'seconds');
}

function oneOf<T extends string>(value: string, choices: readonly T[]): T {
  const word = value.toLowerCase();
  const choice = choices.find((c) => c === word);
  if (choice === undefined) throw new InvalidValue(`expected ${choices.join(' or ')}, got "${value}"`);
  return choice;
}

/** `nflog:GROUP`, with the group checked (0-65535, as the NFLOG target takes it). */
function nflogSource(item: string): string {
  const group = nflogGroup(item);
  if (group === null) throw new InvalidValue(`"${item}" is not an NFLOG group`, 'write nflog:GROUP with the group of the NFLOG rule, 0-65535 (e.g. nflog:5)');
  return `nflog:${group}`;
}

/** Linux interface names: at most 15 bytes (IFNAMSIZ - 1), no blanks or slashes. */
const INTERFACE_NAME = /^[^\s/]{1,15}$/;

/** Door names substituted for %DOOR% reach /bin/sh, so only shell-inert characters. */
const SHELL_SAFE_DOOR_NAME = /^[A-Za-z0-9_.@+-]+$/;
const COMMAND_PLACEHOLDER_DOOR = '%DOOR%';
const COMMAND_PLACEHOLDER_FIREWALL = '%FIREWALL%';

function oneTimeSequencesFile(value: string, context: ValueContext): string {
  const file = path(value, context);
  const fix = 'create it with one sequence per line, or fix the path';
  let isFile: boolean;
  try {
    isFile = statSync(file).isFile();
  } catch (error) {
    throw new InvalidValue(`cannot use ${file}: ${(error as Error).message}`, fix);
  }
  if (!isFile) throw new InvalidValue(`${file} is not a regular file`, fix);
  try {
    accessSync(file, constants.R_OK | constants.W_OK);
  } catch (error) {
    throw new InvalidValue(`${file} must be readable and writable: ${(error as Error).message}`, 'used sequences are commented out in it, so the daemon needs write access');
  }
  return file;
}

/** A FirewallLog path, relative ones resolved against the config's directory; a pattern must be one knocktail can follow. */
function logPath(value: string, context: ValueContext): string {
  const absolute = path(value, context);
  if (!isLogPattern(absolute)) return absolute;
  try {
    new LogPattern(absolute);
  } catch (error) {
    if (error instanceof PatternError) throw new InvalidValue(error.message, error.hint);
    throw error;
  }
  return absolute;
}

function target(value: string): string {
  const canonical = canonicalIp(value);
  if (canonical !== null) return canonical;
  let hint = 'write one IPv4 or IPv6 address, e.g. 192.0.2.10';
  if (value.includes('/')) hint = 'Target is one destination address; to limit who may knock, use Allow_From';
  else if (/[g-z]/i.test(value)) hint = 'write the IP address: knockd compares Target as text, so a host name never matched';
  throw new InvalidValue(`"${value}" is not an IP address`, hint);
}

// ---- directive tables -----------------------------------------------------------------------

const DOOR_DIRECTIVES: DoorDirective[] = [
  { name: 'Sequence', apply: (door, value, context) => { door.sequence = parseSequence(value, (message) => context.warn(message)); } },
  { name: 'One_Time_Sequences', apply: (door, value, context) => { door.oneTimeSequences = oneTimeSequencesFile(value, context); } },
  { name: 'Seq_Timeout', aliases: ['Timeout'], apply: (door, value) => { door.seqTimeout = seconds(value); } },
  { name: 'TCPFlags', accumulates: true, apply: (door, value) => { door.tcpFlags = mergeFlagRules(door.tcpFlags, parseTcpFlags(value)); } },
  { name: 'Start_Command', aliases: ['Command'], apply: (door, value) => { door.startCommand = value; } },
  { name: 'Start_Command_6', aliases: ['Command_6'], apply: (door, value) => { door.startCommand6 = value; } },
  { name: 'Cmd_Timeout', apply: (door, value) => { door.cmdTimeout = wholeNumber(value, 0, MAX_DOOR_OPEN_SECONDS, 'seconds'); } },
  { name: 'Stop_Command', apply: (door, value) => { door.stopCommand = value; } },
  { name: 'Stop_Command_6', apply: (door, value) => { door.stopCommand6 = value; } },
  { name: 'Target', apply: (door, value) => { door.target = target(value); } },
  {
    name: 'Allow_From',
    apply: (door, value) => {
      door.allowFrom = list(value, 'address range').map((item) => {
        try {
          return parseCidr(item);
        } catch (error) {
          throw new InvalidValue((error as Error).message, 'write addresses or ranges like 192.0.2.0/24, 2001:db8::/32');
        }
      });
    },
  },
  { name: 'Ignore_Repeats', apply: (door, value) => { door.ignoreRepeats = yesNo(value); } },
  { name: 'On_Reopen', apply: (door, value) => { door.onReopen = oneOf(value, ['extend', 'rerun'] as const); } },
  { name: 'Command_Limit', apply: (door, value) => { door.commandLimit = seconds(value); } },
  { name: 'Knock_Scope', apply: (door, value) => { door.knockScope = oneOf(value, ['firewall', 'any'] as const); } },
  ...ROLLING_DIRECTIVES,
  ...ENCRYPTED_DOOR_DIRECTIVES,
];

const OPTION_DIRECTIVES: OptionDirective[] = [
  { name: 'UseSyslog', property: 'useSyslog', apply: (options, value) => { options.useSyslog = yesNo(value); } },
  { name: 'LogFile', property: 'logFile', apply: (options, value, context) => { options.logFile = path(value, context); } },
  { name: 'PidFile', property: 'pidFile', apply: (options, value, context) => { options.pidFile = path(value, context); } },
  {
    name: 'Interface',
    property: 'interfaces',
    apply: (options, value) => {
      const names = list(value, 'interface name');
      const bad = names.find((name) => !INTERFACE_NAME.test(name));
      if (bad !== undefined) throw new InvalidValue(`"${bad}" is not an interface name`, 'interface names have at most 15 characters and no blanks or "/"');
      options.interfaces = names;
    },
  },
  { name: 'Mode', property: 'mode', apply: (options, value) => { options.mode = oneOf(value, ['file', 'pcap'] as const); } },
  {
    name: 'FirewallLog',
    property: 'firewallLogs',
    apply: (options, value, context) => {
      const logs = list(value, 'log path').map((item) => (item === 'journal' || item === 'kmsg' ? item : item.startsWith('nflog:') ? nflogSource(item) : logPath(item, context)));
      const repeated = logs.find((log, index) => logs.indexOf(log) !== index);
      if (repeated !== undefined) throw new InvalidValue(`${repeated} is listed twice`, 'list each log once: every line would be seen twice and break sequences');
      options.firewallLogs = logs;
    },
  },
  {
    name: 'NflogPrefix',
    property: 'nflogPrefix',
    apply: (options, value) => {
      if (value.length > 63 || /[\x00-\x1f\x7f]/.test(value)) throw new InvalidValue(`"${value}" cannot be an NFLOG prefix`, 'write the prefix of the NFLOG rule (at most 63 characters, no control characters)');
      options.nflogPrefix = value;
    },
  },
  {
    name: 'LogFormat',
    property: 'logFormats',
    apply: (options, value) => {
      const names = list(value, 'format name');
      const bad = names.find((name) => !NAME_PATTERN.test(name));
      if (bad !== undefined) throw new InvalidValue(`"${bad}" is not a format name`, 'format names use letters, digits, "_", "." and "-" only');
      options.logFormats = names;
    },
  },
  { name: 'MaxFollowedFiles', property: 'maxFollowedFiles', apply: (options, value) => { options.maxFollowedFiles = wholeNumber(value, 1, MAX_FOLLOWED_FILES, 'files'); } },
  { name: 'StateDir', property: 'stateDir', apply: (options, value, context) => { options.stateDir = path(value, context); } },
  { name: 'MaxSources', property: 'maxSources', apply: (options, value) => { options.maxSources = wholeNumber(value, 1, MAX_SOURCES, 'sources'); } },
  { name: 'MaxKnockAge', property: 'maxKnockAge', apply: (options, value) => { options.maxKnockAge = wholeNumber(value, 1, MAX_KNOCK_AGE, 'seconds'); } },
  { name: 'CommandLimit', property: 'commandLimit', apply: (options, value) => { options.commandLimit = seconds(value); } },
  { name: 'MaxLineLength', property: 'maxLineLength', apply: (options, value) => { options.maxLineLength = wholeNumber(value, 256, MAX_LINE_BYTES, 'bytes'); } },
  { name: 'AllowForgeableLog', property: 'allowForgeableLog', apply: (options, value) => { options.allowForgeableLog = yesNo(value); } },
  { name: 'OnStart', property: 'onStartCommand', apply: (options, value) => { options.onStartCommand = value; } },
  { name: 'OnStop', property: 'onStopCommand', apply: (options, value) => { options.onStopCommand = value; } },
  { name: 'CloseOnExit', property: 'closeOnExit', apply: (options, value) => { options.closeOnExit = yesNo(value); } },
  { name: 'Promiscuous', property: 'promiscuous', apply: (options, value) => { options.promiscuous = yesNo(value); } },
];

/** Each `[options]` directive's documented name and the Options property it sets (check-config --json keys). */
export const OPTION_NAMES: ReadonlyArray<readonly [directive: string, property: keyof Options]> = OPTION_DIRECTIVES.map((d) => [d.name, d.property]);

/** Keys are case-insensitive (knockd upper-cases them). */
function byKey<T extends Directive<never>>(directives: T[]): Map<string, T> {
  const map = new Map<string, T>();
  for (const directive of directives) {
    for (const name of [directive.name, ...(directive.aliases ?? [])]) map.set(name.toUpperCase(), directive);
  }
  return map;
}

const DOOR_BY_KEY = byKey(DOOR_DIRECTIVES);
const OPTION_BY_KEY = byKey(OPTION_DIRECTIVES);
const USESYSLOG = 'USESYSLOG';

// ---- did you mean ---------------------------------------------------------------------------

function spellings(directives: Directive<never>[]): string[] {
  return directives.flatMap((directive) => [directive.name, ...(directive.aliases ?? [])]);
}

const DOOR_SPELLINGS = spellings(DOOR_DIRECTIVES);
const OPTION_SPELLINGS = spellings(OPTION_DIRECTIVES);

/** Case, `_` and `-` never matter for a suggestion: `firewall_log` is FirewallLog. */
function normalise(key: string): string {
  return key.toLowerCase().replace(/[_\-\s]/g, '');
}

/** Edit distance with adjacent transpositions (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = best;
    }
  }
  return rows[a.length]![b.length]!;
}

/** The closest spelling, if close enough to be a typo (one edit for short keys, two from 6 characters). */
export function closest(key: string, candidates: string[]): string | null {
  const wanted = normalise(key);
  const allowed = wanted.length >= 6 ? 2 : 1;
  let best: string | null = null;
  let bestDistance = allowed + 1;
  for (const candidate of candidates) {
    const distance = editDistance(wanted, normalise(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

// ---- the parser -----------------------------------------------------------------------------

interface DoorDraft {
  door: DoorConfig;
  /** Line where each directive (documented spelling) was last written. */
  lines: Map<string, number>;
}

/** Where directives go: nowhere yet, the global section, a door, or a broken header (its lines are skipped). */
type Section = 'none' | 'options' | 'skip' | DoorDraft;

/** A door with knockd's defaults and no sequence yet. */
export function defaultDoor(name: string, at: SourceRef): DoorConfig {
  return {
    name,
    at,
    sequence: [],
    oneTimeSequences: null,
    rolling: null,
    seqTimeout: 25,
    tcpFlags: { set: 0, clear: 0 },
    startCommand: null,
    startCommand6: null,
    stopCommand: null,
    stopCommand6: null,
    cmdTimeout: 10,
    target: null,
    allowFrom: [],
    ignoreRepeats: false,
    onReopen: 'extend',
    commandLimit: null,
    encrypted: null,
    knockScope: 'firewall',
  };
}

/** `[Options]`, `[ options ]`: doors in knockd that were almost certainly meant as the global section. */
function looksLikeOptions(name: string): boolean {
  return trimC(name).toLowerCase() === 'options';
}

class ConfigParser {
  readonly options = defaultOptions();
  readonly optionsAt: Config['optionsAt'] = {};
  private readonly drafts: DoorDraft[] = [];
  private section: Section = 'none';

  constructor(
    private readonly report: Report,
    private readonly baseDir: string,
  ) {}

  line({ text, number }: Line): void {
    if (text.startsWith('[')) {
      if (text.endsWith(']')) this.header(text.slice(1, -1), number);
      else this.report.error(number, `section header "${text}" does not end with "]"`, 'write [NAME]');
      return;
    }
    const eq = text.indexOf('=');
    const key = trimC(eq < 0 ? text : text.slice(0, eq));
    const value = eq < 0 ? null : trimC(text.slice(eq + 1));
    if (key === '') {
      this.report.error(number, `"${text}" has no directive name before "="`, 'write NAME = VALUE');
    } else if (this.section === 'none') {
      this.report.error(number, `"${key}" comes before any section`, 'every directive belongs to a section: put it under [options] or a [door] header');
    } else if (this.section === 'options') {
      this.optionLine(key, value, number);
    } else if (this.section !== 'skip') {
      this.doorLine(this.section, key, value, number);
    }
  }

  private header(name: string, number: number): void {
    if (name === '') {
      this.report.error(number, 'empty section name "[]"', 'write [options] or [door name]');
      this.section = 'skip';
      return;
    }
    if (name === 'options') {
      this.section = 'options';
      return;
    }
    if (looksLikeOptions(name)) {
      this.report.warn(number, `[${name}] starts a door named "${name}", not the global section`, 'only [options] (lower case, no spaces) is the global section; knockd reads it the same way');
    } else if (name !== trimC(name)) {
      this.report.warn(number, `the door name "${name}" has surrounding blanks, which are part of the name (as in knockd)`, `write [${trimC(name)}]`);
    }
    const twin = this.drafts.find((draft) => draft.door.name === name);
    if (twin !== undefined) {
      this.report.warn(number, `door "${name}" is defined again (first at line ${twin.door.at.line}); both are active, as in knockd`, 'rename one of them');
    }
    const draft: DoorDraft = { door: defaultDoor(name, this.report.at(number)), lines: new Map() };
    this.drafts.push(draft);
    this.section = draft;
  }

  private optionLine(key: string, value: string | null, number: number): void {
    const upper = key.toUpperCase();
    const option = OPTION_BY_KEY.get(upper);
    if (option === undefined) {
      const door = DOOR_BY_KEY.get(upper);
      if (door !== undefined) this.report.error(number, `"${door.name}" belongs in a door section, not [options]`, 'put it under a [door name] header');
      else this.unknown(key, number, OPTION_SPELLINGS, DOOR_SPELLINGS, 'a door');
      return;
    }
    if (value === null && upper !== USESYSLOG) {
      this.report.error(number, `"${option.name}" needs a value`, `write ${option.name} = …`);
      return;
    }
    const previous = this.optionsAt[option.property];
    if (this.apply(option, this.options, value, number)) {
      if (previous !== undefined) this.report.warn(number, `${option.name} is set again; this line replaces line ${previous.line}`);
      this.optionsAt[option.property] = this.report.at(number);
    }
  }

  private doorLine(draft: DoorDraft, key: string, value: string | null, number: number): void {
    const upper = key.toUpperCase();
    const directive = DOOR_BY_KEY.get(upper);
    if (directive === undefined) {
      this.misplacedOrUnknown(draft, key, value, number);
      return;
    }
    if (value === null) {
      this.report.error(number, `"${directive.name}" needs a value`, `write ${directive.name} = …`);
      return;
    }
    const previous = draft.lines.get(directive.name);
    if (previous !== undefined && !directive.accumulates) {
      this.report.warn(number, `${directive.name} is set again in door [${draft.door.name}]; this line replaces line ${previous}`);
    }
    // Recorded even when the value is invalid, so a bad Sequence does not also count as a missing one.
    draft.lines.set(directive.name, number);
    this.apply(directive, draft.door, value, number);
  }

  private misplacedOrUnknown(draft: DoorDraft, key: string, value: string | null, number: number): void {
    const upper = key.toUpperCase();
    const option = OPTION_BY_KEY.get(upper);
    if (option === undefined) {
      this.unknown(key, number, DOOR_SPELLINGS, OPTION_SPELLINGS, '[options]');
    } else if (upper === USESYSLOG && value === null) {
      // knockd accepts a bare UseSyslog anywhere; it switches syslog on for the whole daemon.
      this.options.useSyslog = true;
      this.optionsAt.useSyslog = this.report.at(number);
      this.report.warn(number, `UseSyslog inside door [${draft.door.name}] turns on syslog for the whole daemon (as in knockd)`, 'move it to [options]');
    } else {
      const hint = looksLikeOptions(draft.door.name)
        ? `only lower-case [options] is the global section; [${draft.door.name}] starts a door`
        : 'move it to the [options] section';
      this.report.error(number, `"${option.name}" belongs in [options], not in door [${draft.door.name}]`, hint);
    }
  }

  private unknown(key: string, number: number, here: string[], elsewhere: string[], elsewhereSection: string): void {
    const near = closest(key, here);
    const far = near === null ? closest(key, elsewhere) : null;
    const hint =
      near !== null
        ? `did you mean ${near}?`
        : far !== null
          ? `did you mean ${far}? (it belongs in ${elsewhereSection})`
          : `known directives here: ${here.join(', ')}`;
    this.report.error(number, `unknown directive "${key}"`, hint);
  }

  /** Applies a directive; reports an invalid value and returns false. */
  private apply<T>(directive: Directive<T>, target: T, value: string | null, number: number): boolean {
    const context: ValueContext = { baseDir: this.baseDir, warn: (message) => this.report.warn(number, `${directive.name}: ${message}`) };
    try {
      // Only a bare UseSyslog gets here without a value; it means "on", as in knockd.
      directive.apply(target, value ?? 'yes', context);
      return true;
    } catch (error) {
      if (!(error instanceof InvalidValue || error instanceof SequenceError)) throw error;
      this.report.error(number, `${directive.name}: ${error.message}`, error instanceof InvalidValue ? error.hint : undefined);
      return false;
    }
  }

  /** Whole-door checks, once every line is read; returns the doors in file order. */
  finish(): DoorConfig[] {
    checkEncryptedDoors(this.drafts, this.report);
    for (const { door, lines } of this.drafts) {
      door.lines = Object.fromEntries(lines);
      const sequenceLine = lines.get('Sequence');
      const oneTimeLine = lines.get('One_Time_Sequences');
      const rolling = finishRollingDoor(door, lines, this.report);
      if (door.encrypted === null && sequenceLine === undefined && oneTimeLine === undefined && !rolling) {
        const hint = looksLikeOptions(door.name)
          ? 'for the global section write [options] (lower case, no blanks)'
          : 'add Sequence = PORT[:tcp|udp],… (or One_Time_Sequences = FILE, Sequence_Secret and Sequence_Ports for a rolling door, or Knock_Key = FILE for encrypted knocks)';
        this.report.error(door.at.line, `door [${door.name}] has no Sequence`, hint);
      } else if (sequenceLine !== undefined && oneTimeLine !== undefined) {
        this.report.error(
          Math.max(sequenceLine, oneTimeLine),
          `door [${door.name}] has both Sequence (line ${sequenceLine}) and One_Time_Sequences (line ${oneTimeLine})`,
          'keep one of them: a one-time door takes its sequence from the file',
        );
      }
      const steps = door.rolling?.length ?? door.sequence.length;
      if (door.seqTimeout === 0 && steps > 1) {
        this.report.warn(
          lines.get('Seq_Timeout')!,
          `door [${door.name}] has ${steps} steps and Seq_Timeout 0, so it can never open (every attempt expires at once, as in knockd)`,
          'set Seq_Timeout to the seconds a knocker needs for the whole sequence',
        );
      }
      if (door.startCommand === null && door.startCommand6 === null && (door.stopCommand !== null || door.stopCommand6 !== null)) {
        this.report.warn(door.at.line, `door [${door.name}] has a stop command but no start command, so the stop command never runs (as in knockd)`, 'add Start_Command');
      }
      const commands = [door.startCommand, door.startCommand6, door.stopCommand, door.stopCommand6];
      if (!SHELL_SAFE_DOOR_NAME.test(door.name) && commands.some((command) => command?.includes(COMMAND_PLACEHOLDER_DOOR))) {
        this.report.error(
          door.at.line,
          `door name "${door.name}" cannot be used as ${COMMAND_PLACEHOLDER_DOOR}: commands run through /bin/sh`,
          `rename the door using only letters, digits and _ . @ + -, or remove ${COMMAND_PLACEHOLDER_DOOR} from its commands`,
        );
      }
      if (!namesFirewalls(this.options)) this.firewallUnknown(door, commands, lines);
    }
    return this.drafts.map((draft) => draft.door);
  }

  /** Without firewalls, %FIREWALL% has no value and Knock_Scope nothing to choose from. */
  private firewallUnknown(door: DoorConfig, commands: Array<string | null>, lines: Map<string, number>): void {
    const fix = 'follow the per-firewall files of a syslog collector with a pattern, e.g. FirewallLog = /var/log/remote/{firewall}/kern.log (README, "Many firewalls, one knocktail")';
    if (commands.some((command) => command?.includes(COMMAND_PLACEHOLDER_FIREWALL))) {
      this.report.error(door.at.line, `door [${door.name}] uses ${COMMAND_PLACEHOLDER_FIREWALL}, but no FirewallLog names firewalls`, fix);
    }
    const scope = lines.get('Knock_Scope');
    if (scope !== undefined) this.report.warn(scope, `Knock_Scope of door [${door.name}] changes nothing: no FirewallLog names firewalls`, fix);
  }
}
