/**
 * The practical limits the benchmarks compare against, each run as its own Node process (so start-up is
 * counted as it is for knocktail):
 *   baseline.js split FILE     read the file in 1 MB chunks and split it into line strings (the fastest plain way)
 *   baseline.js readline FILE  the same with node:readline (what most Node log tailers do)
 *   baseline.js pcap FILE      walk the capture file's records with knocktail's reader, no packet parsing
 * Each prints the number of lines or packets it saw.
 */
import { isAscii } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { CaptureFileReader } from '../src/packet/pcap-file.js';

async function split(file: string): Promise<number> {
  let lines = 0;
  let carry: Buffer | null = null;
  for await (const read of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    const chunk: Buffer = carry === null ? read : Buffer.concat([carry, read]);
    const end = chunk.lastIndexOf(0x0a);
    if (end < 0) {
      carry = chunk;
      continue;
    }
    const bytes = chunk.subarray(0, end);
    // Plain ASCII decodes faster as latin1, and means the same.
    const text = bytes.toString(isAscii(bytes) ? 'latin1' : 'utf8');
    lines += text.split('\n').length;
    carry = end + 1 < chunk.length ? chunk.subarray(end + 1) : null;
  }
  return lines + (carry !== null ? 1 : 0);
}

async function readline(file: string): Promise<number> {
  let lines = 0;
  for await (const line of createInterface({ input: createReadStream(file, { highWaterMark: 1 << 20 }), crlfDelay: Infinity })) {
    if (line !== undefined) lines++;
  }
  return lines;
}

async function pcap(file: string): Promise<number> {
  const reader = await CaptureFileReader.open(file);
  let packets = 0;
  await reader.read(() => {
    packets++;
  });
  return packets;
}

const modes: Record<string, (file: string) => Promise<number>> = { split, readline, pcap };
const [mode, file] = process.argv.slice(2);
const run = mode === undefined ? undefined : modes[mode];
if (run === undefined || file === undefined) {
  process.stderr.write('usage: node dist/bench/baseline.js split|readline|pcap FILE\n');
  process.exit(2);
}
process.stdout.write(`${await run(file)}\n`);
