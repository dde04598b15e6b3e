/**
 * Shared by the follower tests: run the numbered writer in its own process, collect what a follower delivers,
 * and check that every number arrived exactly once and in order.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LogFollower, type FollowerOptions, type FollowerStatus } from '../../src/inputs/follower.js';
import { repoRoot, tempDir } from '../helpers.js';
import { defaultPlan, numberedLine, type WriterPlan, type WriterSummary } from './numbered-writer.js';
import type { LineSink } from '../../src/inputs/line-framer.js';

const writerScript = join(repoRoot, 'dist', 'test', 'inputs', 'numbered-writer.js');

const root = tempDir();
/** A fresh folder per case inside one temporary directory (tempDir() registers an exit hook per call). */
export function freshDirectory(): string {
  return mkdtempSync(join(root, 'case-'));
}

const started = new Set<{ stop(): Promise<void> }>();
/** Registers a follower or reader to be stopped after the file's tests, so a failed assertion cannot leave it running (and the test process hanging). */
export function stopAfterTests<T extends { stop(): Promise<void> }>(thing: T): T {
  started.add(thing);
  return thing;
}
after(async () => {
  for (const thing of started) await thing.stop();
});

/** Runs the writer process to completion. */
export function runWriter(plan: WriterPlan): Promise<WriterSummary> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writerScript, JSON.stringify(plan)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(JSON.parse(stdout) as WriterSummary);
      else reject(new Error(`writer exited with ${code}: ${stderr}`));
    });
  });
}

/** What a follower delivered: the numbers of well-formed lines, anything else, and the warnings. */
export class Received {
  readonly numbers: number[] = [];
  readonly malformed: string[] = [];
  readonly warnings: string[] = [];

  constructor(private readonly text = '') {}

  readonly onLine = (line: string): void => {
    const match = /^seq=(\d+) /.exec(line);
    const number = match ? Number(match[1]) : -1;
    if (number >= 0 && line === numberedLine(number, this.text)) this.numbers.push(number);
    else this.malformed.push(line.length > 200 ? `${line.slice(0, 200)}… (${line.length} chars)` : line);
  };

  readonly onWarning = (message: string): void => {
    this.warnings.push(message);
  };

  get last(): number {
    return this.numbers.at(-1) ?? -1;
  }

  /** Every number in [from, to) exactly once, in order, and nothing else. */
  assertExactlyOnceInOrder(from: number, to: number): void {
    assert.deepEqual(this.malformed.slice(0, 5), [], 'lines that are not numbered lines (broken, merged or mangled)');
    const lost: number[] = [];
    const seen = new Uint8Array(to);
    let duplicates = 0;
    let outOfOrder = 0;
    for (let i = 0; i < this.numbers.length; i++) {
      const n = this.numbers[i]!;
      if (seen[n]) duplicates++;
      seen[n] = 1;
      if (i > 0 && n < this.numbers[i - 1]!) outOfOrder++;
    }
    for (let n = from; n < to; n++) if (!seen[n]) lost.push(n);
    assert.deepEqual({ lost: lost.length, duplicates, outOfOrder, firstLost: lost.slice(0, 10) }, { lost: 0, duplicates: 0, outOfOrder: 0, firstLost: [] });
    assert.equal(this.numbers[0], from);
    assert.equal(this.numbers.length, to - from);
  }
}

/** Polls `condition` until it holds; fails after a generous limit (a hang guard, not a speed check). */
export async function waitFor(condition: () => boolean, what: string, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(5);
  }
}

/** The follower's LineSink as one callback per line (blocks split, a trailing \r dropped as the decoder does). */
export function lineSink(onLine: (line: string) => void): LineSink {
  return {
    block: (text) => {
      for (const line of text.split('\n')) onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
    },
    line: (text) => onLine(text),
    longLine: () => {},
  };
}

export interface FollowRun {
  received: Received;
  summary: WriterSummary;
  status: FollowerStatus;
}

/**
 * Follows plan.file while the writer runs, waits until the last line arrived (while still following: the
 * final drain of stop() must not be what delivers it), then stops the follower.
 */
export async function followWhileWriting(
  plan: Partial<WriterPlan> & { file: string },
  options: Partial<FollowerOptions> = {},
  received = new Received(plan.text),
): Promise<FollowRun> {
  const fullPlan: WriterPlan = { ...defaultPlan, ...plan };
  const follower = stopAfterTests(new LogFollower({
    path: plan.file,
    maxLineLength: 65536,
    cursorFile: null,
    fromEnd: false,
    lines: lineSink(received.onLine),
    onWarning: received.onWarning,
    ...options,
  }));
  await follower.start();
  try {
    const summary = await runWriter(fullPlan);
    await waitFor(() => received.last === fullPlan.total - 1, `line ${fullPlan.total - 1} (last received: ${received.last})`);
    return { received, summary, status: follower.status() };
  } finally {
    await follower.stop();
  }
}

export interface Followed {
  follower: LogFollower;
  lines: string[];
  warnings: string[];
}

/** A follower on `path` (no cursor unless given) collecting its lines and warnings. */
export async function follow(path: string, options: Partial<FollowerOptions> = {}): Promise<Followed> {
  const lines: string[] = [];
  const warnings: string[] = [];
  const follower = stopAfterTests(new LogFollower({
    path,
    maxLineLength: 65536,
    cursorFile: null,
    fromEnd: false,
    lines: lineSink((line) => lines.push(line)),
    onWarning: (message) => warnings.push(message),
    ...options,
  }));
  await follower.start();
  return { follower, lines, warnings };
}

/** Appends, then waits until the follower has looked at the file with what was appended. */
export async function appendSeen(followed: Followed, file: string, data: string | Buffer): Promise<void> {
  appendFileSync(file, data);
  const size = statSync(file).size;
  await waitFor(() => followed.follower.status().size === size, `the follower to see ${size} bytes`);
}
