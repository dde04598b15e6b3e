/**
 * `FirewallLog = nflog:GROUP`: the firewall's own log over netlink (`-j NFLOG --nflog-group GROUP`, nft
 * `log group GROUP`). Only the packets the firewall chose to log arrive, with no printk ring and no syslog
 * daemon in the path, and nothing is captured from the interfaces.
 *
 * Read through libpcap's `nflog:GROUP` device, in the same capture child process as live capture
 * (src/packet/capture-process.ts): the messages are parsed there (src/packet/nflog.ts), the rule prefix is
 * checked there (`NflogPrefix`), and only knocks cross to the daemon. Why libpcap and not a netlink socket of
 * our own: Node has no netlink sockets, so that would take native code of our own; libpcap keeps up with the
 * floods measured in docs/performance.md. libpcap leaves the group's settings at the kernel's defaults (a 1 s
 * flush timer); the capture process sets a 10 ms timer and sequence numbers through libpcap's own socket. What
 * remains: the receive buffer is capped by net.core.rmem_max.
 *
 * Losses are counted from what the kernel tells: gaps in the group's sequence numbers (exact, in packets; the
 * capture process asks for them), else its drop counter of our netlink socket (/proc/net/netlink, in messages),
 * or else libpcap's count of ENOBUFS; hits the daemon did not take from the reader in time; and restarts of the
 * reader (the kernel keeps no count while no one is bound to the group).
 */
import { readFileSync } from 'node:fs';
import type { KnockHit } from '../hit.js';
import type { HitTuple, SessionStats } from '../packet/capture-process.js';
import type { HitSink, Input, InputStatus, Loss } from './input.js';
import { CaptureProcess } from './pcap-live.js';

export interface NflogOptions {
  /** The NFLOG group (0-65535) of the firewall rule. */
  group: number;
  /** `NflogPrefix`: only messages with this rule prefix are knocks (null: any). */
  prefix: string | null;
  /** Receive buffer asked for, in bytes (default 16 MiB); the kernel grants at most twice net.core.rmem_max. */
  bufferSize?: number;
  /** Problems while running (the reader stopped and is restarted, a small buffer); start() throws its own. */
  onError?: (error: Error) => void;
  /** Called once when a started input stops, with its final counters as a log line. */
  onStats?: (message: string) => void;
}

const DEFAULT_BUFFER = 16 * 1024 * 1024;
/** Below this, a flood of logged packets fills the socket within milliseconds: said once at start. */
const SMALL_BUFFER = 4 * 1024 * 1024;
const STATS_INTERVAL_MS = 1000;
const FIRST_RESTART_MS = 1000;
const MAX_RESTART_MS = 60_000;

const BUFFER_REMEDY = 'raise net.core.rmem_max (sysctl -w net.core.rmem_max=16777216; knocktail asks for 16 MiB) and keep the CPU free enough for knocktail';

interface Counters {
  received: number;
  overruns: number;
  drops: number;
  /** Logged packets missing from the group's sequence numbers; null while the kernel sends none. */
  gaps: number | null;
}

export class NflogInput implements Input {
  readonly id: string;
  private readonly options: NflogOptions;
  private readonly bufferSize: number;
  private sink: HitSink | null = null;
  private current: CaptureProcess | null = null;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | null = null;
  private restartDelay = FIRST_RESTART_MS;
  private hits = 0;
  private restarts = 0;
  /** Counters of reader processes that have exited. */
  private readonly retired: Counters = { received: 0, overruns: 0, drops: 0, gaps: null };
  private retiredDiscarded = 0;
  /** Whether the kernel's drop counter could be read (else ENOBUFS reports are the only sign of loss). */
  private dropsKnown = true;
  private lastError: string | null = null;

  constructor(options: NflogOptions) {
    if (!Number.isInteger(options.group) || options.group < 0 || options.group > 65535) throw new Error(`NFLOG group ${options.group} is not 0-65535`);
    this.options = options;
    this.bufferSize = options.bufferSize ?? DEFAULT_BUFFER;
    this.id = `nflog:${options.group}`;
  }

