/**
 * Text from files knocktail does not control (a config, a one-time sequences file, a log line, a command's
 * output) made safe to print on a terminal and into a log file: control characters, invalid UTF-8 and
 * bidirectional overrides become visible escapes, overlong messages are clipped, and a burst of messages of
 * one kind is cut short with a count ("… and 3,812 more like this"). README.md, "Messages from hostile files", shows the escapes.
 */
import { Writable } from 'node:stream';

/**
 * C0 controls but tab and newline, DEL, C1 controls (a terminal may take \x9b for an escape sequence),
 * the bidirectional overrides and isolates (text that reads differently than it is), and U+FFFD, which
 * stands for bytes that were not UTF-8.
 */
const UNSAFE_CHARACTER = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffd]/;
const UNSAFE_CHARACTERS = new RegExp(UNSAFE_CHARACTER.source, 'g');
const NAMED_ESCAPES: Record<string, string> = { '\r': '\\r', '\ufffd': '\\ufffd' };

function escapeCharacter(character: string): string {
  const named = NAMED_ESCAPES[character];
  if (named !== undefined) return named;
  const code = character.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `text` with every unsafe character shown as an escape (`\x1b`, `\r`, `\u202e`, `\ufffd` for a byte that was not UTF-8). */
export function safeText(text: string): string {
  return UNSAFE_CHARACTER.test(text) ? text.replace(UNSAFE_CHARACTERS, escapeCharacter) : text;
}

/** Characters JSON.stringify leaves as they are but a terminal may act on (DEL, C1 controls, bidirectional overrides). */
const UNSAFE_IN_JSON = /[\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

/** `value` as indented JSON that is safe on a terminal: what JSON.stringify leaves raw is written \uXXXX (the same JSON value). */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(UNSAFE_IN_JSON, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The line of a file's first NUL byte, which no text file holds (null: none, it may be text). */
export function binaryLine(content: Buffer): number | null {
  const nul = content.indexOf(0);
  if (nul < 0) return null;
  let line = 1;
  for (let at = content.indexOf(0x0a); at >= 0 && at < nul; at = content.indexOf(0x0a, at + 1)) line++;
  return line;
}

/** Characters of a message kept by `clip`, at most (knockd cut its messages at 1023). */
export const MESSAGE_LIMIT = 1000;

/** `text` cut to about `limit` characters, keeping its start and its end (where a message says what to do). */
export function clip(text: string, limit = MESSAGE_LIMIT): string {
  if (text.length <= limit) return text;
  const tail = Math.floor(limit / 4);
  const head = limit - tail;
  return `${text.slice(0, head)}… (${(text.length - head - tail).toLocaleString('en-US')} characters left out) …${text.slice(-tail)}`;
}

/**
 * Messages of one kind, as `capRepeats` and `RepeatLimiter` count them: the same text once quoted strings
 * and numbers are set aside, so "file:12: \"x\" is not a port" and "file:13: \"y\" is not a port" are alike.
 */
export function messageKind(message: string): string {
  // Greedy: a quoted excerpt of a binary file may itself hold quotes.
  return message.replace(/"[^\n]*"/, '""').replace(/\d+/g, '#');
}

/** Messages of one kind shown before the rest are only counted. */
export const REPEAT_LIMIT = 5;

/** The line that stands for `count` messages left out. */
export function moreLikeThis(count: number): string {
  return `… and ${count.toLocaleString('en-US')} more like this`;
}

/**
 * `items` in their order, at most `limit` of each kind; the last one shown of a kind carries how many more
 * of that kind were left out (0 for the others).
 */
export function capRepeats<T>(items: readonly T[], kindOf: (item: T) => string, limit = REPEAT_LIMIT): Array<{ item: T; more: number }> {
  const totals = new Map<string, number>();
  const kinds = items.map((item) => {
    const kind = kindOf(item);
    totals.set(kind, (totals.get(kind) ?? 0) + 1);
    return kind;
  });
  const shown = new Map<string, number>();
  const kept: Array<{ item: T; more: number }> = [];
  items.forEach((item, index) => {
    const kind = kinds[index]!;
    const count = (shown.get(kind) ?? 0) + 1;
    shown.set(kind, count);
    if (count <= limit) kept.push({ item, more: count === limit ? totals.get(kind)! - limit : 0 });
  });
  return kept;
}

/**
 * The running daemon's version of `capRepeats`: per `windowMs`, the first `limit` messages of a kind are
 * printed and the others counted; when the window ends (or at `flush`) each count is reported once, with
 * the last message left out as an example. With no window (Infinity) only `flush` reports.
 */
export class RepeatLimiter {
  private readonly seen = new Map<string, { count: number; last: string }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly report: (summary: string) => void,
    private readonly windowMs = 10_000,
    private readonly limit = REPEAT_LIMIT,
  ) {}

  /** Whether to print `message` now (otherwise it is counted). */
  admit(message: string): boolean {
    const kind = messageKind(message);
    const entry = this.seen.get(kind);
    if (entry === undefined) this.seen.set(kind, { count: 1, last: message });
    else {
      entry.count++;
      entry.last = message;
    }
    if (this.timer === null && this.windowMs !== Infinity) {
      this.timer = setTimeout(() => this.flush(), this.windowMs);
      this.timer.unref();
    }
    return (entry?.count ?? 1) <= this.limit;
  }

  /** Reports what was left out and starts a new window. */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const seen = [...this.seen.values()];
    this.seen.clear();
    for (const { count, last } of seen) {
      if (count <= this.limit) continue;
      const window = this.windowMs === Infinity ? '' : ` in the last ${this.windowMs / 1000} s`;
      this.report(`${moreLikeThis(count - this.limit)}${window}; the last one: ${last}`);
    }
  }
}

/**
 * Where a command-line run writes its warnings: each line made safe, alike lines capped; `finish()` prints
 * how many were left out.
 */
export class WarningStream extends Writable {
  private readonly repeats: RepeatLimiter;

  constructor(private readonly target: { write(text: string): unknown }) {
    super({ decodeStrings: false });
    this.repeats = new RepeatLimiter((summary) => this.print(summary), Infinity);
  }

  override _write(chunk: string | Buffer, _encoding: BufferEncoding, done: () => void): void {
    for (const line of String(chunk).split('\n')) {
      if (line !== '' && this.repeats.admit(line)) this.print(line);
    }
    done();
  }

  finish(): void {
    this.repeats.flush();
  }

  private print(line: string): void {
    this.target.write(`${safeText(clip(line))}\n`);
  }
}
