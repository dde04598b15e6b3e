/**
 * What replay reads: firewall logs, plain or gzip, whole rotated sets oldest first (`kern.log.2.gz
 * kern.log.1 kern.log`, whatever order they were given in), and pcap/pcapng captures, from files or standard
 * input (opened by archive-source.ts); separate sources are merged by event time. Pull-based: replay takes one
 * batch of hits at a time, so commands run with --execute finish before the next knock is read.
 *
 * A file that ends early (a truncated .gz, a cut-off capture, a read error) is read as far as it goes, like zcat
 * does; where it stopped is reported and the other files are still read.
 */
import { basename, dirname, join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { type DecodeContext, Outcome } from '../formats/logformat.js';
import type { DecoderCounters, LineDecoder } from '../formats/registry.js';
import { type BootTime, guessedDatesWarning } from '../formats/timestamp.js';
import type { KnockHit } from '../hit.js';
import { CaptureFileReader } from '../packet/pcap-file.js';
import type { PortWatch } from '../watch.js';
import { ArchiveError, type ArchiveSource } from './archive-source.js';
import { LineFramer, type LineSink } from './line-framer.js';
import { PcapFileInput, type PcapFileSummary } from './pcap-file.js';

/** What became of one input, once it has been read (or reading it stopped). */
export interface FileRead {
  source: ArchiveSource;
  /** A log: what its lines held. */
  lines: DecoderCounters | null;
  /** A capture: its packets. */
  capture: PcapFileSummary | null;
  /** Where and why reading stopped before the end (what came before was read), or null. */
  problem: string | null;
}

/** A packet that two inputs hold (the same packet, at the same time): it was handed on once. */
export interface RepeatedPackets {
  /** The input whose copy was dropped, the one that had it first, and how many. */
  input: string;
  of: string;
  packets: number;
  /** All the packets `input` held (repeated or not): all of them repeated means a copy. */
  total: number;
}

export interface ArchiveOptions {
  /** A fresh decoder per log (each keeps its own timestamp cache and counters). */
  decoderFor: (input: string) => LineDecoder;
  /** Lines longer than this many bytes are skipped with a warning (MaxLineLength, as the follower). */
  maxLineLength: number;
  /** When the machine that wrote printk-uptime stamps booted. */
  bootTime: BootTime;
  onWarning: (message: string) => void;
  /** What the doors may use: captures skip other packets before decoding their addresses. */
  watch: PortWatch | null;
  /** Called per chunk read, with the lines it held (progress). */
  onRead?: (lines: number) => void;
  /** Called when an input has been read, or reading it stopped (then the other inputs are still read). */
  onFileRead: (read: FileRead) => void;
  /** The firewall whose log a file is (canonical), for KnockHit.firewall; undefined when it names none. */
  firewallOf?: (file: string) => string | undefined;
}

/** Rotation rank of a file name: `kern.log` 0, `kern.log.1` 1, `kern.log.2.gz` 2, `kern.log-20261121` by date. */
function rotationKey(file: string): { base: string; rank: number } {
  const name = basename(file).replace(/\.gz$/, '');
  const numbered = /^(.*)\.(\d+)$/.exec(name);
  if (numbered) return { base: join(dirname(file), numbered[1]!), rank: Number(numbered[2]) };
  const dated = /^(.*)-(\d{8})$/.exec(name);
  // Dated names sort oldest first too: a larger date is more recent, so rank by the negated date.
  if (dated) return { base: join(dirname(file), dated[1]!), rank: 1e9 - Number(dated[2]) };
  return { base: join(dirname(file), name), rank: 0 };
}

/** The name a rotated file had while it was written: `kern.log` for `kern.log.2.gz` or `kern.log-20261121`. */
export function liveLogName(file: string): string {
  return rotationKey(file).base;
}

/** Groups inputs into rotated sets (`kern.log*` together), each ordered oldest first; sets keep the order given. */
export function rotationSets<T extends { name: string }>(inputs: readonly T[]): T[][] {
  const groups = new Map<string, Array<{ input: T; rank: number }>>();
  for (const input of inputs) {
    const { base, rank } = rotationKey(input.name);
    let group = groups.get(base);
    if (group === undefined) groups.set(base, (group = []));
    group.push({ input, rank });
  }
  return [...groups.values()].map((group) => group.sort((a, b) => b.rank - a.rank).map((entry) => entry.input));
}

/**
 * Pairs of names that are the same generation of one rotated log (`kern.log.1` and `kern.log.1.gz`): one is most
 * likely a compressed copy of the other, and reading both would replay that day twice.
 */
export function sameGeneration(names: readonly string[]): string[] {
  const seen = new Map<string, string>();
  const problems: string[] = [];
  for (const name of names) {
    const { base, rank } = rotationKey(name);
    const key = `${base}\n${rank}`;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, name);
    // The same name twice is found when the files are opened (the same file, whatever its name).
    else if (first !== name) problems.push(`${first} and ${name} are the same generation of ${base} (one is likely a compressed copy of the other): give one of them`);
  }
  return problems;
}