  /** Binds the group; rejects with the fix when it cannot (no permission, group taken by another program, no pcap module). */
  async start(sink: HitSink): Promise<void> {
    this.sink = sink;
    const capture = this.spawn();
    let reports;
    try {
      reports = await capture.ready;
    } catch (error) {
      await capture.stop();
      throw error;
    }
    const error = reports[0]?.error ?? null;
    if (error !== null || this.stopped) {
      await capture.stop();
      if (this.stopped) return;
      throw new Error(describeFailure(this.id, error ?? 'no session'));
    }
    this.current = capture;
    const granted = grantedBuffer(this.bufferSize);
    if (granted !== null && granted < SMALL_BUFFER) {
      this.report(new Error(`${this.id}: the netlink receive buffer is only ${kib(granted)} (net.core.rmem_max caps it): under a flood the kernel drops log messages; ${BUFFER_REMEDY}`));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const capture = this.current;
    this.current = null;
    if (capture === null) return;
    await this.retire(capture);
    this.options.onStats?.(this.statsLine());
  }

  /** `nflog:5: 1200 messages received, 14 hits; lost: …`. */
  statsLine(): string {
    const counters = this.counters();
    const lost = this.lost();
    return `${this.id}: ${counters.received} messages received, ${this.hits} hits` + (lost.length === 0 ? ', nothing lost' : `; lost: ${lost.map((loss) => `${loss.count} ${loss.unit} (${loss.cause})`).join('; ')}`);
  }

  lost(): Loss[] {
    const counters = this.counters();
    const losses: Loss[] = [];
    // The sequence numbers count packets exactly, but show a gap only once the next message comes; the socket's
    // drop counter (in messages) shows it at once.
    if (counters.gaps !== null && counters.gaps > 0) {
      losses.push({ count: counters.gaps, unit: 'logged packets', cause: 'the kernel found the socket buffer full (gaps in the group\'s sequence numbers)', remedy: BUFFER_REMEDY });
    } else if (this.dropsKnown && counters.drops > 0) {
      losses.push({ count: counters.drops, unit: 'netlink messages (each one or more logged packets)', cause: 'the kernel found the socket buffer full', remedy: BUFFER_REMEDY });
    } else if (!this.dropsKnown && counters.overruns > 0) {
      losses.push({ count: counters.overruns, unit: 'overruns (each one or more logged packets)', cause: 'the kernel found the socket buffer full (ENOBUFS)', remedy: BUFFER_REMEDY });
    }
    const discarded = this.retiredDiscarded + (this.current?.discarded ?? 0);
    if (discarded > 0) {
      losses.push({ count: discarded, unit: 'packets', cause: 'the daemon did not take them from the reader process in time', remedy: 'keep the CPU free enough for knocktail' });
    }
    if (this.restarts > 0) {
      losses.push({ count: this.restarts, unit: 'restarts of the reader (packets logged meanwhile were not seen, the kernel keeps no count)', cause: 'the reader process exited', remedy: 'see the warning logged with each restart' });
    }
    return losses;
  }

  status(): InputStatus {
    const counters = this.counters();
    return {
      id: this.id,
      kind: 'nflog',
      group: this.options.group,
      prefix: this.options.prefix,
      received: counters.received,
      hits: this.hits,
      bufferBytes: grantedBuffer(this.bufferSize),
      flushTimeoutMs: this.live()?.netlink?.flushMs ?? null,
      queuedBytes: this.live()?.netlink?.queued ?? null,
      readerPid: this.current?.pid ?? null,
      restarts: this.restarts,
      lastError: this.lastError,
      lost: this.lost(),
    };
  }

  private live(): SessionStats | null {
    return this.current?.stats[0] ?? null;
  }

  private counters(): Counters {
    const live = this.live();
    return {
      received: this.retired.received + (live?.received ?? 0),
      overruns: this.retired.overruns + (live?.dropped ?? 0),
      drops: this.retired.drops + (live?.netlink?.drops ?? 0),
      gaps: this.retired.gaps === null && (live?.netlink?.gaps ?? null) === null ? null : (this.retired.gaps ?? 0) + (live?.netlink?.gaps ?? 0),
    };
  }

  private spawn(): CaptureProcess {
    return new CaptureProcess(
      {
        sessions: [{ iface: this.id, filter: '', nflog: { prefix: this.options.prefix } }],
        promiscuous: false,
        snapLength: 0,
        bufferSize: this.bufferSize,
        statsIntervalMs: STATS_INTERVAL_MS,
      },
      false,
      {
        hits: (_from, hits) => this.deliver(hits),
        failed: (from, _session, error) => {
          if (from === this.current) this.report(new Error(`${this.id}: ${error}`));
        },
        exited: (from, code, signal) => {
          if (from !== this.current || this.stopped) return;
          this.current = null;
          void this.retire(from);
          this.report(new Error(`${this.id}: the reader process exited unexpectedly (${signal ?? `code ${code}`}); restarting it in ${this.restartDelay / 1000} s`));
          this.scheduleRestart();
        },
      },
    );
  }

  private scheduleRestart(): void {
    const delay = this.restartDelay;
    this.restartDelay = Math.min(this.restartDelay * 2, MAX_RESTART_MS);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.stopped) return;
      this.restarts++;
      const capture = this.spawn();
      capture.ready.then(
        async (reports) => {
          const error = reports[0]?.error ?? null;
          if (error === null && !this.stopped) {
            this.current = capture;
            this.restartDelay = FIRST_RESTART_MS;
            return;
          }
          await capture.stop();
          if (this.stopped) return;
          this.report(new Error(describeFailure(this.id, error ?? 'no session')));
          this.scheduleRestart();
        },
        (error: Error) => {
          if (this.stopped) return;
          this.report(error);
          this.scheduleRestart();
        },
      );
    }, delay);
  }

  /** Stops a reader process and keeps its final counters. */
  private async retire(capture: CaptureProcess): Promise<void> {
    await capture.stop();
    const stats = capture.stats[0];
    if (stats != null) {
      this.retired.received += stats.received;
      this.retired.overruns += stats.dropped;
      this.retired.drops += stats.netlink?.drops ?? 0;
      if (stats.netlink?.gaps != null) this.retired.gaps = (this.retired.gaps ?? 0) + stats.netlink.gaps;
      if (stats.netlink?.drops === null) this.dropsKnown = false;
    }
    capture.stats = [];
    this.retiredDiscarded += capture.discarded;
    capture.discarded = 0;
  }

  private deliver(hits: HitTuple[]): void {
    if (this.live()?.netlink?.drops === null) this.dropsKnown = false;
    const sink = this.sink;
    if (sink === null) return;
    for (const [time, src, dst, proto, sport, dport, flags] of hits) {
      const hit: KnockHit = { time, src, dst, proto, dport, sport, flags, input: this.id, iface: null };
      this.hits++;
      sink(hit);
    }
  }

  private report(error: Error): void {
    if (error.message === this.lastError) return;
    this.lastError = error.message;
    this.options.onError?.(error);
  }
}

/** What the kernel grants for a receive buffer request: twice the request, capped at twice rmem_max (null: unknown). */
function grantedBuffer(requested: number): number | null {
  try {
    const max = Number(readFileSync('/proc/sys/net/core/rmem_max', 'latin1').trim());
    return Number.isFinite(max) ? 2 * Math.min(requested, max) : null;
  } catch {
    return null;
  }
}

function kib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${Math.round(bytes / 1024)} KiB`;
}

function describeFailure(id: string, error: string): string {
  const fix = /permission|not permitted/i.test(error)
    ? 'run as root, or give node CAP_NET_ADMIN'
    : /listen on group|busy/i.test(error)
      ? 'another program (ulogd2? another knocktail?) is bound to this NFLOG group: stop it, or log the knocks to a group of their own'
      : 'check that the kernel has NFLOG support (CONFIG_NETFILTER_NETLINK_LOG)';
  return `cannot read ${id}: ${error}\n  fix: ${fix}`;
}
