/**
 * Compiles `<logformat>` blocks (Krzywinski's knockdaemon form) into line decoders.
 *
 * Every key of a block is a regex (xregexp syntax: a leading `(?x)` allows free spacing and comments,
 * `{{ip}}`-style sub-patterns are available). A line belongs to the format when `required` and every
 * field regex match. A field's value is the named group of that name in any of the block's regexes,
 * else the first capture of the field's own regex. Shipped formats put one anchored regex with named
 * groups in `required`, so a line costs one native `exec` and no field can reach into another.
 * All of that is resolved here, once; the per-line path only runs native regexes and validates values.
 */
import { createRequire } from 'node:module';
import { canonicalIp, detachedCopy } from '../address.js';
import { type Diagnostic, type LogField, type LogFormatBlock, ConfigError, LOG_FIELDS } from '../config/types.js';
import type { KnockHit, Protocol } from '../hit.js';
import type { PortWatch } from '../watch.js';
import { decodeTcpFlags } from './tcp-flags.js';
import { type Stamp, type TimeReference, TimestampParser } from './timestamp.js';

const IPV4 = String.raw`(?:\d{1,3}\.){3}\d{1,3}`;
const IPV6 = String.raw`[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%[\w.-]+)?`;
const IP = `(?:${IPV4}|${IPV6})`;
const FLAGS = String.raw`(?:(?:CWR|ECE|URG|ACK|PSH|RST|SYN|FIN)[ ])*`;
const SYSLOG_TIME = String.raw`[A-Z][a-z]{2}[ ][ \d]\d[ ]\d\d:\d\d:\d\d(?:\.\d+)?`;
const RFC3339 = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?`;
const TIMESTAMP = `(?:${SYSLOG_TIME}|${RFC3339})`;
/** ctime(3), as OpenWrt's logread writes it: `Thu Nov 21 04:16:16 2026`. */
const CTIME = String.raw`[A-Z][a-z]{2}[ ][A-Z][a-z]{2}[ ][ \d]\d[ ]\d\d:\d\d:\d\d[ ]\d{4}`;
/** `dmesg --time-format iso` always writes a comma and microseconds, which a syslog daemon's RFC 3339 stamps never do. */
const DMESG_ISO = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d,\d{6}[+-]\d\d:\d\d`;
const HOST = String.raw`[^\s\[\]]+`;
const PRINTK = String.raw`\[\s*\d+\.\d+\]`;

/**
 * The fields of a netfilter log line, from `IN=` to the end of the line, as the kernel's nf_log_syslog prints
 * them for iptables/ip6tables `LOG`, nftables `log` (with or without `flags all`) and iptables-nft, and as
 * ulogd2's PRINTPKT prints NFLOG packets (no `RES=`, `SEQ=`/`ACK=` always, `MARK=`). Every value sits between
 * fixed keys and the pattern ends with the line, so no field can reach into text meant for another. The only
 * free part, between `LEN=` and `PROTO=`, holds what the kernel prints there (TOS, TTL, ID, DF, IP options, IPv6
 * flow label and extension headers), never a key of a captured field: two packets run together cannot mix their
 * fields. ICMP and fragments (no ports) do not match; neither does the packet quoted inside an ICMP error
 * (`[SRC=… PROTO=UDP … ]`), as the line does not end after it.
 */