/** The hits of one input; a problem reading it ends it (reported by onFileRead), not the replay. */
async function* readInput(source: ArchiveSource, options: ArchiveOptions): AsyncGenerator<KnockHit[]> {
  if (source.kind !== 'capture') {
    yield* readLogFile(source, options);
    return;
  }
  const input = new PcapFileInput(source.name, options.watch, () => CaptureFileReader.from(source.label, source));
  let problem: string | null = null;
  try {
    for await (const batch of input.batches()) {
      options.onRead?.(0);
      yield batch;
    }
  } catch (error) {
    // The capture reader names the file and the byte offset of the bad record.
    problem = `${(error as Error).message}; the packets before it were read`;
  } finally {
    await source.close();
  }
  options.onFileRead({ source, lines: null, capture: input.summary(), problem });
}

/** The hits of one rotated set: its files one after the other. */
async function* readRotationSet(sources: readonly ArchiveSource[], options: ArchiveOptions): AsyncGenerator<KnockHit[]> {
  for (const source of sources) yield* readInput(source, options);
}

interface MergeSource {
  batches: AsyncGenerator<KnockHit[]>;
  batch: KnockHit[];
  at: number;
}

/**
 * The hits of all inputs in event-time order: rotated sets are read oldest file first, and different sets
 * (kern.log beside another host's log) are merged by time, so the report reads in the order things happened.
 * A packet that two sets hold (a copy of a log under another name; kern.log and syslog, which both get the
 * kernel's lines) is handed on once, and `onRepeats` tells which input repeated which.
 */
export async function* readArchives(sources: readonly ArchiveSource[], options: ArchiveOptions & { onRepeats: (repeats: RepeatedPackets[]) => void }): AsyncGenerator<KnockHit[]> {
  const sets = rotationSets(sources);
  if (sets.length === 1) {
    yield* readRotationSet(sets[0]!, options);
    return;
  }
  const merging: MergeSource[] = [];
  const refill = async (source: MergeSource): Promise<boolean> => {
    for (;;) {
      const next = await source.batches.next();
      if (next.done) return false;
      if (next.value.length > 0) {
        source.batch = next.value;
        source.at = 0;
        return true;
      }
    }
  };
  for (const set of sets) {
    const source: MergeSource = { batches: readRotationSet(set, options), batch: [], at: 0 };
    if (await refill(source)) merging.push(source);
  }
  const repeats = new RepeatFinder();
  while (merging.length > 0) {
    const merged: KnockHit[] = [];
    let drained: MergeSource | null = null;
    while (drained === null) {
      let earliest = merging[0]!;
      for (const source of merging) if (source.batch[source.at]!.time < earliest.batch[earliest.at]!.time) earliest = source;
      const hit = earliest.batch[earliest.at++]!;
      if (!repeats.repeated(hit)) merged.push(hit);
      if (earliest.at === earliest.batch.length) drained = earliest;
    }
    if (merged.length > 0) yield merged;
    if (!(await refill(drained))) merging.splice(merging.indexOf(drained), 1);
  }
  options.onRepeats(repeats.found());
}

/**
 * Finds packets that two inputs deliver: the same addresses, ports, protocol and flags within the same second
 * (a whole-second stamp and a precise one of the same line agree on it). Within one input a repeat is a packet
 * sent again, and is kept. Cheap while each second holds the hits of one input, by far the usual case: a second's
 * hits are only compared once a second input has hits in it too.
 */
class RepeatFinder {
  private second = Number.NaN;
  /** The hits of this second so far, while they all come from one input. */
  private readonly hits: KnockHit[] = [];
  /** Once a second input has hits in this second: what identifies a packet → the input that delivered it first. */
  private seen: Map<string, string> | null = null;
  /** input → the input it repeats → packets. */
  private readonly counts = new Map<string, Map<string, number>>();
  private readonly totals = new Map<string, number>();

