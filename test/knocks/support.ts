/** Helpers for tests of rolling doors: secret files, and the test vectors of docs/rolling-sequences.md §4. */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers.js';

/**
 * Writes a secret file (mode 0600, owned by whoever runs the tests) and returns its path. The default content is
 * made as docs/rolling-sequences.md §2 tells users to (24 random bytes in base64 and a line break: a 32-byte
 * key). Raw random bytes would end in a line break once in 256 files, which the reader strips.
 */
export function writeSecretFile(dir: string, content: Uint8Array = randomSecretText(), name = 'door.secret'): string {
  const path = join(dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

function randomSecretText(): Buffer {
  return Buffer.from(`${randomBytes(24).toString('base64')}\n`);
}

/** One row of the test vector table. */
export interface Vector {
  /** The key file's bytes. */
  file: Buffer;
  door: string;
  /** Unix time in seconds. */
  time: number;
  period: number;
  first: number;
  last: number;
  proto: 'tcp' | 'udp';
  length: number;
  T: number;
  sequence: number[];
  next: number[];
}

/** The rows of §4's table, read from the document itself. */
export function documentVectors(): Vector[] {
  const text = readFileSync(join(repoRoot, 'docs', 'rolling-sequences.md'), 'utf8');
  const section = text.slice(text.indexOf('## 4. Test vectors'), text.indexOf('## 5.'));
  const ports = (cell: string): number[] => cell.split(',').map(Number);
  return section
    .split('\n')
    .filter((line) => /^\| [0-9a-f]+ \|/.test(line))
    .map((line) => {
      const [file, door, time, period, range, length, T, sequence, next] = line.split('|').slice(1, -1).map((cell) => cell.trim()) as [string, string, string, string, string, string, string, string, string];
      const [, low, high, proto] = /^(\d+)-(\d+)(?::(udp))?$/.exec(range)!;
      return {
        file: Buffer.from(file, 'hex'),
        door,
        time: Number(time),
        period: Number(period),
        first: Number(low),
        last: Number(high),
        proto: proto === 'udp' ? 'udp' : 'tcp',
        length: Number(length),
        T: Number(T),
        sequence: ports(sequence),
        next: ports(next),
      };
    });
}

/** A config section for a rolling door. */
export function rollingDoor(name: string, secret: string, ports: string, extra: string[] = []): string {
  return `[${name}]\n\tsequence_secret = ${secret}\n\tsequence_ports = ${ports}\n${extra.map((line) => `\t${line}\n`).join('')}`;
}