const NETFILTER = [
  String.raw`IN=(?<interface>[^ =]*)[ ]OUT=[^ =]*[ ](?:PHYSIN=[^ =]*[ ])?(?:PHYSOUT=[^ =]*[ ])?`,
  String.raw`(?:MAC=[0-9a-f:]*[ ]|MACSRC=[0-9a-f:]+[ ]MACDST=[0-9a-f:]+[ ]MACPROTO=[0-9a-f]+[ ])?`,
  String.raw`SRC=(?<ipclient>${IP})[ ]DST=(?<ipserver>${IP})[ ]LEN=\d+[ ](?:(?!(?:IN|OUT|SRC|DST|PROTO|SPT|DPT)=)[^ ]+[ ])*?`,
  String.raw`PROTO=(?<protocol>TCP|UDP)[ ]SPT=(?<sport>\d+)[ ]DPT=(?<port>\d+)[ ]`,
  String.raw`(?:(?:SEQ=\d+[ ]ACK=\d+[ ])?WINDOW=\d+[ ](?:RES=0x[0-9a-f]{2}[ ])?(?<flags>${FLAGS})URGP=\d+|LEN=\d+)`,
  String.raw`(?:[ ](?:OPT[ ]\([0-9A-F]*\)|UID=\d+[ ]GID=\d+|MARK=0x[0-9a-f]+))*[ ]?$`,
].join('');

/**
 * A RouterOS firewall log line after the rule's log-prefix, as a collector writes it (formats/mikrotik.conf): the
 * chain, the interfaces, optional connection state and source MAC, the protocol with TCP flags in parentheses,
 * source and destination as address:port (IPv4), a NAT rewrite if any, the length, and the end of the line.
 */
const ROUTEROS = [
  String.raw`[\w-]+:[ ]in:(?<interface>[^ ,]+)[ ]out:(?:\(unknown[ ]\d+\)|\(none\)|[^ ,]+),`,
  String.raw`(?:[ ]connection-state:[a-z,-]+)?(?:[ ]src-mac[ ][0-9a-f:]{17},)?[ ]`,
  String.raw`proto[ ](?<protocol>[A-Za-z0-9.-]+)(?:[ ]\((?:(?<flags>[A-Z]{3}(?:,[A-Z]{3})*)|type[ ]\d+,[ ]code[ ]\d+)\))?,[ ]`,
  String.raw`(?<ipclient>${IPV4})(?::(?<sport>\d+))?->(?<ipserver>${IPV4})(?::(?<port>\d+))?(?:,[ ]NAT[ ][^, ]+)?,[ ]len[ ]\d+$`,
].join('');

/**
 * Reusable pieces for format authors: `{{ip}}`, `{{port}}`, … Blanks are written `[ ]` so the pieces mean the
 * same in free-spacing (?x) patterns. The line pieces capture named fields, so use each at most once per format:
 * - a line start (`^` included) captures `time`: `{{kernel}}` (a syslog file's kernel line: rsyslog kern.log in
 *   the traditional or RFC 3339 form, `journalctl -k` text, the journal input), `{{dmesg}}`, `{{dmesgraw}}`
 *   (`dmesg -r`, kernel facility only), `{{dmesgiso}}`, `{{kmsg}}` (/dev/kmsg records, kernel facility only),
 *   `{{ulogd}}` (ulogd2 LOGEMU files), `{{logread}}` (OpenWrt's `logread`, kernel messages only);
 * - `{{netfilter}}` captures every other field, from `IN=` to the end of the line (`$` included);
 * - RouterOS: `{{mikrotik}}` is a collector's line start (time, host, RouterOS's `firewall` topics; other topics
 *   are refused), `{{routeros}}` everything from the chain to the end of the line;
 * - between them goes the log prefix: written out (`KNOCK[ ]`) to take only your rule's lines, or `{{anyprefix}}`.
 */