  repeated(hit: KnockHit): boolean {
    this.totals.set(hit.input, (this.totals.get(hit.input) ?? 0) + 1);
    const second = Math.floor(hit.time / 1000);
    if (second !== this.second) {
      this.second = second;
      this.hits.length = 0;
      this.seen = null;
    }
    if (this.seen === null) {
      if (this.hits.length === 0 || this.hits[0]!.input === hit.input) {
        this.hits.push(hit);
        return false;
      }
      this.seen = new Map();
      for (const earlier of this.hits) if (!this.seen.has(packetKey(earlier))) this.seen.set(packetKey(earlier), earlier.input);
    }
    const key = packetKey(hit);
    const first = this.seen.get(key);
    if (first === undefined) {
      this.seen.set(key, hit.input);
      return false;
    }
    if (first === hit.input) return false;
    let byFirst = this.counts.get(hit.input);
    if (byFirst === undefined) this.counts.set(hit.input, (byFirst = new Map()));
    byFirst.set(first, (byFirst.get(first) ?? 0) + 1);
    return true;
  }

  found(): RepeatedPackets[] {
    return [...this.counts].flatMap(([input, byFirst]) => [...byFirst].map(([of, packets]) => ({ input, of, packets, total: this.totals.get(input)! })));
  }
}

function packetKey(hit: KnockHit): string {
  return `${hit.src} ${hit.dst} ${hit.proto} ${hit.dport} ${hit.sport} ${hit.flags}`;
}

const CHUNK_BYTES = 1 << 20;
/**
 * Text is decompressed in pieces of this size: when zlib finds damaged data it drops the piece it was working on
 * (the lines before it are read), and smaller pieces are no slower (they stay in V8's young generation).
 */
const GUNZIP_CHUNK_BYTES = 256 * 1024;

/** The bytes of an input as read, in chunks (each a buffer of its own: the framer may keep the end of one). */
async function* rawChunks(source: ArchiveSource): AsyncGenerator<Buffer> {
  let spare: Buffer | null = null;
  const readChunk = async (): Promise<Buffer | null> => {
    const buffer = spare ?? Buffer.allocUnsafe(CHUNK_BYTES);
    spare = null;
    const n = await source.read(buffer, 0, CHUNK_BYTES);
    if (n === CHUNK_BYTES) return buffer;
    // A pipe delivers a little at a time: copy that out and read into the same buffer again.
    spare = buffer;
    return n === 0 ? null : Buffer.from(buffer.subarray(0, n));
  };
  // One read ahead, as a read stream's buffer would: the next chunk comes from the disk while this one is parsed.
  let next = readChunk();
  try {
    for (;;) {
      const chunk = await next;
      if (chunk === null) return;
      next = readChunk();
      yield chunk;
    }
  } finally {
    // Left early (an error further on, or the reader stopped): the read in flight ends before the file is closed.
    await next.catch(() => {});
  }
}

/** The text of a log, plain or gunzipped, in chunks; throws ArchiveError (without the line) when it ends early. */
async function* logChunks(source: ArchiveSource): AsyncGenerator<Buffer> {
  if (source.kind !== 'gzip') {
    yield* rawChunks(source);
    return;
  }
  const gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
  // zlib decompresses the chunk written last together with the end of the stream, and on a truncated file drops
  // that chunk's output with the error: each chunk is written once the one before is decompressed, so only the
  // end of the stream is left for last, and everything before the cut comes out (as zcat recovers it).
  // (After a zlib error the pending write's callback never comes: nothing waits for this feed to finish.)
  void (async () => {
    for await (const chunk of rawChunks(source)) {
      if (gunzip.destroyed) return;
      await new Promise<void>((resolve, reject) => gunzip.write(chunk, (error) => (error ? reject(error) : resolve())));
    }
    gunzip.end();
  })().catch((error: Error) => gunzip.destroy(error));
  try {
    yield* gunzip as AsyncIterable<Buffer>;
  } catch (error) {
    if (error instanceof ArchiveError) throw error;
    const { code, message } = error as NodeJS.ErrnoException;
    throw new ArchiveError(
      source.label,
      code === 'Z_BUF_ERROR'
        ? `the compressed data ends early, at byte ${source.bytesRead.toLocaleString('en-US')} (the file was cut short, e.g. copied while it was written)`
        : `the compressed data is damaged after byte ${gunzip.bytesWritten.toLocaleString('en-US')} (zlib: ${message})`,
    );
  } finally {
    gunzip.destroy();
  }
}

