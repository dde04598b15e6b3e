/**
 * What every benchmark shares: where things are, running a process and timing it, reading a process's memory
 * and CPU from /proc, statistics, and a scratch directory that is always removed.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs as dist/bench/harness.js). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const cliPath = join(repoRoot, 'dist', 'src', 'cli.js');
/** Helper processes of the benchmarks (baselines), compiled beside this file. */
export const helperPath = fileURLToPath(new URL('./baseline.js', import.meta.url));

/** Milliseconds on the wall clock with sub-ms precision (comparable with `date +%s%N` in another process). */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

const scratchDirs = new Set<string>();
/** Processes the benchmark started and has not seen exit. */
const children = new Set<ChildProcess>();
// Interrupted: no process or scratch directory is left behind.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of children) child.kill('SIGTERM');
    for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  });
}

/** Tracks a started process until it exits (see the signal handlers above). */
function track<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export interface TimedRun {
  wallMs: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Bytes the process wrote to stdout (its output is read and counted, never kept). */
  stdoutBytes: number;
  /** The last 64 KB of stdout, for summary lines. */
  stdoutTail: string;
  stderr: string;
}

/** Runs a command to its end and times it from spawn to exit; stdout is drained as it comes. */
export function timedRun(command: string, args: string[], options: { cwd?: string } = {}): Promise<TimedRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = track(spawn(command, args, { cwd: options.cwd ?? repoRoot, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdoutBytes = 0;
    let tail = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      tail = (tail + chunk.toString('utf8')).slice(-65536);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-65536);
    });
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ wallMs: performance.now() - started, code, signal, stdoutBytes, stdoutTail: tail, stderr }));
  });
}

/** Runs `fn` `times` times and returns the runs; throws with the process's stderr when one fails. */
export async function repeat(times: number, what: string, fn: () => Promise<TimedRun>): Promise<TimedRun[]> {
  const runs: TimedRun[] = [];
  for (let i = 0; i < times; i++) {
    const run = await fn();
    if (run.code !== 0) throw new Error(`${what} failed (exit ${run.code ?? run.signal}): ${run.stderr.trim() || run.stdoutTail.slice(-2000)}`);
    runs.push(run);
  }
  return runs;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile (p in 0..100) of unsorted values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** A field of /proc/PID/status in kB (VmRSS, VmHWM, …), or NaN once the process is gone. */
export function procStatusKb(pid: number, field: string): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : NaN;
  } catch {
    return NaN;
  }
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU time (user + system) a process has used so far, in ms. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** Absolute path of an executable on PATH, or null. */
export function which(command: string): string | null {
  for (const dir of `${process.env.PATH ?? ''}:/usr/sbin:/sbin`.split(':')) {
    if (dir && existsSync(join(dir, command))) return join(dir, command);
  }
  return null;
}

/** A scratch directory for one benchmark, removed whatever happens (hundreds of MB of generated input). */
export async function withScratch<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'knocktail-bench-'));
  scratchDirs.add(dir);
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    scratchDirs.delete(dir);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/** Polls `check` every few ms until it returns a value other than undefined; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => T | undefined, everyMs = 5): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * A running daemon, `knocktail -c CONF`. Ready once it announced "listening on": with `-v` on its stdout (the
 * start-up benchmark's definition), else in the config's LogFile (the long runs, which should not pay for -v).
 */
export class DaemonProcess {
  readonly child: ChildProcess;
  /** ms from spawn to the "listening on" line. */
  readonly ready: Promise<number>;
  private stdout = '';
  private stderr = '';
  private readonly exited: Promise<void>;

  constructor(configPath: string, readyIn: { stdout: true } | { logFile: string }) {
    const started = performance.now();
    const verbose = 'stdout' in readyIn;
    this.child = track(spawn(process.execPath, [cliPath, '-c', configPath, ...(verbose ? ['-v'] : [])], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] }));
    this.exited = new Promise((done) => this.child.once('exit', () => done()));
    let seen = false;
    const announced = (text: string): boolean => text.includes('listening on');
    this.child.stdout!.on('data', (chunk: Buffer) => {
      // Only the start-up lines are kept; -v prints every knock afterwards.
      if (!seen) this.stdout += chunk.toString('utf8');
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-16384);
    });
    this.ready = new Promise((resolve, reject) => {
      const succeed = (): void => {
        seen = true;
        resolve(performance.now() - started);
      };
      this.child.once('exit', (code, signal) => {
        if (!seen) reject(new Error(`knocktail exited before it was ready (${code ?? signal}): ${this.stderr.trim() || this.stdout.trim()}`));
      });
      if (verbose) {
        this.child.stdout!.on('data', () => {
          if (!seen && announced(this.stdout)) succeed();
        });
        return;
      }
      const poll = setInterval(() => {
        if (seen || this.child.exitCode !== null) return clearInterval(poll);
        if (existsSync(readyIn.logFile) && announced(readFileSync(readyIn.logFile, 'utf8'))) {
          clearInterval(poll);
          succeed();
        }
      }, 2);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Warnings and errors the daemon printed (the last 16 KB). */
  get errors(): string {
    return this.stderr;
  }

  /** SIGTERM, then SIGKILL if it has not exited within 10 s; resolves once it is gone. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(killer);
  }
}
