/**
 * Shared test helpers. Tests run on the tsc output (`dist/test/…`) with the repository root as cwd
 * (`npm test` guarantees it), so paths are resolved from there.
 */
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'node:test';
import { defaultDoor } from '../src/config/parse.js';
import type { DoorConfig } from '../src/config/types.js';

function findRepoRoot(): string {
  const root = process.cwd();
  const pkg = join(root, 'package.json');
  if (!existsSync(pkg) || JSON.parse(readFileSync(pkg, 'utf8')).name !== 'knocktail') {
    throw new Error(`tests must run from the knocktail repository root (cwd is ${root}); use npm test`);
  }
  return root;
}

export const repoRoot = findRepoRoot();

/** Path of a file under fixtures/. */
export function fixture(...parts: string[]): string {
  return join(repoRoot, 'fixtures', ...parts);
}

/** Path of the compiled CLI. */
export const cliPath = join(repoRoot, 'dist', 'src', 'cli.js');

export const isRoot = process.getuid?.() === 0;

/** Whether a process runs (a zombie, killed but not yet reaped, counts as gone). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** Temporary directories are named `knocktail-…-PID-XXXXXX`: the pid of the test process that made them. */
const TEMP_DIR_NAME = /^knocktail-[a-z-]*?-(\d+)-[A-Za-z0-9]{6}$/;