/** Where reading a log stopped: after which line, and what became of a line cut off by the end. */
function stoppedAt(error: ArchiveError, lines: number, framer: LineFramer): string {
  const cut = framer.partialLine ? `; the cut-off line ${lines + 1} was skipped` : '';
  return `${error.label}: reading stopped ${lines === 0 ? 'before the first line' : `after line ${lines}`}: ${error.reason}${cut}`;
}

/**
 * Frames every line of a log into `sink`, yielding after each chunk; a last line without a newline is a line too,
 * unless the input ended early. Returns where reading stopped (stoppedAt), or null when it read to the end.
 */
async function* framedChunks(source: ArchiveSource, framer: LineFramer, sink: LineSink, lines: () => number): AsyncGenerator<void, string | null> {
  try {
    for await (const chunk of logChunks(source)) {
      framer.push(chunk, sink);
      yield;
    }
  } catch (error) {
    if (!(error instanceof ArchiveError)) throw error;
    return stoppedAt(error, lines(), framer);
  } finally {
    await source.close();
  }
  framer.end(sink);
  return null;
}

/** What eachLine hands on: every line with its number (a trailing `\r` dropped), and the over-long ones it skipped. */
export interface LineVisitor {
  line(text: string, number: number): void;
  longLine(number: number): void;
}

/**
 * Every line of a log (plain or gzip), framed as every log input frames them, one at a time: for tools that look at
 * each line (test-format); replay decodes whole blocks instead (readLogFile). Returns where reading stopped before
 * the end (the lines before it were visited), or null.
 */
export async function eachLine(source: ArchiveSource, maxLineLength: number, visitor: LineVisitor): Promise<string | null> {
  let number = 0;
  const sink: LineSink = {
    block: (text) => {
      for (const line of text.split('\n')) visitor.line(line.endsWith('\r') ? line.slice(0, -1) : line, ++number);
    },
    line: (text) => visitor.line(text, ++number),
    longLine: () => visitor.longLine(++number),
  };
  const chunks = framedChunks(source, new LineFramer(maxLineLength), sink, () => number);
  for (;;) {
    const next = await chunks.next();
    if (next.done) return next.value;
  }
}

/** Hits of one text log, in batches (one per chunk read); what became of its lines goes to onFileRead at the end. */
export async function* readLogFile(source: ArchiveSource, options: ArchiveOptions): AsyncGenerator<KnockHit[]> {
  const decoder = options.decoderFor(source.name);
  const ctx: DecodeContext = { input: source.name, reference: source.reference, bootTime: options.bootTime.ms, fallbackTime: source.reference, arrival: null };
  const firewall = options.firewallOf?.(source.name);
  if (firewall !== undefined) ctx.firewall = firewall;
  let batch: KnockHit[] = [];
  const collect = (hit: KnockHit): void => {
    batch.push(hit);
  };
  let lineNumber = 0;
  const sink: LineSink = {
    block: (text) => {
      lineNumber += decoder.decodeLines(text, ctx, collect);
    },
    line: (text) => {
      lineNumber++;
      const decoded = decoder.decode(text, ctx);
      if (decoded.outcome === Outcome.Matched && decoded.hit !== null) batch.push(decoded.hit);
    },
    longLine: () => {
      lineNumber++;
      decoder.countLongLine();
      options.onWarning(`${source.label}: line ${lineNumber} is longer than ${options.maxLineLength} bytes; skipped`);
    },
  };
  const chunks = framedChunks(source, new LineFramer(options.maxLineLength), sink, () => lineNumber);
  let counted = 0;
  let problem: string | null;
  for (;;) {
    const next = await chunks.next();
    options.onRead?.(lineNumber - counted);
    counted = lineNumber;
    if (batch.length > 0) {
      yield batch;
      batch = [];
    }
    if (next.done) {
      problem = next.value;
      break;
    }
  }
  const guessed = guessedDatesWarning(source.label, decoder.uptimeStamps, options.bootTime, source.modified);
  if (guessed !== null) options.onWarning(guessed);
  options.onFileRead({ source, lines: { ...decoder.counters }, capture: null, problem });
}