export const SUBPATTERNS: Readonly<Record<string, string>> = {
  ipv4: IPV4,
  ipv6: IPV6,
  ip: IP,
  port: String.raw`\d{1,5}`,
  flags: FLAGS,
  syslogtime: SYSLOG_TIME,
  rfc3339: RFC3339,
  timestamp: TIMESTAMP,
  ctime: CTIME,
  host: HOST,
  printk: PRINTK,
  kernel: String.raw`^(?<time>${TIMESTAMP})[ ]${HOST}[ ]kernel:[ ](?:${PRINTK}[ ])?`,
  dmesg: `^(?<time>${PRINTK})[ ]`,
  dmesgraw: `^<[0-7]>(?<time>${PRINTK})[ ]`,
  dmesgiso: `^(?<time>${DMESG_ISO})[ ]`,
  kmsg: String.raw`^[0-7],\d+,(?<time>\d+),[^;]*;`,
  // A LOGEMU line has the log prefix right after the host: `kernel:` there is a syslog file's kernel line.
  ulogd: `^(?<time>${SYSLOG_TIME})[ ]${HOST}[ ](?!kernel:[ ])`,
  // logread adds ` kernel:` only to messages from the kernel log; `kern.` keeps out records written into /dev/kmsg (fixtures/formats/routers/README.md).
  logread: String.raw`^(?<time>${CTIME})[ ]kern\.[a-z]+[ ]kernel:[ ](?:${PRINTK}[ ])?`,
  anyprefix: '[^=]*?',
  netfilter: NETFILTER,
  // `script,info` and other topics a RouterOS user's :log can write never start a firewall line.
  mikrotik: String.raw`^(?<time>${TIMESTAMP})[ ]${HOST}[ ](?:firewall,[a-z,]+[ ]|(?![a-z]+,[a-z,]+[ ]))`,
  routeros: ROUTEROS,
};

/** Fields a line must yield to be a knock hit. */
const MANDATORY: readonly LogField[] = ['ipclient', 'ipserver', 'protocol', 'port'];
/** Fields a line may lack (UDP lines have no flags; some logs have no source port or interface). */
const OPTIONAL: readonly LogField[] = ['flags', 'sport', 'interface'];

export const enum Outcome {
  /** A TCP/UDP packet with valid fields: a KnockHit was produced. */
  Matched,
  /** `required` (or the first regex) did not match: not this format's line. */
  Ignored,
  /** The format's line, but ICMP or another protocol: not a knock. */
  NotKnock,
  /** The format's line, but a field is missing or invalid (bad address, port, flags, time). */
  Missed,
  /** Not parsed: the line carries no port any door watches (only when the caller asked for that shortcut). */
  Skipped,
}

export interface DecodeContext extends TimeReference {
  /** KnockHit.input for hits from this line. */
  input: string;
  /** KnockHit.firewall for hits from this line (a collector's per-firewall file), canonical; absent otherwise. */
  firewall?: string;
  /** Event time (ms) for formats without a time field, e.g. arrival time or the journal's own stamp. */
  fallbackTime: number;
  /**
   * When a live input read the line (ms), or null (replay). A whole-second stamp on a line read within that second
   * takes this time instead: exact timeouts need sub-second times. Lines read later (a backlog after a restart)
   * keep their stamp, so knocks spread over a downtime are never squeezed together.
   */
  arrival: number | null;
}

/** What decoding a line found. */
export type Decoded =
  /** A TCP/UDP packet with valid fields; `hit` is null when its port is one no door watches (nothing else was parsed). */
  | { outcome: Outcome.Matched; format: CompiledFormat; hit: KnockHit | null; stamp: Stamp | null }
  | { outcome: Outcome.NotKnock; format: CompiledFormat }
  | { outcome: Outcome.Missed; format: CompiledFormat; reason: string }
  | { outcome: Outcome.Ignored | Outcome.Skipped; format: null };

export const IGNORED: Decoded = Object.freeze({ outcome: Outcome.Ignored, format: null });
export const SKIPPED: Decoded = Object.freeze({ outcome: Outcome.Skipped, format: null });

/** Raw text of every field the line yielded (for `test-format -o json`). */
export type FieldValues = Partial<Record<Exclude<LogField, 'required'>, string>>;

interface Probe {
  key: LogField;
  re: RegExp;
  /** [field, group index] pairs this regex provides. */
  captures: Array<[Exclude<LogField, 'required'>, number]>;
  /** A regex of an optional field (flags, sport, interface): no match = no value, not a bad line. */
  optional: boolean;
}

