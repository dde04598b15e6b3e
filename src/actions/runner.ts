/**
 * Runs commands the way knockd does (`/bin/sh -c`, so users can write pipelines) without knockd's
 * weaknesses: output and exit status are captured and reported, a command that hangs is killed after a
 * limit, and every command runs on its own so no knock waits for another's command.
 */
import { spawn } from 'node:child_process';

export interface CommandResult {
  /** Exit status, or null when killed by a signal or never started. */
  status: number | null;
  signal: NodeJS.Signals | null;
  /** Combined stdout/stderr, at most OUTPUT_LIMIT bytes (the end is kept). */
  output: string;
  durationMs: number;
  /** Killed because it ran longer than its limit. */
  timedOut: boolean;
  /** Why it could not be started (e.g. /bin/sh missing). */
  error: string | null;
}

/** Whether a command did not do its job: could not start, was killed, or exited non-zero. */
export function commandFailed(result: CommandResult): boolean {
  return result.error !== null || result.timedOut || result.signal !== null || result.status !== 0;
}

/** How a command ended, in a few words. */
export function describeOutcome(result: CommandResult): string {
  if (result.error !== null) return `could not run: ${result.error}`;
  if (result.timedOut) return 'killed at its time limit';
  if (result.signal !== null) return `killed by ${result.signal}`;
  return `exit status ${result.status}`;
}

export interface CommandRunner {
  /** Runs `command`; `limitMs` 0 = no limit. Never rejects. */
  run(command: string, env: Readonly<Record<string, string>>, limitMs: number): Promise<CommandResult>;
}

const OUTPUT_LIMIT = 16 * 1024;
/** After SIGTERM at the limit, how long a command gets before SIGKILL. */
const KILL_GRACE_MS = 2000;
/** How long output may trail the shell's exit. */
const OUTPUT_SETTLE_MS = 200;

export class ShellRunner implements CommandRunner {
  run(command: string, env: Readonly<Record<string, string>>, limitMs: number): Promise<CommandResult> {
    const started = Date.now();
    return new Promise((resolve) => {
      let output = '';
      let timedOut = false;
      let killTimer: NodeJS.Timeout | undefined;
      let limitTimer: NodeJS.Timeout | undefined;
      // Own process group (like knockd's setsid), so the limit can kill the whole pipeline.
      const child = spawn('/bin/sh', ['-c', command], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
      const collect = (chunk: Buffer): void => {
        output += chunk.toString('utf8');
        if (output.length > 2 * OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
      };
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      let done = false;
      const finish = (status: number | null, signal: NodeJS.Signals | null, error: string | null): void => {
        if (done) return;
        done = true;
        clearTimeout(limitTimer);
        clearTimeout(killTimer);
        resolve({ status, signal, output: output.slice(-OUTPUT_LIMIT), durationMs: Date.now() - started, timedOut, error });
      };
      child.once('error', (error) => finish(null, null, error.message));
      child.once('exit', (status, signal) => {
        // The shell is done. Its output is complete unless it left a background job holding the pipes
        // (`daemon &`): take what arrived within a moment and let the job run on, as knockd's system() does.
        clearTimeout(limitTimer);
        const settle = setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
          finish(status, signal, null);
        }, OUTPUT_SETTLE_MS);
        child.once('close', () => {
          clearTimeout(settle);
          finish(status, signal, null);
        });
      });
      if (limitMs > 0) {
        limitTimer = setTimeout(() => {
          timedOut = true;
          killGroup(child.pid, 'SIGTERM');
          killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
        }, limitMs);
      }
    });
  }
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** Replay's default: reports what would run, runs nothing. */
export class DryRunner implements CommandRunner {
  run(): Promise<CommandResult> {
    return Promise.resolve({ status: 0, signal: null, output: '', durationMs: 0, timedOut: false, error: null });
  }
}
