/**
 * What replay reads: firewall logs, plain or gzip, whole rotated sets oldest first (`kern.log.2.gz
 * kern.log.1 kern.log`, whatever order they were given in), and pcap/pcapng captures; separate sources
 * are merged by event time. Pull-based: replay takes one batch of hits at a time, so commands run with
 * --execute finish before the next knock is read.
 */
import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { type DecodeContext, Outcome } from '../formats/logformat.js';
import type { LineDecoder } from '../formats/registry.js';
import type { KnockHit } from '../hit.js';
import { isCaptureMagic } from '../packet/pcap-file.js';
import type { PortWatch } from '../watch.js';
import { LineFramer, type LineSink } from './line-framer.js';
import { PcapFileInput } from './pcap-file.js';

export interface ArchiveOptions {
  /** A fresh decoder per file (each keeps its own timestamp cache and counters). */
  decoderFor: (file: string) => LineDecoder;
  /** Lines longer than this many bytes are skipped with a warning (MaxLineLength, as the follower). */
  maxLineLength: number;
  /** When the machine that wrote printk-uptime stamps booted (ms); 0 when unknown. */
  bootTime: number;
  onWarning: (message: string) => void;
  /** What the doors may use: captures skip other packets before decoding their addresses. */
  watch: PortWatch | null;
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

/** Groups files into rotated sets (`kern.log*` together), each ordered oldest first; sets keep the order given. */
export function rotationSets(files: readonly string[]): string[][] {
  const groups = new Map<string, Array<{ file: string; rank: number }>>();
  for (const file of files) {
    const { base, rank } = rotationKey(file);
    let group = groups.get(base);
    if (group === undefined) groups.set(base, (group = []));
    group.push({ file, rank });
  }
  return [...groups.values()].map((group) => group.sort((a, b) => b.rank - a.rank).map((entry) => entry.file));
}

/** The hits of one rotated set: its files one after the other (packet captures by their own reader). */
async function* readRotationSet(files: readonly string[], options: ArchiveOptions): AsyncGenerator<KnockHit[]> {
  for (const file of files) yield* isCaptureMagic(head(file, 4)) ? new PcapFileInput(file, options.watch).batches() : readLogFile(file, options);
}

interface MergeSource {
  batches: AsyncGenerator<KnockHit[]>;
  batch: KnockHit[];
  at: number;
}

/**
 * The hits of all files in event-time order: rotated sets are read oldest file first, and different sets
 * (kern.log beside another host's log) are merged by time, so the report reads in the order things happened.
 */
export async function* readArchives(files: readonly string[], options: ArchiveOptions): AsyncGenerator<KnockHit[]> {
  const sets = rotationSets(files);
  if (sets.length === 1) {
    yield* readRotationSet(sets[0]!, options);
    return;
  }
  const sources: MergeSource[] = [];
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
    if (await refill(source)) sources.push(source);
  }
  while (sources.length > 0) {
    const merged: KnockHit[] = [];
    let drained: MergeSource | null = null;
    while (drained === null) {
      let earliest = sources[0]!;
      for (const source of sources) if (source.batch[source.at]!.time < earliest.batch[earliest.at]!.time) earliest = source;
      merged.push(earliest.batch[earliest.at++]!);
      if (earliest.at === earliest.batch.length) drained = earliest;
    }
    yield merged;
    if (!(await refill(drained))) sources.splice(sources.indexOf(drained), 1);
  }
}

/** The first bytes of a file (fewer when it is shorter). */
function head(file: string, bytes: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(bytes);
    return buffer.subarray(0, readSync(fd, buffer, 0, bytes, 0));
  } finally {
    closeSync(fd);
  }
}

function isGzip(file: string): boolean {
  const magic = head(file, 2);
  return magic[0] === 0x1f && magic[1] === 0x8b;
}

/** The bytes of a log file, plain or gzip, in chunks; errors name the file. */
export async function* logChunks(file: string): AsyncGenerator<Buffer> {
  const raw = createReadStream(file, { highWaterMark: 1 << 20 });
  const stream = isGzip(file) ? raw.pipe(createGunzip({ chunkSize: 1 << 20 })) : raw;
  try {
    yield* stream as AsyncIterable<Buffer>;
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  }
}

/** What eachLine hands on: every line with its number (a trailing `\r` dropped), and the over-long ones it skipped. */
export interface LineVisitor {
  line(text: string, number: number): void;
  longLine(number: number): void;
}

/**
 * Every line of a log file (plain or gzip), framed as every log input frames them, one at a time: for tools that
 * look at each line (test-format); replay decodes whole blocks instead (readLogFile).
 */
export async function eachLine(file: string, maxLineLength: number, visitor: LineVisitor): Promise<void> {
  let number = 0;
  const sink: LineSink = {
    block: (text) => {
      for (const line of text.split('\n')) visitor.line(line.endsWith('\r') ? line.slice(0, -1) : line, ++number);
    },
    line: (text) => visitor.line(text, ++number),
    longLine: () => visitor.longLine(++number),
  };
  const framer = new LineFramer(maxLineLength);
  for await (const chunk of logChunks(file)) framer.push(chunk, sink);
  framer.end(sink);
}

/** Hits of one text log file, in batches (one per chunk read). */
export async function* readLogFile(file: string, options: ArchiveOptions): AsyncGenerator<KnockHit[]> {
  const decoder = options.decoderFor(file);
  // Year-less stamps are placed relative to when the file was last written.
  const reference = statSync(file).mtimeMs;
  const ctx: DecodeContext = { input: file, reference, bootTime: options.bootTime, fallbackTime: reference, arrival: null };
  const firewall = options.firewallOf?.(file);
  if (firewall !== undefined) ctx.firewall = firewall;
  let batch: KnockHit[] = [];
  const collect = (hit: KnockHit): void => {
    batch.push(hit);
  };
  let lineNumber = 0;
  const framer = new LineFramer(options.maxLineLength);
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
      options.onWarning(`${file}: line ${lineNumber} is longer than ${options.maxLineLength} bytes; skipped`);
    },
  };
  for await (const chunk of logChunks(file)) {
    batch = [];
    framer.push(chunk, sink);
    if (batch.length > 0) yield batch;
  }
  batch = [];
  framer.end(sink);
  if (batch.length > 0) yield batch;
}
