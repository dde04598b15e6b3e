/**
 * Child process for the follower tests: appends numbered lines at a high rate while rotating the file the
 * way logrotate and rsyslog do, then prints a JSON summary. Run as `node numbered-writer.js '<WriterPlan JSON>'`;
 * without an argument (as `node --test` runs every file under test/) it does nothing.
 */
import { closeSync, copyFileSync, fstatSync, ftruncateSync, mkdirSync, openSync, renameSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export type Rotation =
  | 'none'
  | 'rename' // logrotate `create`: rename, then the writer opens a new file (after reopenDelayMs, like rsyslog's HUP)
  | 'delete' // unlink, then a new file
  | 'copytruncate' // copy, then truncate in place between two writes; the writer uses O_APPEND
  | 'copytruncate-hole' // the same with a writer that keeps its offset (no O_APPEND): a hole of NULs
  | 'recycle' // delete path.1, rename path to path.1, create path: the freed inode tends to come back
  | 'symlink'; // the path is a symlink re-pointed to a new target in targetDirectory

export interface WriterPlan {
  file: string;
  total: number;
  linesPerMs: number;
  rotation: Rotation;
  rotateEveryMs: number;
  /** rename/delete/recycle: keep writing to the old fd this long before opening the new file. */
  reopenDelayMs: number;
  /** The file is created only after this delay (missing at start). */
  createAfterMs: number;
  /** Each batch is written in this many pieces, a tick apart, split inside multi-byte characters where possible. */
  piecesPerBatch: number;
  /** Put into every line (e.g. multi-byte UTF-8). */
  text: string;
  /** Before line `longLineAt`, write one line of `longLineBytes` bytes (in pieces). */
  longLineAt: number | null;
  longLineBytes: number;
  /** symlink: where the targets are created. */
  targetDirectory: string | null;
}

export interface WriterSummary {
  written: number;
  rotations: number;
  /** Inode of each file generation, in order. */
  inodes: string[];
}

const PAD = ' IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=10.99.0.2 DST=10.99.0.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54321 DF PROTO=TCP SPT=40000 DPT=7000 WINDOW=64240 RES=0x00 SYN URGP=0';

/** The exact text of line `n` (what the follower must deliver). */
export function numberedLine(n: number, text: string): string {
  return `seq=${n} kernel: knock: ${text}${PAD}`;
}

export const defaultPlan: Omit<WriterPlan, 'file'> = {
  total: 20_000,
  linesPerMs: 10,
  rotation: 'none',
  rotateEveryMs: 300,
  reopenDelayMs: 0,
  createAfterMs: 0,
  piecesPerBatch: 1,
  text: '',
  longLineAt: null,
  longLineBytes: 0,
  targetDirectory: null,
};

class Writer {
  private fd = -1;
  /** Next write position for the writer without O_APPEND. */
  private position = 0;
  private rotations = 0;
  private readonly inodes: string[] = [];
  private generation = 0;
  /** When the writer opens the new file after a rename/delete (null: no reopen pending). */
  private reopenAt: number | null = null;

  constructor(private readonly plan: WriterPlan) {}

  async run(): Promise<WriterSummary> {
    const plan = this.plan;
    if (plan.createAfterMs > 0) await sleep(plan.createAfterMs);
    this.openNew();
    const start = Date.now();
    let lastRotation = start;
    let next = 0;
    while (next < plan.total) {
      const due = Math.min(plan.total, Math.floor((Date.now() - start) * plan.linesPerMs) + plan.linesPerMs);
      const lines: string[] = [];
      for (; next < due; next++) {
        if (next === plan.longLineAt) await this.writeInPieces(Buffer.from(`${'x'.repeat(plan.longLineBytes)}\n`), 16);
        lines.push(`${numberedLine(next, plan.text)}\n`);
      }
      if (lines.length > 0) await this.writeInPieces(Buffer.from(lines.join('')), plan.piecesPerBatch);
      if (this.reopenAt !== null && Date.now() >= this.reopenAt) this.reopen();
      if (plan.rotation !== 'none' && this.reopenAt === null && Date.now() - lastRotation >= plan.rotateEveryMs && next < plan.total) {
        lastRotation = Date.now();
        this.rotate();
      }
      await sleep(1);
    }
    closeSync(this.fd);
    return { written: next, rotations: this.rotations, inodes: this.inodes };
  }

  private async writeInPieces(bytes: Buffer, pieces: number): Promise<void> {
    let from = 0;
    for (let piece = 1; piece <= pieces; piece++) {
      let to = piece === pieces ? bytes.length : Math.floor((bytes.length * piece) / pieces);
      // Prefer to cut inside a multi-byte character (before a continuation byte).
      for (let probe = to; probe < Math.min(bytes.length, to + 64); probe++) {
        if ((bytes[probe]! & 0xc0) === 0x80) {
          to = probe;
          break;
        }
      }
      if (to > from) this.write(bytes.subarray(from, to));
      from = to;
      if (piece < pieces) await sleep(1);
    }
  }

  private write(bytes: Buffer): void {
    if (this.plan.rotation === 'copytruncate-hole') {
      this.position += writeSync(this.fd, bytes, 0, bytes.length, this.position);
    } else {
      writeSync(this.fd, bytes);
    }
  }

  private openNew(): void {
    const plan = this.plan;
    if (plan.rotation === 'symlink') {
      const target = join(plan.targetDirectory!, `generation-${this.generation++}.log`);
      this.fd = openSync(target, 'a');
      symlinkSync(target, `${plan.file}.new-link`);
      renameSync(`${plan.file}.new-link`, plan.file); // re-points the symlink atomically
    } else {
      this.fd = openSync(plan.file, plan.rotation === 'copytruncate-hole' ? 'w' : 'a');
    }
    this.inodes.push(String(fstatSync(this.fd).ino));
  }

  private rotate(): void {
    const plan = this.plan;
    this.rotations++;
    switch (plan.rotation) {
      case 'copytruncate':
      case 'copytruncate-hole':
        copyFileSync(plan.file, `${plan.file}.${this.rotations}`);
        ftruncateSync(this.fd, 0);
        return;
      case 'symlink':
        this.reopen();
        return;
      case 'rename':
        renameSync(plan.file, `${plan.file}.${this.rotations}`);
        break;
      case 'delete':
        unlinkSync(plan.file);
        break;
      case 'recycle':
        try {
          unlinkSync(`${plan.file}.1`);
        } catch {
          // the first rotation has no path.1 yet
        }
        renameSync(plan.file, `${plan.file}.1`);
        break;
    }
    // Until its reopen the writer keeps appending to the old file (rsyslog before logrotate's HUP).
    if (plan.reopenDelayMs > 0) this.reopenAt = Date.now() + plan.reopenDelayMs;
    else this.reopen();
  }

  private reopen(): void {
    const old = this.fd;
    this.openNew();
    closeSync(old);
    this.reopenAt = null;
  }
}

// Only as the main module with a plan (tests import this file for numberedLine and the types).
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] !== undefined) {
  const plan = JSON.parse(process.argv[2]) as WriterPlan;
  if (plan.targetDirectory) mkdirSync(plan.targetDirectory, { recursive: true });
  const summary = await new Writer(plan).run();
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}
