/**
 * knockd's logging, kept message for message (docs/design.md) so existing log watchers keep working:
 * `LogFile` lines `[YYYY-MM-DD HH:MM] message`, syslog (`UseSyslog`, ident knocktail, facility daemon),
 * `-v` (the same messages on stdout) and `-D` (debug lines on stdout). Deliberate differences: no blank
 * line after some messages, the debug month is not off by one, timeouts are logged when they happen,
 * and command output and failures are reported. Every message is printed through safeText (control
 * characters escaped), and warnings and errors of one kind are capped per RepeatLimiter window.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { lookupService } from 'node:dns/promises';
import { type CommandResult, commandFailed } from './actions/runner.js';
import type { KnockEvent } from './engine/events.js';
import { formatSequence } from './config/sequence.js';
import type { KnockHit } from './hit.js';
import { formatFlags } from './hit.js';
import { clip, RepeatLimiter, safeText } from './safe-text.js';

export interface LoggerOptions {
  logFile: string | null;
  useSyslog: boolean;
  /** -v: log messages also on stdout. */
  verbose: boolean;
  /** -D: debug lines on stdout. */
  debug: boolean;
  /** -l: show the knocker's reverse-DNS name beside its address. */
  lookup: boolean;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

/**
 * Log file lines are written together once per turn of the event loop (or when this much is waiting): under a
 * flood every spoofed first knock is a `Stage 1` line and every one that expires a `sequence timeout` line, and
 * one write per line was a third of the daemon's time. Errors, warnings and opens are written at once; a crash loses
 * at most the stage and timeout lines of the current turn.
 */
const LOG_FILE_BATCH_BYTES = 64 * 1024;
/** Lines of command output written to the log per command, at most. */
const OUTPUT_LINES = 20;
/**
 * Reports that can come once per packet (MaxSources evictions under a flood of spoofed sources, stale lines of a
 * log read again) are logged once, then counted and summed up once per this period: the log must stay readable.
 */
const REPEAT_REPORT_MS = 10_000;
/** -l: names remembered, and lookups running at once, at most (a flood of spoofed sources must not grow either). */
const HOSTNAME_CACHE_SIZE = 4096;
const LOOKUPS_IN_FLIGHT = 16;

export class Logger {
  private fd: number | null = null;
  private syslog: ChildProcess | null = null;
  private readonly stdout: NodeJS.WritableStream;
  private readonly stderr: NodeJS.WritableStream;
  private readonly hostnames = new Map<string, string | null>();
  private lookupsInFlight = 0;
  /** Repeated reports by kind: how many are not logged yet, and the timer that sums them up. */
  private readonly bursts = new Map<string, { unreported: number; summary: (count: number) => string; timer: NodeJS.Timeout }>();
  /** A burst of alike warnings (a binary file read line by line) prints a few, then one count. */
  private readonly repeats = new RepeatLimiter((summary) => this.printError(summary));
  /** Log file lines not written yet (see LOG_FILE_BATCH_BYTES). */
  private pending: string[] = [];
  private pendingBytes = 0;
  private flushQueued = false;
  /** The stamp of the current minute, and when the next minute begins (ms). */
  private stamp = '';
  private stampUntil = 0;

  constructor(private options: LoggerOptions) {
    this.stdout = options.stdout ?? process.stdout;
    this.stderr = options.stderr ?? process.stderr;
    this.open();
  }

