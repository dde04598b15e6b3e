/**
 * Turns the timestamp text a log format captured into event time (ms since the epoch).
 *
 * Forms, detected from the text itself so one format works whatever rsyslog/journald/dmesg wrote:
 * - `rfc3339`: 2026-11-21T04:16:16.719457+00:00, …16+0000 (journalctl short-iso), …16,351538+00:00 (dmesg --time-format iso)
 * - `syslog`:  Nov 21 04:16:16 (traditional; local time, no year: inferred from a reference time), also with a
 *              fraction: Nov 21 04:16:16.719198 (journalctl -o short-precise)
 * - `uptime`:  [  446.351538] or 446.351538 (printk seconds since boot), 446351538 (/dev/kmsg: µs since boot, fewer
 *              than 16 digits); these need the boot time
 * - `epoch`:   @1763698576.719 or 1763698576719457 µs (journal: 16 digits or more), i.e. absolute numbers
 * - `ctime`:   Thu Nov 21 04:16:16 2026 (C's ctime(3), local time with the year: OpenWrt's `logread`)
 * Parsing is cached per second, so a busy log costs one string compare per line.
 */
import { uptime } from 'node:os';

export type TimestampForm = 'rfc3339' | 'syslog' | 'uptime' | 'epoch' | 'ctime';

/** A parsed stamp: event time, how precise the text was, and which form it had. */
export interface Stamp {
  /** ms since the epoch. */
  ms: number;
  /** Resolution of the text in ms (1000 for whole-second stamps). */
  precisionMs: number;
  form: TimestampForm;
}

export interface TimeReference {
  /** ms; a year-less stamp gets the year that puts it closest to, and not more than a day after, this time. */
  reference: number;
  /** ms; when the machine that wrote uptime stamps booted. */
  bootTime: number;
}

/** When the machine that wrote uptime stamps booted. */
export interface BootTime {
  ms: number;
  /** Nobody said (--boot-time): this machine's boot time is assumed, which is right only for its own logs since then. */
  guessed: boolean;
}

/** When this machine booted (ms): the boot time of the logs it writes itself. */
export function thisMachineBootTime(): number {
  return Date.now() - uptime() * 1000;
}

/**
 * The warning owed when uptime stamps of `label` were turned into dates with a guessed boot time (null: none owed).
 * `modified`: when the file was last written, if known: a file last written before the guessed boot comes from an
 * earlier boot, and its dates are surely wrong.
 */
export function guessedDatesWarning(label: string, uptimeStamps: number, boot: BootTime, modified: number | null): string | null {
  if (!boot.guessed || uptimeStamps === 0) return null;
  const earlier = modified !== null && modified < boot.ms ? `, but ${label} was last written before that, so these dates are wrong` : '';
  return (
    `${label}: ${uptimeStamps} time${uptimeStamps === 1 ? '' : 's'} since boot turned into dates assuming the machine that wrote them ` +
    `booted when this one did (${new Date(boot.ms).toISOString()})${earlier}: give --boot-time (that machine's "uptime -s", or "journalctl --list-boots")`
  );
}