export class CompiledFormat {
  readonly name: string;
  readonly block: LogFormatBlock;
  private readonly probes: Probe[];
  /** Whether lines carry their own time (else DecodeContext.fallbackTime is used). */
  readonly hasTime: boolean;
  private readonly hasFlags: boolean;
  /** The last flag text parsed and its bits: most knocks carry the same words (`SYN `), so one compare replaces a parse. */
  private lastFlagText = '';
  private lastFlagBits: number | null = 0;
  /** This format's NotKnock result (the same every time). */
  private readonly notKnock: Decoded;
  /**
   * Literal text the port value always follows in a matching line (`DPT=` in the kernel formats), or null when
   * the patterns do not make that certain. Lets decode() drop lines for ports no door watches with an
   * indexOf instead of the full regexes: on a busy firewall that is most lines.
   */
  readonly portMarker: string | null;
  /** Index per field into `values` (filled per line), -1 when absent. */
  private readonly slot: Record<Exclude<LogField, 'required'>, number>;
  private readonly values: Array<string | undefined>;

  constructor(block: LogFormatBlock) {
    this.name = block.name;
    this.block = block;
    const problems: Diagnostic[] = [];
    const fieldNames = LOG_FIELDS.filter((f): f is Exclude<LogField, 'required'> => f !== 'required');
    this.slot = Object.fromEntries(fieldNames.map((f) => [f, -1])) as Record<Exclude<LogField, 'required'>, number>;
    const owner = new Map<string, LogField>();
    const compiled: Array<{ key: LogField; re: RegExp; names: Array<string | null> }> = [];

    // `required` first: it is the cheap rejection of foreign lines.
    const keys = (Object.keys(block.fields) as LogField[]).sort((a, b) => (a === 'required' ? -1 : b === 'required' ? 1 : 0));
    for (const key of keys) {
      const entry = block.fields[key]!;
      try {
        compiled.push({ key, ...compilePattern(entry.pattern) });
      } catch (error) {
        problems.push({
          at: entry.at,
          message: `logformat ${block.name}: ${key} is not a valid regex: ${(error as Error).message}`,
          hint: 'check brackets and escapes; a leading (?x) enables free spacing with # comments',
        });
      }
    }

    // A regex that does not compile captures nothing: "no such field" on top would only be noise.
    const allCompiled = problems.length === 0;
    const probes: Probe[] = [];
    let valueCount = 0;
    for (const { key, re, names } of compiled) {
      const captures: Probe['captures'] = [];
      const at = block.fields[key]!.at;
      names.forEach((name, index) => {
        if (name === null) return;
        if (!(fieldNames as readonly string[]).includes(name)) {
          problems.push({ at, message: `logformat ${block.name}: named group (?<${name}>) is not a field`, hint: `name groups after fields: ${fieldNames.join(', ')}` });
          return;
        }
        claim(name as Exclude<LogField, 'required'>, index + 1);
      });
      if (key !== 'required' && !names.includes(key)) {
        if (names.length === 0) {
          problems.push({ at, message: `logformat ${block.name}: ${key} has no capturing group`, hint: `wrap the value in parentheses, e.g. ${key} = SRC=(\\S+)` });
        } else if (names[0] === null) {
          claim(key, 1);
        } else {
          problems.push({ at, message: `logformat ${block.name}: ${key}'s first group is named (?<${names[0]}>)`, hint: `name it (?<${key}>) or add an unnamed group for the value` });
        }
      }
      probes.push({ key, re, captures, optional: OPTIONAL.includes(key) });

      function claim(field: Exclude<LogField, 'required'>, group: number): void {
        const previous = owner.get(field);
        if (previous !== undefined) {
          problems.push({ at, message: `logformat ${block.name}: field ${field} is captured twice (in ${previous} and ${key})`, hint: 'keep one of them' });
          return;
        }
        owner.set(field, key);
        captures.push([field, group]);
      }
    }
    for (const field of allCompiled ? MANDATORY : []) {
      if (!owner.has(field)) {
        problems.push({
          at: block.at,
          message: `logformat ${block.name}: no ${field} field`,
          hint: `add "${field} = REGEX" with one capture, or a (?<${field}>…) group in required`,
        });
      }
    }
    if (problems.length > 0) throw new ConfigError(problems);

    for (const probe of probes) for (const capture of probe.captures) this.slot[capture[0]] = valueCount++;
    this.values = new Array(valueCount);
    this.probes = probes;
    this.hasTime = this.slot.time >= 0;
    this.portMarker = portMarker(block, owner.get('port')!);
    this.hasFlags = this.slot.flags >= 0;
    this.notKnock = Object.freeze({ outcome: Outcome.NotKnock, format: this });
  }

