/**
 * The control socket in the state directory: the daemon's end (one request line, one JSON answer) and the
 * client `knocktail status` uses, with the shape of the answer. Kept apart from the daemon so that asking
 * for status never loads it.
 */
import { chmodSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { RunningCommand } from '../actions/doors.js';
import type { Mode } from '../config/types.js';
import type { InputStatus } from '../inputs/input.js';
import type { AttemptSnapshot, MatcherCounters } from '../matcher/matcher.js';

/** A door that is open now: its stop command is pending. */
export interface OpenDoor {
  door: string;
  ip: string;
  /** The firewall it was opened on (a collector's FirewallLog pattern), else absent. */
  firewall?: string;
  openedAt: number;
  closesAt: number;
  stopCommand: string;
}

export interface StatusCounters extends MatcherCounters {
  /** Lines the log inputs read, and lines a log format recognised as a TCP/UDP packet. */
  linesRead: number;
  linesMatched: number;
  /** Start, stop, OnStart and OnStop commands run, and those that failed (exit status, signal, limit). */
  commandsRun: number;
  commandsFailed: number;
  stopsRun: number;
  /** Stops that ran a second or more after their time (the daemon was down, the clock jumped, a suspend). */
  stopsLate: number;
  /** Repeat knocks that postponed a pending stop (On_Reopen = extend). */
  extended: number;
  /** Knocks refused because their stamp was older than MaxKnockAge, or ahead of the clock (docs/design.md, "Time"). */
  knocksStale: number;
  knocksFuture: number;
  /** Knocks stamped before the knock their input delivered before them, counted at that later time. */
  knocksReordered: number;
  /** Steps of the wall clock the daemon noticed (NTP, suspend). */
  clockSteps: number;
  errors: number;
  reloads: number;
  failedReloads: number;
}

/** What `knocktail status` shows (the control socket's answer). */
export interface DaemonStatus {
  knocktail: string;
  pid: number;
  state: 'starting' | 'running' | 'stopping';
  startedAt: number;
  now: number;
  config: string;
  mode: Mode;
  stateDir: string;
  /** Soonest to close first. */
  open: OpenDoor[];
  running: RunningCommand[];
  attempts: { count: number; sources: number; oldest: AttemptSnapshot | null };
  inputs: InputStatus[];
  counters: StatusCounters;
  /** process.memoryUsage() at the answer, in bytes. */
  memory: { rss: number; heapUsed: number };
}

/** The control socket, in the state directory. */
export const CONTROL_SOCKET = 'control.sock';
const CONTROL_TIMEOUT_MS = 5000;
const CONTROL_REQUEST_LIMIT = 1024;
/** sun_path holds 108 bytes with its NUL; libuv silently cuts longer paths. */
const SOCKET_PATH_LIMIT = 107;

export function controlSocketPath(stateDir: string): string {
  return join(stateDir, CONTROL_SOCKET);
}

/** Why the daemon could not be asked: none runs, no permission, or it did not answer. */
export class ControlError extends Error {
  constructor(
    message: string,
    readonly reason: 'not-running' | 'denied' | 'no-answer',
  ) {
    super(message);
  }
}

/** Asks the daemon that uses `stateDir` for its status; rejects with a ControlError. */
export function requestStatus(stateDir: string, timeoutMs = CONTROL_TIMEOUT_MS): Promise<DaemonStatus> {
  const path = controlSocketPath(stateDir);
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let answer = '';
    socket.setEncoding('utf8');
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      reject(new ControlError(`the knocktail daemon of StateDir ${stateDir} did not answer on ${path} within ${timeoutMs / 1000} s`, 'no-answer'));
    });
    socket.on('connect', () => socket.write('status\n'));
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('end', () => {
      let value: { error?: string } & DaemonStatus;
      try {
        value = JSON.parse(answer);
      } catch {
        reject(new ControlError(`unreadable answer on ${path}`, 'no-answer'));
        return;
      }
      if (typeof value.error === 'string') reject(new ControlError(`the daemon on ${path} says: ${value.error}`, 'no-answer'));
      else resolve(value);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') {
        reject(new ControlError(`no knocktail daemon is running with StateDir ${stateDir} (nothing answers on ${path})`, 'not-running'));
      } else if (error.code === 'EACCES' || error.code === 'EPERM') {
        reject(new ControlError(`permission denied on ${path}: only root may ask the daemon (try sudo)`, 'denied'));
      } else {
        reject(new ControlError(`cannot reach the daemon on ${path}: ${error.message}`, 'no-answer'));
      }
    });
  });
}

/**
 * The daemon's end of the control socket: one request line (`status`), one JSON answer. The socket is
 * 0600 in the 0700 state directory, so only the daemon's user (root) can ask. Listening on it also
 * claims the state directory: a second daemon with the same StateDir finds the first one answering.
 */
export class ControlServer {
  private handler: (() => DaemonStatus) | null = null;

  private constructor(
    private readonly server: Server,
    private readonly path: string,
  ) {}

  static async listen(stateDir: string): Promise<ControlServer> {
    const path = controlSocketPath(stateDir);
    if (Buffer.byteLength(path) > SOCKET_PATH_LIMIT) {
      throw new Error(`the control socket path ${path} is longer than ${SOCKET_PATH_LIMIT} bytes, the limit of Unix sockets: choose a shorter StateDir`);
    }
    try {
      const other = await requestStatus(stateDir);
      throw new Error(`another knocktail daemon (pid ${other.pid}) is running with StateDir ${stateDir}: stop it first, or give this one its own StateDir`);
    } catch (error) {
      if (!(error instanceof ControlError)) throw error;
      if (error.reason !== 'not-running') {
        throw new Error(`StateDir ${stateDir} may be in use by another knocktail daemon (${error.message}); if none runs, remove ${path}`);
      }
    }
    // Left behind by a daemon that did not stop cleanly.
    rmSync(path, { force: true });
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) => reject(new Error(`cannot create the control socket ${path}: ${error.message}`)));
      server.listen(path, resolve);
    });
    chmodSync(path, 0o600);
    const control = new ControlServer(server, path);
    server.on('connection', (socket) => control.answer(socket));
    return control;
  }

  serve(handler: () => DaemonStatus): void {
    this.handler = handler;
  }

  private answer(socket: Socket): void {
    socket.setTimeout(CONTROL_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => undefined);
    socket.setEncoding('utf8');
    let request = '';
    socket.on('data', (chunk: string) => {
      request += chunk;
      const newline = request.indexOf('\n');
      if (newline === -1) {
        if (request.length > CONTROL_REQUEST_LIMIT) socket.destroy();
        return;
      }
      const command = request.slice(0, newline).trim();
      socket.removeAllListeners('data');
      let answer: unknown;
      if (command !== 'status') answer = { error: `unknown request ${JSON.stringify(command.slice(0, 40))}` };
      else if (this.handler === null) answer = { error: 'knocktail is starting' };
      else answer = this.handler();
      socket.end(`${JSON.stringify(answer)}\n`);
    });
  }

  close(): void {
    this.server.close();
    rmSync(this.path, { force: true });
  }
}