/** Removes a directory, first clearing immutable attributes (lockDirectory) that a killed run left set. */
function removeTree(dir: string): void {
  if (isRoot) spawnSync('chattr', ['-R', '-i', dir], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Sweeps what killed test runs left in the temporary directory: their directories are removed, immutable ones
 * included, when the process named in them is gone (directories of test processes still running are left alone).
 */
function sweepTempDirs(): void {
  for (const name of readdirSync(tmpdir())) {
    const pid = TEMP_DIR_NAME.exec(name)?.[1];
    if (pid !== undefined && Number(pid) !== process.pid && !isAlive(Number(pid))) removeTree(join(tmpdir(), name));
  }
}
sweepTempDirs();

const tempDirs: string[] = [];
process.once('exit', () => {
  for (const dir of tempDirs) removeTree(dir);
});

/** A fresh temporary directory, removed when the process exits (or by the next run's sweep when it is killed). */
export function tempDir(prefix = 'knocktail-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}${process.pid}-`));
  tempDirs.push(dir);
  return dir;
}

/** Makes a directory unwritable (even for root, via the immutable attribute); returns the undo, or why it can't. */
export function lockDirectory(dir: string): (() => void) | string {
  if (!isRoot) {
    chmodSync(dir, 0o555);
    return () => chmodSync(dir, 0o755);
  }
  const locked = spawnSync('chattr', ['+i', dir], { encoding: 'utf8' });
  if (locked.error || locked.status !== 0) return `root ignores permissions and chattr +i failed: ${locked.error?.message ?? locked.stderr}`;
  return () => void spawnSync('chattr', ['-i', dir]);
}

/** Skip reason when lockDirectory cannot work here (e.g. a file system without chattr), else false. */
export const directoryLockUnavailable: string | false = (() => {
  const result = lockDirectory(tempDir('knocktail-lock-probe-'));
  if (typeof result === 'string') return result;
  result();
  return false;
})();

/** Skip reason when user nobody (uid 65534) cannot run node and the CLI from this checkout (e.g. it lives under /root), else false. */
export function canRunAsNobody(): string | false {
  for (const file of [process.execPath, cliPath]) {
    const parts = file.split('/').slice(1);
    for (let i = 1; i < parts.length; i++) {
      const dir = `/${parts.slice(0, i).join('/')}`;
      if ((statSync(dir).mode & 0o001) === 0) return `user nobody cannot enter ${dir}`;
    }
    if ((statSync(file).mode & 0o004) === 0) return `user nobody cannot read ${file}`;
  }
  return false;
}

/** Absolute path of an executable on PATH (or in the sbin directories), or null. */
export function which(command: string): string | null {
  const path = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;
  for (const dir of path.split(':')) {
    if (dir && existsSync(join(dir, command))) return join(dir, command);
  }
  return null;
}

/** Skip reason when any of `tools` is missing or the test is not root; false when the test can run. */
export function needs(options: { root?: boolean; tools?: string[] }): string | false {
  if (options.root && !isRoot) return 'needs root (network namespaces, firewall rules)';
  const missing = (options.tools ?? []).filter((tool) => which(tool) === null);
  return missing.length ? `needs ${missing.join(', ')} (installed by .ci/run)` : false;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the compiled CLI with `args` and collects its output. */
export function runCli(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string | Buffer; timeoutMs?: number; /** run as this user (and group of the same number) */ uid?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const user = options.uid === undefined ? {} : { uid: options.uid, gid: options.uid };
    const child = execFile(
      process.execPath,
      [cliPath, ...args],
      { cwd: options.cwd ?? repoRoot, env: options.env ?? process.env, timeout: options.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, ...user },
      (error, stdout, stderr) => {
        const code = error && typeof error.code === 'number' ? error.code : error ? null : 0;
        resolve({ code, signal: (error?.signal as NodeJS.Signals | undefined) ?? null, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Runs a command synchronously and throws with its output when it fails (for test set-up). */
export function sh(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.status}): ${result.stderr || result.stdout}`);
  }
  return result.stdout;
}

/** A door as the config parser would make it (knockd's defaults), with `overrides`. */
export function doorConfig(overrides: Partial<DoorConfig> = {}): DoorConfig {
  return { ...defaultDoor(overrides.name ?? 'door', { file: 'test.conf', line: 1 }), ...overrides };
}

/** One event of `knocktail replay --json`. */
export interface ReplayEvent {
  time: string;
  event: string;
  door?: string;
  ip?: string;
  command?: string;
  stage?: number;
  /** Opens: the firewall that saw the last knock, when the logs name one. */
  firewall?: string;
  message?: string;
  /** Refusals of one-time knocks (rolling, encrypted doors). */
  reason?: string;
  detail?: string;
  /** Opens of encrypted doors: the request; of rolling doors: the period. */
  port?: number;
  duration?: number;
  knockIp?: string;
  period?: number;
}

/** One input in the summary of `knocktail replay --json` (README, "Replay: what would have opened"). */
export interface ReplayInputJson {
  input: string;
  kind: 'log' | 'gzip' | 'capture';
  firewall: string | null;
  lines: { read: number; packets: number; skipped: number; ignored: number; otherProtocols: number; malformed: number; tooLong: number } | null;
  capture: { packets: number; knockPorts: number } | null;
  time: { knocksTooOld: number; knocksOutOfOrder: number; largestStepBackMs: number; longGaps: number; firstLongGaps: Array<{ from: string; to: string }> };
  repeats: Array<{ of: string; packets: number }>;
  problem: string | null;
}

/** The closing `{"summary": …}` object of `knocktail replay --json`. */
export interface ReplaySummaryJson {
  inputs: ReplayInputJson[];
  packets: number;
  opens: Array<{ door: string; ip: string; count: number }>;
  /** Per door and reason, one-time knocks that opened nothing. */
  refused: Array<{ door: string; reason: string; count: number }>;
  timeouts: number;
  events: number;
  commands: { run: number; failed: number };
  complete: boolean;
}

/** The output of `knocktail replay --json`: one event per line, then the summary, which must be the last line. */
export function replayOutput(stdout: string): { events: ReplayEvent[]; summary: ReplaySummaryJson } {
  const records = stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as ReplayEvent & { summary?: ReplaySummaryJson });
  const last = records.pop();
  if (last?.summary === undefined) throw new Error(`replay --json did not end with its summary: ${stdout.slice(-500)}`);
  if (records.some((record) => record.summary !== undefined)) throw new Error('replay --json printed more than one summary');
  return { events: records, summary: last.summary };
}

/** Runs `knocktail replay --json ARGS`, which must succeed, and returns its events. */
export async function replayEvents(args: string[], env: NodeJS.ProcessEnv = { ...process.env, TZ: 'UTC' }): Promise<ReplayEvent[]> {
  const result = await runCli(['replay', '--json', ...args], { env });
  if (result.code !== 0) throw new Error(`knocktail replay exited ${result.code}: ${result.stderr}`);
  return replayOutput(result.stdout).events;
}

/** Runs `body` (synchronous) with the time zone set to `zone` and restores it: no test changes TZ for the whole process. */
export function inTimeZone<T>(zone: string, body: () => T): T {
  const saved = process.env.TZ;
  process.env.TZ = zone;
  try {
    return body();
  } finally {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
}

/** Every test of the calling file (or suite) runs with the time zone `zone`, restored after each test. */
export function timeZoneForEachTest(zone: string): void {
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env.TZ;
    process.env.TZ = zone;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  });
}
