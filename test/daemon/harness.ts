/**
 * Shared by the daemon tests: a scratch directory with a config whose doors' commands append to a
 * file, firewall log lines written the way the kernel and rsyslog write them, and the real daemon
 * (`node dist/src/cli.js`) run as a child process, asked through its control socket, stopped by pid.
 * Every daemon a test starts is killed when the test process ends, even after a failed assertion.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FileStopStore } from '../../src/actions/file-stop-store.js';
import type { PendingStop } from '../../src/actions/stop-store.js';
import { type DaemonStatus, requestStatus } from '../../src/daemon/control.js';
import { cliPath, repoRoot, tempDir } from '../helpers.js';

/** Liveness bound for waits: a daemon that never gets there fails the test instead of hanging it (not a speed assertion). */
const WAIT_LIMIT_MS = 20_000;

export interface Scratch {
  dir: string;
  config: string;
  /** The followed firewall log. */
  fwLog: string;
  /** Where the doors' commands write one line each: `start 10.0.0.1`, `stop 10.0.0.1`, … */
  commands: string;
  logFile: string;
  stateDir: string;
}

/**
 * A scratch directory; `doors` (and `options`, extra [options] lines) complete a config that follows
 * `fw.log` and logs to `knocktail.log`. `CMDS` in either is replaced by the commands file's path.
 */
export function scratch(doors: string, options = ''): Scratch {
  const dir = tempDir('knocktail-daemon-');
  const paths = {
    dir,
    config: join(dir, 'knocktail.conf'),
    fwLog: join(dir, 'fw.log'),
    commands: join(dir, 'commands'),
    logFile: join(dir, 'knocktail.log'),
    stateDir: join(dir, 'state'),
  };
  writeFileSync(paths.fwLog, '');
  writeConfig(paths, doors, options);
  return paths;
}

/** (Re)writes the scratch config. */
export function writeConfig(s: Scratch, doors: string, options = ''): void {
  const text = `[options]\n  LogFile = ${s.logFile}\n  StateDir = ${s.stateDir}\n  FirewallLog = ${s.fwLog}\n${options}\n${doors}\n`;
  writeFileSync(s.config, text.replaceAll('CMDS', s.commands));
}

/** A door that records its start and stop commands in the commands file. */
export function recordingDoor(name: string, sequence: string, extra = ''): string {
  return (
    `[${name}]\n  sequence = ${sequence}\n  seq_timeout = 30\n` +
    `  start_command = echo "start ${name} %IP%" >> CMDS\n  stop_command = echo "stop ${name} %IP%" >> CMDS\n${extra}`
  );
}

/** An iptables LOG line as rsyslog writes it (RFC 3339 stamp, microseconds), for a packet from `src` to `port`. */
export function knockLine(src: string, port: number, options: { proto?: 'TCP' | 'UDP'; time?: Date; prefix?: string } = {}): string {
  const stamp = (options.time ?? new Date()).toISOString();
  const proto = options.proto ?? 'TCP';
  const tail = proto === 'TCP' ? `PROTO=TCP SPT=40000 DPT=${port} WINDOW=64240 RES=0x00 SYN URGP=0 ` : `PROTO=UDP SPT=40000 DPT=${port} LEN=8 `;
  return `${stamp} vm kernel: [  446.351538] ${options.prefix ?? 'KNOCK'} IN=eth0 OUT= SRC=${src} DST=10.66.0.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF ${tail}\n`;
}

/** Appends knocks from `src` on each port to the firewall log. */
export function knock(s: Scratch, src: string, ...ports: number[]): void {
  appendFileSync(s.fwLog, ports.map((port) => knockLine(src, port)).join(''));
}

/** Lines of a file, [] when it does not exist. */
export function linesOf(path: string): string[] {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter((line) => line !== '') : [];
}

/** The stops recorded in a stopped daemon's state directory (reading compacts the journal). */
export function recordedStops(s: Scratch): PendingStop[] {
  const problems: string[] = [];
  const store = new FileStopStore(s.stateDir, (problem) => problems.push(problem));
  const stops = store.load();
  store.close();
  if (problems.length > 0) throw new Error(problems.join('\n'));
  return stops;
}

/** Polls `condition` until it holds; fails with `what` and `context()` after WAIT_LIMIT_MS. */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, context: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${context()}`);
    await sleep(50);
  }
}

const children = new Set<ChildProcess>();
const killChildren = (): void => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
};
// A test that failed half-way leaves its daemon running, whose pipes would keep the file's process alive until the
// test timeout: killed when the file's tests are over.
after(killChildren);
process.once('exit', killChildren);

/** The real daemon, as a child process. */
export class DaemonProcess {
  readonly child: ChildProcess;
  private out = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    this.child = spawn(process.execPath, [cliPath, ...args], { cwd: options.cwd ?? repoRoot, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(this.child);
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.out += chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.out += chunk));
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        children.delete(this.child);
        resolve({ code, signal });
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** What it printed on stdout and stderr so far. */
  get output(): string {
    return this.out;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) process.kill(this.pid, signal);
  }

  /** Sends `signal` and waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.signal(signal);
    return this.exited;
  }
}

/** Starts the daemon on a scratch config (`-c CONF` plus `args`) and waits until it runs. */
export async function startDaemon(s: Scratch, ...args: string[]): Promise<DaemonProcess> {
  const daemon = new DaemonProcess(['-c', s.config, ...args]);
  await waitUntilRunning(s, daemon);
  return daemon;
}

/** Waits until the daemon of `s` answers `running` on its control socket. */
export async function waitUntilRunning(s: Scratch, daemon: DaemonProcess | null = null): Promise<DaemonStatus> {
  let status: DaemonStatus | null = null;
  await waitFor(
    'the daemon to run',
    async () => {
      if (daemon !== null && !daemon.running) throw new Error(`the daemon exited during start-up:\n${daemon.output}`);
      status = await requestStatus(s.stateDir).catch(() => null);
      return status?.state === 'running';
    },
    () => daemon?.output ?? '',
  );
  return status!;
}

/** The daemon's status (through the control socket). */
export function statusOf(s: Scratch): Promise<DaemonStatus> {
  return requestStatus(s.stateDir);
}