  /** Runs the regexes and fills `this.values`; returns -1, or the index of the first regex that did not match. */
  private capture(line: string): number {
    let slot = 0;
    for (let i = 0; i < this.probes.length; i++) {
      const probe = this.probes[i]!;
      const m = probe.re.exec(line);
      if (m === null) {
        if (!probe.optional) return i;
        for (let c = 0; c < probe.captures.length; c++) this.values[slot++] = undefined;
        continue;
      }
      for (const capture of probe.captures) this.values[slot++] = m[capture[1]];
    }
    return -1;
  }

  private value(field: Exclude<LogField, 'required'>): string | undefined {
    return this.valueAt(this.slot[field]);
  }

  private valueAt(slot: number): string | undefined {
    return slot < 0 ? undefined : this.values[slot];
  }

  /** Raw field text of a line (null when the line is not this format's): test-format prints it. */
  fields(line: string): FieldValues | null {
    if (this.capture(line) >= 0) return null;
    const out: FieldValues = {};
    for (const field of Object.keys(this.slot) as Array<keyof FieldValues>) {
      const value = this.value(field);
      if (value !== undefined) out[field] = value;
    }
    return out;
  }

  /**
   * Decodes one line. `watch` lets callers that only feed a matcher skip the costly part (addresses, time) for
   * ports no door uses: such lines are Matched with no hit. `portChecked`: the caller has already found a watched
   * port after `portMarker`.
   */
  decode(line: string, ctx: DecodeContext, timestamps: TimestampParser, watch: PortWatch | null, portChecked = false): Decoded {
    if (!portChecked && watch !== null && this.portMarker !== null && !mayCarryWatchedPort(line, this.portMarker, watch)) return SKIPPED;
    const failed = this.capture(line);
    // The first regex (`required` when there is one) decides whether the line is this format's at all.
    if (failed > 0) return this.missed(`its ${this.probes[failed]!.key} regex does not match`);
    if (failed === 0) return IGNORED;
    const slot = this.slot;
    const protoText = this.valueAt(slot.protocol);
    const proto = protocolOf(protoText);
    if (proto === null) return protoText === undefined ? this.missed('no protocol') : this.notKnock;
    const portText = this.valueAt(slot.port);
    const port = portOf(portText);
    if (port < 0) return this.missed(`port "${portText ?? ''}" is not a number 0-65535`);
    if (watch !== null && !watch.watches(proto, port)) return { outcome: Outcome.Matched, format: this, hit: null, stamp: null };

    const srcText = this.valueAt(slot.ipclient) ?? '';
    const dstText = this.valueAt(slot.ipserver) ?? '';
    const src = canonicalIp(srcText);
    const dst = canonicalIp(dstText);
    if (src === null) return this.missed(`ipclient "${srcText}" is not an IP address`);
    if (dst === null) return this.missed(`ipserver "${dstText}" is not an IP address`);

    let flags: number | null = proto === 'udp' ? 0 : null;
    if (proto === 'tcp' && this.hasFlags) {
      const text = this.valueAt(slot.flags);
      if (text !== undefined) {
        if (text !== this.lastFlagText) {
          this.lastFlagBits = decodeTcpFlags(text);
          this.lastFlagText = detachedCopy(text);
        }
        flags = this.lastFlagBits;
        if (flags === null) return this.missed(`flags "${text}" are not TCP flags (words CWR ECE URG ACK PSH RST SYN FIN, or pf's letters FSRPAUEC)`);
      }
    }
    let time = ctx.fallbackTime;
    let stamp: Stamp | null = null;
    if (this.hasTime) {
      const text = this.valueAt(slot.time) ?? '';
      stamp = timestamps.parse(text, ctx);
      if (stamp === null) return this.missed(`time "${text}" is not a timestamp knocktail reads`);
      time = stamp.ms;
      const arrival = ctx.arrival;
      if (arrival !== null && stamp.precisionMs >= 1000 && arrival >= time && arrival < time + stamp.precisionMs) time = arrival;
    }
    const sportText = this.valueAt(slot.sport);
    const sport = sportText === undefined ? null : portOf(sportText);
    const hit: KnockHit = {
      time,
      src,
      dst,
      proto,
      dport: port,
      sport: sport === null || sport < 0 ? null : sport,
      flags,
      input: ctx.input,
      iface: this.valueAt(slot.interface) ?? null,
    };
    if (ctx.firewall !== undefined) hit.firewall = ctx.firewall;
    return { outcome: Outcome.Matched, format: this, hit, stamp };
  }