const MONTHS = new Map(['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].map((m, i) => [m, i]));
const DAY_MS = 86_400_000;

/** Parses timestamps of any supported form; keep one per input so its cache fits that input's stream. */
export class TimestampParser {
  private cachedKey = '';
  private cachedMs = 0;
  private cachedForm: TimestampForm = 'rfc3339';
  /** The local year of the last TimeReference.reference seen: a year-less stamp starts from it. */
  private referenceMs = Number.NaN;
  private referenceYear = 0;
  /** Stamps read as a time since boot: their dates depend on the boot time given (guessedDatesWarning). */
  uptimeStamps = 0;
  /** The stamp, or null when the text is no timestamp this parser knows. */
  parse(text: string, ref: TimeReference): Stamp | null {
    const c = text.charCodeAt(0);
    if (c >= 48 && c <= 57 && text.length >= 19 && text.charCodeAt(4) === 45 /* - */ && text.charCodeAt(10) === 84 /* T */) {
      return this.rfc3339(text);
    }
    if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) {
      return text.length === CTIME_LENGTH && text.charCodeAt(3) === 32 /* blank */ ? this.ctime(text) : this.syslog(text, ref);
    }
    const ms = parseNumberStamp(text, ref);
    // Hundreds of digits make Infinity: no time at all, not one that expires every knock.
    if (!Number.isFinite(ms)) return null;
    if (text.charCodeAt(0) === 64 /* @ */ || isEpochMicroseconds(text)) return { ms, precisionMs: 1e-3, form: 'epoch' };
    this.uptimeStamps++;
    return { ms, precisionMs: 1e-3, form: 'uptime' };
  }

  private rfc3339(text: string): Stamp | null {
    // Seconds part and zone are cached together; the fraction is added per line.
    let i = 19;
    let fraction = 0;
    const sep = text.charCodeAt(19);
    if (sep === 46 /* . */ || sep === 44 /* , */) {
      i = 20;
      let scale = 100;
      while (i < text.length) {
        const d = text.charCodeAt(i) - 48;
        if (d < 0 || d > 9) break;
        fraction += d * scale;
        scale /= 10;
        i++;
      }
      if (i === 20) return null;
    }
    const zone = text.slice(i);
    const key = text.slice(0, 19) + zone;
    if (key !== this.cachedKey || this.cachedForm !== 'rfc3339') {
      const base = rfc3339Seconds(text.slice(0, 19), zone);
      if (Number.isNaN(base)) return null;
      this.cachedKey = key;
      this.cachedMs = base;
      this.cachedForm = 'rfc3339';
    }
    return { ms: this.cachedMs + fraction, precisionMs: i === 19 ? 1000 : Math.max(1e-3, 10 ** (3 - (i - 20))), form: 'rfc3339' };
  }

  private ctime(text: string): Stamp | null {
    if (text !== this.cachedKey || this.cachedForm !== 'ctime') {
      const ms = ctimeStamp(text);
      if (Number.isNaN(ms)) return null;
      this.cachedKey = text;
      this.cachedMs = ms;
      this.cachedForm = 'ctime';
    }
    return { ms: this.cachedMs, precisionMs: 1000, form: 'ctime' };
  }

  private syslog(text: string, ref: TimeReference): Stamp | null {
    // `Nov 21 04:16:16.719198`: the seconds are cached, the fraction is added per line.
    const dot = text.indexOf('.', 13);
    const head = dot < 0 ? text : text.slice(0, dot);
    let fraction = 0;
    if (dot >= 0) {
      if (dot === text.length - 1 || !/^\d+$/.test(text.slice(dot + 1))) return null;
      fraction = Number(`0${text.slice(dot)}`) * 1000;
    }
    if (head !== this.cachedKey || this.cachedForm !== 'syslog') {
      if (ref.reference !== this.referenceMs) {
        this.referenceMs = ref.reference;
        this.referenceYear = new Date(ref.reference).getFullYear();
      }
      const ms = syslogStamp(head, ref.reference, this.referenceYear);
      if (Number.isNaN(ms)) return null;
      this.cachedKey = head;
      this.cachedMs = ms;
      this.cachedForm = 'syslog';
    }
    return { ms: this.cachedMs + fraction, precisionMs: dot < 0 ? 1000 : Math.max(1e-3, 10 ** (3 - (text.length - dot - 1))), form: 'syslog' };
  }
}

/** `Thu Nov 21 04:16:16 2026`: ctime(3) always writes 24 characters, the day padded with a blank. */
const CTIME_LENGTH = 24;
const WEEKDAYS = new Set(['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']);

/** `Www Mmm dd HH:MM:SS YYYY` in local time, or NaN. */
function ctimeStamp(text: string): number {
  const month = MONTHS.get(text.slice(4, 7));
  const day = text.charCodeAt(8) === 32 ? twoDigits(`0${text[9]}`, 0) : twoDigits(text, 8);
  const hour = twoDigits(text, 11);
  const minute = twoDigits(text, 14);
  const second = twoDigits(text, 17);
  const year = Number(text.slice(20));
  if (!WEEKDAYS.has(text.slice(0, 3)) || month === undefined || text[7] !== ' ' || text[10] !== ' ' || text[19] !== ' ') return NaN;
  if (text[13] !== ':' || text[16] !== ':' || !/^\d{4}$/.test(text.slice(20))) return NaN;
  if (!(day >= 1 && day <= 31 && hour <= 23 && minute <= 59 && second <= 60 && year >= 1970)) return NaN;
  return new Date(year, month, day, hour, minute, second).getTime();
}

function twoDigits(text: string, at: number): number {
  const a = text.charCodeAt(at) - 48;
  const b = text.charCodeAt(at + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : NaN;
}

/** `YYYY-MM-DDTHH:MM:SS` plus a zone (`Z`, `+HH:MM`, `+HHMM`, or none = local time). */
function rfc3339Seconds(head: string, zone: string): number {
  const year = Number(head.slice(0, 4));
  const month = twoDigits(head, 5);
  const day = twoDigits(head, 8);
  const hour = twoDigits(head, 11);
  const minute = twoDigits(head, 14);
  const second = twoDigits(head, 17);
  if (!(year >= 1970) || head[7] !== '-' || head[13] !== ':' || head[16] !== ':') return NaN;
  if (!(month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23 && minute <= 59 && second <= 60)) return NaN;
  if (zone === '') return new Date(year, month - 1, day, hour, minute, second).getTime();
  const utc = Date.UTC(year, month - 1, day, hour, minute, second);
  if (zone === 'Z' || zone === 'z') return utc;
  const sign = zone[0] === '+' ? 1 : zone[0] === '-' ? -1 : 0;
  const compact = zone.length === 5 ? zone : zone.length === 6 && zone[3] === ':' ? zone.slice(0, 3) + zone.slice(4) : '';
  const offsetHours = twoDigits(compact, 1);
  const offsetMinutes = twoDigits(compact, 3);
  if (sign === 0 || Number.isNaN(offsetHours) || Number.isNaN(offsetMinutes)) return NaN;
  return utc - sign * (offsetHours * 60 + offsetMinutes) * 60_000;
}

/** `Mmm dd HH:MM:SS` (day may be space-padded) in local time, year inferred from `reference` (in local year `year`). */
function syslogStamp(text: string, reference: number, year: number): number {
  const month = MONTHS.get(text.slice(0, 3));
  if (month === undefined || text.charCodeAt(3) !== 32) return NaN;
  let i = 4;
  if (text.charCodeAt(i) === 32) i++;
  let day = 0;
  while (i < text.length && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) day = day * 10 + text.charCodeAt(i++) - 48;
  if (day < 1 || day > 31 || text.charCodeAt(i) !== 32 || text.length !== i + 9) return NaN;
  const hour = twoDigits(text, i + 1);
  const minute = twoDigits(text, i + 4);
  const second = twoDigits(text, i + 7);
  if (text[i + 3] !== ':' || text[i + 6] !== ':' || !(hour <= 23 && minute <= 59 && second <= 60)) return NaN;
  const thisYear = new Date(year, month, day, hour, minute, second).getTime();
  // A stamp more than a day after the reference was written last year (December lines in a file closed in January).
  return thisYear > reference + DAY_MS ? new Date(year - 1, month, day, hour, minute, second).getTime() : thisYear;
}

/** A whole number of µs this long is a time since the epoch (any such time after 2001); shorter ones count from boot. */
const EPOCH_MICROSECOND_DIGITS = 16;

function isEpochMicroseconds(text: string): boolean {
  return text.length >= EPOCH_MICROSECOND_DIGITS && !text.includes('.');
}

/**
 * `[  446.351538]` / `446.351538` (uptime seconds), `446351538` (uptime µs), `@1763698576.719` (epoch seconds) or
 * `1763698576719457` (epoch µs).
 */
function parseNumberStamp(text: string, ref: TimeReference): number {
  let body = text;
  if (body.charCodeAt(0) === 91 /* [ */ && body.charCodeAt(body.length - 1) === 93 /* ] */) body = body.slice(1, -1).trim();
  const epochSeconds = body.charCodeAt(0) === 64; /* @ */
  if (epochSeconds) body = body.slice(1);
  if (!/^\d+(?:\.\d+)?$/.test(body)) return NaN;
  const value = Number(body);
  if (epochSeconds) return value * 1000;
  if (body.includes('.')) return ref.bootTime + value * 1000;
  return isEpochMicroseconds(body) ? value / 1000 : ref.bootTime + value / 1000;
}