  private open(): void {
    if (this.options.logFile !== null) {
      try {
        this.fd = openSync(this.options.logFile, 'a', 0o640);
      } catch (error) {
        this.stderr.write(`warning: cannot open logfile ${this.options.logFile}: ${(error as Error).message}\n`);
      }
    }
    if (this.options.useSyslog && this.syslog === null) {
      // Node has no datagram unix sockets; util-linux logger holds the /dev/log connection for us.
      const child = spawn('logger', ['-t', 'knocktail', '-p', 'daemon.notice'], { stdio: ['pipe', 'ignore', 'inherit'] });
      child.on('error', (error) => {
        this.stderr.write(`warning: syslog unavailable (logger: ${error.message})\n`);
        this.syslog = null;
      });
      child.stdin?.on('error', () => undefined);
      child.unref();
      (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
      this.syslog = child;
    }
  }

  /** Re-opens the log file (after logrotate moved it, or with a new path on reload). */
  reopen(options: Partial<Pick<LoggerOptions, 'logFile' | 'useSyslog' | 'verbose' | 'debug' | 'lookup'>> = {}): void {
    this.flush();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    this.options = { ...this.options, ...options };
    if (!this.options.useSyslog && this.syslog !== null) {
      this.syslog.stdin?.end();
      this.syslog = null;
    }
    this.open();
  }

  close(): void {
    for (const key of [...this.bursts.keys()]) this.reportBurst(key);
    this.repeats.flush();
    this.flush();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    this.syslog?.stdin?.end();
    this.syslog = null;
  }

  /** knockd's logprint + vprint: log file, syslog, and stdout with -v. */
  log(message: string): void {
    const safe = safeText(message);
    this.record(safe);
    if (this.options.verbose) this.stdout.write(`${safe}\n`);
  }

  /** knockd's start-up pair: `listening on X...` with -v, `starting up, listening on X` in the log (once each). */
  startingUp(listeningOn: string): void {
    const safe = safeText(listeningOn);
    this.verbose(`listening on ${safe}...`);
    this.record(`starting up, listening on ${safe}`);
  }

  /** An error or warning: stderr always, and the log file/syslog; clipped, and capped when alike ones come in a burst. */
  error(message: string): void {
    if (this.repeats.admit(message)) this.printError(message);
  }

  private printError(message: string): void {
    const safe = safeText(message.split('\n').map((line) => clip(line)).join('\n'));
    this.stderr.write(`${safe}\n`);
    this.record(safe);
    // Problems are written at once: the process may be about to die of one.
    this.flush();
  }

  /** Log file and syslog (`message` already made safe). */
  private record(message: string): void {
    if (this.fd !== null) {
      const now = Date.now();
      if (now >= this.stampUntil) {
        this.stamp = fileStamp(new Date(now));
        this.stampUntil = Math.floor(now / 60_000) * 60_000 + 60_000;
      }
      const line = `[${this.stamp}] ${message}\n`;
      this.pending.push(line);
      this.pendingBytes += line.length;
      if (this.pendingBytes >= LOG_FILE_BATCH_BYTES) {
        this.flush();
      } else if (!this.flushQueued) {
        this.flushQueued = true;
        setImmediate(this.flush);
      }
    }
    this.syslog?.stdin?.write(`${message.replace(/\n/g, ' ')}\n`);
  }

  /** Writes the waiting log file lines now (they are written by themselves at the end of the event loop's turn). */
  readonly flush = (): void => {
    this.flushQueued = false;
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    this.pendingBytes = 0;
    if (this.fd === null) return;
    try {
      writeSync(this.fd, text);
    } catch (error) {
      this.stderr.write(`warning: cannot write logfile: ${(error as Error).message}\n`);
    }
  };

  /** -v only (knockd's vprint). */
  verbose(message: string): void {
    if (this.options.verbose) this.stdout.write(`${safeText(message)}\n`);
  }

  get debugging(): boolean {
    return this.options.debug;
  }

  /** -D only. */
  debug(message: string): void {
    if (this.options.debug) this.stdout.write(`${safeText(message)}\n`);
  }

  /** knockd's per-packet debug line (with the right month). */
  debugHit(hit: KnockHit): void {
    if (!this.options.debug) return;
    const flags = hit.proto === 'tcp' && hit.flags !== null ? ` [${formatFlags(hit.flags)}]` : '';
    this.debug(`${debugStamp(new Date(hit.time))}: ${hit.proto}: ${hit.src}:${hit.sport ?? '?'} -> ${hit.dst}:${hit.dport}${flags} (${hit.input})`);
  }

  /** `ip` or, with -l and once resolved, `ip (name)`. */
  private who(ip: string): string {
    if (!this.options.lookup) return ip;
    const name = this.hostnames.get(ip);
    if (name === undefined) this.lookUp(ip);
    return name ? `${ip} (${name})` : ip;
  }

  /**
   * knockd blocks the capture loop on gethostbyaddr; we resolve in the background and show the name once
   * known. Bounded: under a flood every spoofed source would ask, and be remembered.
   */
  private lookUp(ip: string): void {
    if (this.lookupsInFlight >= LOOKUPS_IN_FLIGHT) return;
    if (this.hostnames.size >= HOSTNAME_CACHE_SIZE) this.hostnames.delete(this.hostnames.keys().next().value!);
    this.hostnames.set(ip, null);
    this.lookupsInFlight++;
    // getnameinfo, like knockd's gethostbyaddr: /etc/hosts and nsswitch apply, not only DNS.
    lookupService(ip, 0)
      .then(
        ({ hostname }) => {
          if (this.hostnames.has(ip)) this.hostnames.set(ip, hostname === ip ? null : hostname);
        },
        () => undefined,
      )
      .finally(() => this.lookupsInFlight--);
  }

  /**
   * The first report of a kind (`key`) in a burst is logged at once; the next `count`s are summed up by `summary`
   * once per REPEAT_REPORT_MS.
   */
  private burst(key: string, count: number, first: () => string, summary: (count: number) => string, write: (message: string) => void): void {
    const pending = this.bursts.get(key);
    if (pending !== undefined) {
      pending.unreported += count;
      return;
    }
    write(first());
    const timer = setTimeout(() => this.reportBurst(key), REPEAT_REPORT_MS);
    timer.unref();
    this.bursts.set(key, { unreported: 0, summary: (n) => `${summary(n)} in the last ${REPEAT_REPORT_MS / 1000} s`, timer });
  }

  private reportBurst(key: string): void {
    const pending = this.bursts.get(key);
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    this.bursts.delete(key);
    if (pending.unreported > 0) this.log(pending.summary(pending.unreported));
  }

  /** Logs one core event the way knockd would. */
  event(event: KnockEvent): void {
    switch (event.type) {
      case 'stage':
        this.log(`${this.who(event.ip)}: ${event.door.name}: Stage ${event.stage}`);
        return;
      case 'open':
        // knockd's line; a collector adds the firewall the door opens on.
        this.log(`${this.who(event.ip)}: ${event.door.name}: OPEN SESAME${openDetail(event)}${event.firewall === undefined ? '' : ` on firewall ${event.firewall}`}`);
        // In the log before its commands run: a crash right after them still leaves the open on record.
        this.flush();
        return;
      case 'refused':
        // Per message or per replayed sequence, and a flood of forged or scanned knocks can make many: rate-limited.
        this.burst(
          `refused ${event.door.name} ${event.reason}`,
          1,
          () => `${this.who(event.ip)}: ${event.door.name}: refused (${event.reason}): ${event.detail}`,
          (n) => `${event.door.name}: refused ${n} more (${event.reason})`,
          (message) => this.log(message),
        );
        return;
      case 'timeout':
        this.log(`${this.who(event.ip)}: ${event.door.name}: sequence timeout (stage ${event.stage})`);
        return;
      case 'sequence':
        this.debug(`new sequence for door ${event.door.name}: ${formatSequence(event.sequence)}`);
        return;
      case 'exhausted':
        this.error(`no more sequences left in the one time sequences file for door ${event.door.name} --> disabling the door`);
        return;
      case 'evicted':
        this.burst(
          'evicted',
          event.count,
          () => `too many sources knocking at once (MaxSources): dropped the knocks in progress of ${event.count} source(s)`,
          (n) => `too many sources knocking at once (MaxSources): dropped the knocks in progress of ${n} more source(s)`,
          (message) => this.log(message),
        );
        return;
      case 'stale':
        this.burst(
          `stale ${event.input}`,
          1,
          () => `warning: ${event.input}: ignored a knock from ${event.ip} stamped ${new Date(event.stamp).toISOString()}, more than MaxKnockAge (${Math.round((event.time - event.stamp) / 1000)} s) ago: an old log line read again? Old knocks never open a door`,
          (n) => `warning: ${event.input}: ignored ${n} more knocks older than MaxKnockAge`,
          (message) => this.error(message),
        );
        return;
      case 'future':
        this.burst(
          `future ${event.input}`,
          1,
          () => `warning: ${event.input}: ignored a knock from ${event.ip} stamped ${new Date(event.stamp).toISOString()}, ${Math.round((event.stamp - event.time) / 1000)} s ahead of this host's clock: check the clocks of this host and of the logging firewall`,
          (n) => `warning: ${event.input}: ignored ${n} more knocks stamped ahead of this host's clock`,
          (message) => this.error(message),
        );
        return;
      case 'reordered':
        this.burst(
          `reordered ${event.input}`,
          1,
          () => `warning: ${event.input}: a knock from ${event.ip} is stamped ${new Date(event.stamp).toISOString()}, before the knock read just before it: counted at ${new Date(event.time).toISOString()} (log lines out of time order)`,
          (n) => `warning: ${event.input}: ${n} more knocks stamped before the knock read before them, counted at that later time`,
          (message) => this.error(message),
        );
        return;
      case 'clock-step':
        this.error(
          `warning: the clock stepped ${event.stepMs > 0 ? 'forward' : 'back'} by ${Math.abs(Math.round(event.stepMs / 1000))} s` +
            (event.abandoned > 0 ? `; ${event.abandoned} knock(s) in progress abandoned (their times can no longer be compared)` : ''),
        );
        return;
      case 'start':
        this.log(`${event.door}: running command: ${event.command}`);
        return;
      case 'stop':
        this.log(`${this.who(event.ip)}: ${event.door}: command timeout${event.lateMs >= 1000 ? ` (late by ${Math.round(event.lateMs / 1000)} s)` : ''}`);
        this.log(`${event.door}: running command: ${event.command}`);
        return;
      case 'extend':
        this.log(`${this.who(event.ip)}: ${event.door}: already open, stop command postponed to ${new Date(event.until).toISOString()}`);
        return;
      case 'exit':
        this.commandOutcome(event.door, event.result);
        return;
      case 'error':
        this.error(`error: ${event.message}`);
        return;
    }
  }

  /** How a command ended, under `label` (a door, OnStart, OnStop): failures always, its output when it failed or with -v. */
  commandOutcome(label: string, result: CommandResult): void {
    const failed = commandFailed(result);
    if (result.error !== null) this.error(`${label}: could not run command: ${result.error}`);
    else if (result.timedOut) this.error(`${label}: command ran longer than its limit and was killed (${result.signal ?? 'exited'} after ${result.durationMs} ms)`);
    else if (result.signal !== null) this.error(`${label}: command killed by ${result.signal}`);
    else if (result.status !== 0) this.error(`${label}: command returned non-zero status code (${result.status})`);
    if (result.output !== '' && (failed || this.options.verbose)) {
      const lines = result.output.trimEnd().split('\n');
      for (const line of lines.slice(-OUTPUT_LINES)) this.log(`${label}: command output: ${line}`);
    }
  }
}

/** What a rolling or encrypted door's open adds to knockd's OPEN SESAME (knockd's doors have neither, so its log watchers see the line unchanged). */
function openDetail(event: Extract<KnockEvent, { type: 'open' }>): string {
  if (event.request !== undefined) {
    const { port, duration, knockIp } = event.request;
    return ` (port ${port} for ${duration} s${knockIp === event.ip ? '' : `, knocked from ${knockIp}`})`;
  }
  return event.period === undefined ? '' : ` (sequence of period ${event.period})`;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** `YYYY-MM-DD HH:MM`, local time: knockd's log file stamp. */
function fileStamp(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** `YYYY-MM-DD HH:MM:SS.mmm`, local time. */
function debugStamp(d: Date): string {
  return `${fileStamp(d)}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}