  private missed(reason: string): Decoded {
    return { outcome: Outcome.Missed, format: this, reason };
  }
}

/** Characters a port marker may consist of: plain literal text, nothing a regex treats specially. */
const MARKER_CHAR = /[A-Za-z0-9_=:,;<>"'/@#%&!~-]/;
/** Shorter markers would match too often to save anything. */
const MIN_MARKER = 3;

/**
 * The literal text right before the port's capture group in its pattern, e.g. `DPT=` in `… DPT=(?<port>\d+)`.
 * Conservative: null when the pattern is case-insensitive, when the group is not found exactly once, or when
 * the text before it is not plain literal characters (a quantifier, class, group or escape ends the marker).
 */
function portMarker(block: LogFormatBlock, key: LogField): string | null {
  const pattern = expandSubpatterns(block.fields[key]!.pattern);
  if (/^\(\?[a-z]*i/.test(pattern)) return null;
  let start: number;
  if (key === 'port') {
    start = pattern.search(/(?<!\\)\((?!\?)/);
    if (pattern.includes('(?<port>')) start = pattern.indexOf('(?<port>');
  } else {
    start = pattern.indexOf('(?<port>');
    if (start < 0 || pattern.indexOf('(?<port>', start + 1) >= 0) return null;
  }
  if (start <= 0) return null;
  let from = start;
  while (from > 0 && MARKER_CHAR.test(pattern[from - 1]!)) from--;
  // `\sDPT=`: the character after a backslash is part of an escape, not literal text.
  if (from > 0 && pattern[from - 1] === '\\') from++;
  const marker = pattern.slice(from, start);
  return marker.length >= MIN_MARKER ? marker : null;
}

/** A pattern ready for the hot path: a native regex with plain groups, and the field name (or null) of each group. */
interface CompiledPattern {
  re: RegExp;
  names: Array<string | null>;
}

/** A leading mode modifier such as `(?x)` or `(?is)`: XRegExp syntax native regexes lack. */
const MODE_MODIFIER = /^\(\?[A-Za-z]+\)/;

/**
 * Compiles a pattern. Plain patterns (the shipped formats) need no library: sub-patterns are expanded and named
 * groups turned into plain ones here (a native `exec` then skips building a `groups` object per line). Patterns
 * that use XRegExp syntax — a leading `(?x)` for free spacing and `#` comments, other mode modifiers, or anything
 * the native parser rejects — go through XRegExp, loaded only then (it costs ~12 MB and ~60 ms at start-up).
 */
function compilePattern(pattern: string): CompiledPattern {
  if (!MODE_MODIFIER.test(pattern)) {
    const native = nativePattern(expandSubpatterns(pattern));
    if (native !== null) return native;
  }
  const XRegExp = loadXRegExp();
  const built = XRegExp.build(pattern, SUBPATTERNS);
  // xregexp lists names only when there are named groups; count the groups themselves.
  const groupCount = new RegExp(`${built.source}|`, built.flags).exec('')!.length - 1;
  const listed = (built as RegExp & { xregexp: { captureNames: Array<string | null> | null } }).xregexp.captureNames ?? [];
  return { re: new RegExp(built.source, built.flags), names: Array.from({ length: groupCount }, (_, i) => listed[i] ?? null) };
}

/** `source` with `(?<name>` turned into `(`, and the names in group order; null when the native parser disagrees. */
function nativePattern(source: string): CompiledPattern | null {
  if (source.includes('\\k<')) return null; // named back-references would need renumbering: leave them to XRegExp
  const names: Array<string | null> = [];
  let plain = '';
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\\') {
      plain += source.slice(i, i + 2);
      i++;
    } else if (inClass) {
      plain += c;
      if (c === ']') inClass = false;
    } else if (c === '[') {
      plain += c;
      inClass = true;
    } else if (c === '(' && source[i + 1] !== '?') {
      names.push(null);
      plain += c;
    } else if (c === '(' && source[i + 2] === '<' && source[i + 3] !== '=' && source[i + 3] !== '!') {
      const end = source.indexOf('>', i + 3);
      if (end < 0) return null;
      names.push(source.slice(i + 3, end));
      plain += '(';
      i = end;
    } else {
      plain += c;
    }
  }
  let re: RegExp;
  try {
    re = new RegExp(plain);
  } catch {
    return null;
  }
  return new RegExp(`${plain}|`).exec('')!.length - 1 === names.length ? { re, names } : null;
}

type XRegExpModule = typeof import('xregexp');
let xregexp: XRegExpModule | null = null;

function loadXRegExp(): XRegExpModule {
  xregexp ??= createRequire(import.meta.url)('xregexp') as XRegExpModule;
  return xregexp;
}

/** `pattern` with each `{{name}}` replaced by its sub-pattern, named groups kept (XRegExp.build renumbers them). */
function expandSubpatterns(pattern: string): string {
  return pattern.replace(/\{\{(\w+)\}\}/g, (whole, name: string) => (Object.hasOwn(SUBPATTERNS, name) ? `(?:${SUBPATTERNS[name]})` : whole));
}

/** Whether the digits at `text[at…]` (before `end`) are a port a door watches over either protocol. */
export function watchedPortAt(text: string, at: number, end: number, watch: PortWatch): boolean {
  let port = 0;
  let digits = 0;
  for (let i = at; i < end && digits <= 5; i++, digits++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) break;
    port = port * 10 + d;
  }
  return digits > 0 && digits <= 5 && port <= 65535 && watch.watchesPort(port);
}

/** Whether some occurrence of `marker` in `line` is followed by a port a door watches. */
function mayCarryWatchedPort(line: string, marker: string, watch: PortWatch): boolean {
  for (let at = line.indexOf(marker); at >= 0; at = line.indexOf(marker, at + 1)) {
    if (watchedPortAt(line, at + marker.length, line.length, watch)) return true;
  }
  return false;
}

function protocolOf(text: string | undefined): Protocol | null {
  switch (text) {
    case 'TCP':
    case 'tcp':
    case '6':
      return 'tcp';
    case 'UDP':
    case 'udp':
    case '17':
      return 'udp';
    default:
      return text !== undefined && /^(tcp|udp)$/i.test(text) ? (text.toLowerCase() as Protocol) : null;
  }
}

/** 0..65535 from decimal text, else -1. */
function portOf(text: string | undefined): number {
  if (text === undefined || text.length === 0 || text.length > 5) return -1;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value <= 65535 ? value : -1;
}
