/**
 * What replay reads: firewall logs, plain or gzip, whole rotated sets oldest first (`kern.log.2.gz
 * kern.log.1 kern.log`, whatever order they were given in), and pcap/pcapng captures; separate sources
 * are merged by event time. Pull-based: replay takes one batch of hits at a time, so commands run with
 * --execute finish before the next knock is read.
 */
import { isAscii } from 'node:buffer';
import { createReadStream, openSync, readSync, closeSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createGunzip } from 'node:zlib';
import type { KnockHit } from '../hit.js';
import type { LineDecoder } from '../formats/registry.js';
import { isCaptureMagic } from '../packet/pcap-file.js';
import { PcapFileInput } from './pcap-file.js';

export interface ArchiveOptions {
  /** A fresh decoder per file (each keeps its own timestamp cache and counters). */
  decoderFor: (file: string) => LineDecoder;
  /** Lines longer than this many bytes are skipped with a warning (MaxLineLength, as the follower). */
  maxLineLength: number;
  /** When the machine that wrote printk-uptime stamps booted (ms); 0 when unknown. */
  bootTime: number;
  onWarning: (message: string) => void;
  /** Whether some door uses this protocol and port: captures skip other packets before decoding addresses. */
  watches?: (proto: KnockHit['proto'], port: number) => boolean;
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
  for (const file of files) yield* isCaptureMagic(head(file, 4)) ? new PcapFileInput(file, options.watches ?? null).batches() : readLogFile(file, options);
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

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
/** Bytes of lines decoded into one string at a time. */
const BLOCK_BYTES = 64 * 1024;

function isGzip(file: string): boolean {
  const magic = head(file, 2);
  return magic[0] === 0x1f && magic[1] === 0x8b;
}

/** Hits of one text log file, in batches (one per chunk read). */
export async function* readLogFile(file: string, options: ArchiveOptions): AsyncGenerator<KnockHit[]> {
  const decoder = options.decoderFor(file);
  // Year-less stamps are placed relative to when the file was last written.
  const ctx = { input: file, reference: statSync(file).mtimeMs, bootTime: options.bootTime, fallbackTime: 0 };
  ctx.fallbackTime = ctx.reference;
  const raw = createReadStream(file, { highWaterMark: 1 << 20 });
  const stream = isGzip(file) ? raw.pipe(createGunzip({ chunkSize: 1 << 20 })) : raw;
  const maxLineLength = options.maxLineLength;
  let lineNumber = 0;
  const warnLongLine = (number: number): void => {
    options.onWarning(`${file}: line ${number} is longer than ${maxLineLength} bytes; skipped`);
  };
  const skipLongLine = (number: number): void => {
    decoder.skipLongLine();
    warnLongLine(number);
  };
  let batch: KnockHit[] = [];
  const collect = (hit: KnockHit): void => {
    batch.push(hit);
  };
  /** One complete line that may hold multi-byte characters. */
  const take = (line: string): void => {
    lineNumber++;
    if (line.length > maxLineLength || Buffer.byteLength(line) > maxLineLength) {
      skipLongLine(lineNumber);
      return;
    }
    const hit = decoder.decode(line.charCodeAt(line.length - 1) === CARRIAGE_RETURN ? line.slice(0, -1) : line, ctx);
    if (hit !== null) batch.push(hit);
  };
  // Lines are split on bytes, so a UTF-8 character cut by a chunk boundary is never decoded in halves, and
  // whole chunks of complete lines are decoded at once.
  let carry: Buffer | null = null;
  let skipping = false;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let start = 0;
      if (skipping) {
        // Still inside an over-long line: drop up to its end.
        const end = chunk.indexOf(NEWLINE);
        if (end < 0) continue;
        start = end + 1;
        skipping = false;
      }
      const last = chunk.lastIndexOf(NEWLINE);
      batch = [];
      if (last >= start) {
        if (carry !== null) {
          const end = chunk.indexOf(NEWLINE, start);
          take(Buffer.concat([carry, chunk.subarray(start, end)]).toString('utf8'));
          carry = null;
          start = end + 1;
        }
        while (start <= last) {
          // Blocks of whole lines small enough to stay in V8's young generation (a 1 MB string would go straight
          // to the old one, and 250 of them per million lines made full collections the main cost).
          let end = start + BLOCK_BYTES >= last ? last : chunk.lastIndexOf(NEWLINE, start + BLOCK_BYTES);
          if (end < start) end = chunk.indexOf(NEWLINE, start + BLOCK_BYTES);
          const block = chunk.subarray(start, end);
          // ASCII, by far the usual case, decodes fastest as latin1, which means the same for it; its lengths are bytes.
          if (isAscii(block)) {
            const first = lineNumber + 1;
            lineNumber += decoder.decodeLines(block.toString('latin1'), ctx, collect, maxLineLength, (index) => warnLongLine(first + index));
          } else {
            for (const line of block.toString('utf8').split('\n')) take(line);
          }
          start = end + 1;
        }
      }
      if (start < chunk.length) {
        carry = carry === null ? chunk.subarray(start) : Buffer.concat([carry, chunk.subarray(start)]);
        if (carry.length > maxLineLength) {
          lineNumber++;
          skipLongLine(lineNumber);
          carry = null;
          skipping = true;
        }
      }
      if (batch.length > 0) yield batch;
    }
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  }
  if (carry !== null) {
    batch = [];
    take(carry.toString('utf8'));
    if (batch.length > 0) yield batch;
  }
}
