/**
 * `knocktail test-format --format auto`: which of the known formats read a log file. Every format is tried on
 * every line on its own (not first-claims-wins), so the listing shows each format's own reach, and the one
 * to put in LogFormat is suggested: the most knock lines read, then the narrowest (fewest lines claimed).
 */
import { type CompiledFormat, type DecodeContext, Outcome } from '../formats/logformat.js';
import { LineDecoder } from '../formats/registry.js';
import type { BootTime } from '../formats/timestamp.js';
import { eachLine } from '../inputs/archive.js';
import type { ArchiveSource } from '../inputs/archive-source.js';

export interface FormatReach {
  format: string;
  /** Lines it read as a TCP/UDP packet. */
  matched: number;
  /** Its lines for another protocol. */
  notKnock: number;
  /** Its lines with a field it could not read. */
  missed: number;
}

export interface Detection {
  file: string;
  lines: number;
  /** Formats that claim at least one line, best first. */
  formats: FormatReach[];
  /** Lines no format claims. */
  unread: number;
  /** The format to use (the first of `formats` that reads a knock), or null. */
  suggested: string | null;
}

/** What a detection reports line by line (--print-missed, --print-ignored). */
export interface DetectionListener {
  missed?(line: number, format: CompiledFormat, reason: string, text: string): void;
  unread?(line: number, text: string): void;
}

/**
 * Runs each format over every line of the file as the archive reader splits them. `problem`: where reading stopped
 * before the end (the detection covers the lines before it), or null.
 */
export async function detectFormats(
  source: ArchiveSource,
  formats: readonly CompiledFormat[],
  options: { bootTime: BootTime; maxLineLength: number; preferLast: readonly string[]; onWarning: (message: string) => void },
  listener: DetectionListener = {},
): Promise<{ detection: Detection; problem: string | null }> {
  const fanOut = new FanOut(formats, listener);
  const ctx: DecodeContext = { input: source.name, reference: source.reference, bootTime: options.bootTime.ms, fallbackTime: source.reference, arrival: null };
  const problem = await eachLine(source, options.maxLineLength, {
    line: (text, number) => fanOut.line(text, number, ctx),
    longLine: (number) => {
      fanOut.lines++;
      options.onWarning(`${source.label}: line ${number} is longer than ${options.maxLineLength} bytes; skipped`);
    },
  });
  const reach = fanOut.reach().filter((r) => r.matched + r.notKnock + r.missed > 0);
  // A tie between a narrow format and a generic one (the default, which takes any prefix) goes to the narrow one.
  const generic = (name: string): number => (options.preferLast.includes(name) ? 1 : 0);
  reach.sort(
    (a, b) =>
      b.matched - a.matched ||
      claimed(a) - claimed(b) ||
      generic(a.format) - generic(b.format) ||
      a.format.localeCompare(b.format),
  );
  const detection = {
    file: source.name,
    lines: fanOut.lines,
    formats: reach,
    unread: fanOut.unread,
    suggested: reach.length > 0 && reach[0]!.matched > 0 ? reach[0]!.format : null,
  };
  return { detection, problem };
}

function claimed(r: FormatReach): number {
  return r.matched + r.notKnock + r.missed;
}

/** Hands each line to one decoder per format and counts what each made of it. */
class FanOut {
  private readonly each: Array<{ format: CompiledFormat; decoder: LineDecoder }>;
  lines = 0;
  unread = 0;

  constructor(
    formats: readonly CompiledFormat[],
    private readonly listener: DetectionListener,
  ) {
    this.each = formats.map((format) => ({ format, decoder: new LineDecoder([format]) }));
  }

  line(text: string, number: number, ctx: DecodeContext): void {
    this.lines++;
    let claimedBySome = false;
    for (const { format, decoder } of this.each) {
      const decoded = decoder.decode(text, ctx);
      if (decoded.outcome === Outcome.Ignored) continue;
      claimedBySome = true;
      if (decoded.outcome === Outcome.Missed) this.listener.missed?.(number, format, decoded.reason, text);
    }
    if (!claimedBySome) {
      this.unread++;
      this.listener.unread?.(number, text);
    }
  }

  reach(): FormatReach[] {
    return this.each.map(({ format, decoder }) => ({ format: format.name, matched: decoder.counters.matched, notKnock: decoder.counters.notKnock, missed: decoder.counters.missed }));
  }
}

/** The detection as text, for a terminal. */
export function detectionText(detection: Detection, hints: { printedUnread: boolean }): string {
  const { file, lines, formats, unread, suggested } = detection;
  const out = [`${file}: ${lines} line${lines === 1 ? '' : 's'}; ${formats.length === 0 ? 'no known format reads any of them' : 'formats that read them, best first:'}`];
  const width = Math.max(0, ...formats.map((r) => r.format.length));
  for (const r of formats) {
    out.push(`  ${r.format.padEnd(width)}  ${r.matched} knock line${r.matched === 1 ? '' : 's'} (TCP/UDP), ${r.notKnock} of another protocol, ${r.missed} missed`);
  }
  out.push(`  unread  ${unread} line${unread === 1 ? '' : 's'} no format claims${unread > 0 && !hints.printedUnread ? ' (--print-ignored shows them)' : ''}`);
  out.push(
    suggested === null
      ? 'no format reads a knock here: check the firewall rule logs the knock ports, or write a <logformat> block (README, "Log formats")'
      : `suggested: LogFormat = ${suggested}   (then: knocktail test-format -f ${suggested} ${file})`,
  );
  return `${out.join('\n')}\n`;
}
