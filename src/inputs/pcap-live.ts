/**
 * Live capture input (`Mode = pcap`): libpcap sessions on one or more interfaces, packets parsed by our own
 * parser, a BPF filter generated from the doors and regenerated when they or the host's addresses change.
 *
 * The sessions live in a child process (src/packet/capture-process.ts explains why: the `pcap` module cannot
 * close an idle session). Replacing the filter is make-before-break: a new process opens its sessions, then a
 * cut-over time T is fixed; the old process delivers only packets stamped before T and is stopped once T has
 * passed, the new one only packets from T on, held back until the old one has drained. Both see the same
 * kernel timestamps, so each packet is delivered exactly once, in order.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canonicalIp, isIpv6 } from '../address.js';
import type { KnockHit } from '../hit.js';
import { buildCaptureFilter, type LocalAddresses, sessionFilter } from '../packet/bpf.js';
import {
  CAPTURE_PROCESS_FLAG,
  type CaptureConfig,
  type ChildMessage,
  type HitTuple,
  type ParentMessage,
  type SessionReport,
  type SessionStats,
} from '../packet/capture-process.js';
import { linkTypeName } from '../packet/parse.js';
import type { Watch } from '../watch.js';
import type { HitSink, Input, InputStatus, Loss } from './input.js';

export interface PcapLiveOptions {
  /** `Interface = eth0,eth1`: one session each; `any` captures on every interface (Linux cooked capture). */
  interfaces: string[];
  /** The doors' sequences: the capture filter lets through exactly what they may use. */
  watch: Watch;
  /** -4: IPv6 is left out of the filter. */
  ipv4Only: boolean;
  /** `Promiscuous = yes` (default false: only traffic addressed to this host). */
  promiscuous?: boolean;
  /** Bytes kept per packet (default 256: link header, IPv6 extension headers and the TCP header fit). */
  snapLength?: number;
  /** Kernel ring size per session in bytes (default 2 MiB). */
  bufferSize?: number;
  /** How often interface addresses are re-read, in ms (default 5000). */
  addressRefreshMs?: number;
  /** Called with the captured interfaces' addresses at start and whenever they change (the filter follows by itself). */
  onAddressesChanged?: (local: LocalAddresses) => void;
  /** Called for problems found while running (capture lost, a restart failed); start() throws its own. */
  onError?: (error: Error) => void;
  /** Called once when a started input stops, with its final capture statistics as a log line. */
  onStats?: (message: string) => void;
}

/** The optional `pcap` module is missing or was not built. */
export class PcapUnavailableError extends Error {
  constructor(cause: string) {
    super(
      `live capture (Mode = pcap) needs the optional npm module "pcap", which is missing or failed to build (${cause.split('\n')[0]}).\n` +
        `  fix: apt-get install libpcap-dev && cd ${shellWord(INSTALL_DIR)} && ${pcapInstallCommand(cause)}   (building it needs python3, make, g++)\n` +
        '  Reading capture files (knocktail replay FILE.pcap) and following firewall logs (Mode = file) work without it.',
    );
    this.name = 'PcapUnavailableError';
  }
}

/** The knocktail installation (the directory of its package.json), where npm must build the module. */
const INSTALL_DIR = fileURLToPath(new URL('../../..', import.meta.url)).replace(/\/$/, '');

/**
 * npm removes an optional module whose build failed (libpcap-dev absent at `npm ci`), and then `npm rebuild`
 * has nothing to rebuild: the module must be installed again. A module that is there but was never built
 * (`--ignore-scripts`) only needs the rebuild. `--no-save` leaves package.json and the lock file alone.
 */
function pcapInstallCommand(cause: string): string {
  if (!/Cannot find package 'pcap'/.test(cause)) return 'npm rebuild pcap';
  let range = '';
  try {
    const manifest = JSON.parse(readFileSync(join(INSTALL_DIR, 'package.json'), 'utf8')) as { optionalDependencies?: { pcap?: string } };
    range = manifest.optionalDependencies?.pcap ?? '';
  } catch {
    // Not in its package (a copied build): any version the user picks will do.
  }
  return `npm install --no-save pcap${range === '' ? '' : `@${range}`}`;
}

function shellWord(text: string): string {
  return /^[\w/.@+,:=-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

const CAPTURE_PROCESS_PATH = fileURLToPath(new URL('../packet/capture-process.js', import.meta.url));
/** Time the old process keeps capturing after the cut-over, so packets stamped just before it reach its ring. */
const HANDOVER_GRACE_MS = 50;
/** A capture process that does not exit this long after `stop` is killed. */
const STOP_TIMEOUT_MS = 5000;
const STATS_INTERVAL_MS = 1000;

const ZERO_STATS: SessionStats = { received: 0, dropped: 0, ifdropped: 0 };

interface InterfaceState {
  name: string;
  linkType: number | null;
  error: string | null;
  /** Counters of capture processes that have exited. */
  retired: SessionStats;
}

/** The parent's handle on one capture process (also used by the NFLOG input, src/inputs/nflog.ts). */
export class CaptureProcess {
  readonly ready: Promise<SessionReport[]>;
  readonly exited: Promise<void>;
  /** Only packets stamped in [acceptFrom, acceptUntil) are delivered (ms). */
  acceptFrom = -Infinity;
  acceptUntil = Infinity;
  /** Hits kept back until the process this one replaces has drained; null = deliver at once. */
  held: KnockHit[] | null;
  /** Sessions that broke, by index (kept so that a failure reported before adoption is not lost). */
  readonly failures = new Map<number, string>();
  stats: Array<SessionStats | null> = [];
  discarded = 0;
  private readonly child: ChildProcess;
  private running = true;

  constructor(
    config: CaptureConfig,
    hold: boolean,
    handlers: { hits(from: CaptureProcess, hits: HitTuple[]): void; failed(from: CaptureProcess, session: number, error: string): void; exited(from: CaptureProcess, code: number | null, signal: string | null): void },
  ) {
    this.held = hold ? [] : null;
    this.child = fork(CAPTURE_PROCESS_PATH, [CAPTURE_PROCESS_FLAG], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    let settleReady: { resolve(reports: SessionReport[]): void; reject(error: Error): void } | null = null;
    this.ready = new Promise((resolve, reject) => {
      settleReady = { resolve, reject };
    });
    this.child.on('message', (message: ChildMessage) => {
      switch (message.type) {
        case 'ready':
          settleReady?.resolve(message.sessions);
          break;
        case 'unavailable':
          settleReady?.reject(new PcapUnavailableError(message.cause));
          break;
        case 'hits':
          handlers.hits(this, message.hits);
          break;
        case 'stats':
          this.stats = message.stats;
          this.discarded = message.discarded;
          break;
        case 'failed':
          handlers.failed(this, message.session, message.error);
          break;
      }
    });
    this.exited = new Promise((resolve) => {
      const finish = (reason: string): void => {
        if (!this.running) return;
        this.running = false;
        settleReady?.reject(new Error(`the capture process ${reason} before its sessions were open`));
        resolve();
      };
      this.child.once('exit', (code, signal) => {
        finish(`exited (${signal ?? `code ${code}`})`);
        handlers.exited(this, code, signal);
      });
      // 'exit' does not follow when the process could not be started at all.
      this.child.once('error', (error) => {
        if (this.child.pid === undefined) finish(`could not be started (${error.message})`);
      });
    });
    this.child.send({ type: 'open', config } satisfies ParentMessage);
  }

  get pid(): number | null {
    return this.running ? (this.child.pid ?? null) : null;
  }

  /** Asks the process to drain and exit; kills it (by pid, it is our child) if it does not. */
  async stop(): Promise<void> {
    if (this.running && this.child.connected) this.child.send({ type: 'stop' } satisfies ParentMessage);
    const killTimer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(killTimer);
  }
}

export class PcapLiveInput implements Input {
  readonly id: string;
  private readonly options: PcapLiveOptions;
  private readonly interfaces: InterfaceState[];
  /** KnockHit.iface per session: the interface name, or null for `any` (cooked v1 carries no interface). */
  private readonly hitInterfaces: Array<string | null>;
  private watch: Watch;
  private filter = '';
  private local: LocalAddresses = { v4: [], v6: [] };
  private sink: HitSink | null = null;
  private current: CaptureProcess | null = null;
  /** Filter replacements and stop() run one after the other. */
  private queue: Promise<void> = Promise.resolve();
  private refreshTimer: NodeJS.Timeout | null = null;
  private refreshQueued = false;
  private stopped = false;
  private hits = 0;
  private restarts = 0;
  /**
   * Packets both capture processes saw while a filter change overlapped them, delivered once: the kernel's
   * received counts (one per process) hold them twice.
   */
  private receivedTwice = 0;
  /** Hits capture processes that have exited had to discard. */
  private retiredDiscarded = 0;
  private lastError: string | null = null;

  constructor(options: PcapLiveOptions) {
    if (options.interfaces.length === 0) throw new Error('pcap mode needs at least one interface (Interface = eth0, or -i eth0)');
    this.options = options;
    this.watch = options.watch;
    this.id = `pcap:${options.interfaces.join(',')}`;
    this.interfaces = options.interfaces.map((name) => ({ name, linkType: null, error: null, retired: { ...ZERO_STATS } }));
    this.hitInterfaces = options.interfaces.map((name) => (name === 'any' ? null : name));
  }

  /** Opens every interface; rejects (with the fix) when the pcap module is unavailable or an interface cannot be captured. */
  async start(sink: HitSink): Promise<void> {
    this.sink = sink;
    this.local = readLocalAddresses(this.options.interfaces);
    // The matcher's destination check needs the addresses before the first packet arrives.
    this.options.onAddressesChanged?.(this.local);
    const filter = this.buildFilter();
    const { capture, reports } = await this.launch(filter, false);
    const failures = reports.filter((report) => report.error !== null);
    if (failures.length > 0 || this.stopped) {
      await capture.stop();
      if (this.stopped) return;
      throw new Error(failures.map((report) => describeFailure(report, filter)).join('\n'));
    }
    this.adopt(capture, reports, filter);
    this.refreshTimer = setInterval(() => this.refresh(), this.options.addressRefreshMs ?? 5000);
    this.refreshTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.refreshTimer !== null) clearInterval(this.refreshTimer);
    this.refreshTimer = null;
    await this.enqueue(async () => {
      const capture = this.current;
      this.current = null;
      if (capture === null) return;
      await this.retire(capture);
      this.options.onStats?.(this.statsLine());
    });
  }

  /**
   * `pcap:eth0: capture statistics: eth0 120 packets received, 0 dropped by the kernel, 0 by the interface; 14 hits`,
   * and how many of the hits were received twice across filter changes.
   */
  statsLine(): string {
    const status = this.status();
    const interfaces = (status.interfaces as Array<{ name: string; received: number; dropped: number; ifdropped: number }>).map(
      (state) => `${state.name} ${state.received} packets received, ${state.dropped} dropped by the kernel, ${state.ifdropped} by the interface`,
    );
    const discarded = status.discarded as number;
    const lost = discarded > 0 ? `, ${discarded} discarded (knocktail could not keep up)` : '';
    const twice = this.receivedTwice > 0 ? `, ${this.receivedTwice} of them received twice (by both captures during a filter change)` : '';
    return `${this.id}: capture statistics: ${interfaces.join('; ')}; ${this.hits} hits${twice}${lost}`;
  }

  /** Addresses of the captured interfaces (all interfaces for `any`), as last read. */
  localAddresses(): LocalAddresses {
    return { v4: [...this.local.v4], v6: [...this.local.v6] };
  }

  /**
   * The doors changed: regenerates the filter and, if it changed, switches to it without losing or repeating a
   * packet. Resolves once switched; when the new filter cannot be opened, the old one stays and onError says why.
   */
  updateWatch(watch: Watch): Promise<void> {
    this.watch = watch;
    return this.enqueue(() => this.replace()).catch((error: Error) => {
      this.options.onError?.(new Error(`capture filter not updated, the previous one stays: ${error.message}`));
    });
  }

  private buildFilter(): string {
    return buildCaptureFilter([...this.watch.sequences, ...this.watch.ranges], this.local, { ipv4Only: this.options.ipv4Only });
  }

  /** Packets the kernel or the interface dropped before libpcap read them, and hits knocktail had to discard. */
  lost(): Loss[] {
    const status = this.status();
    const interfaces = status.interfaces as Array<{ dropped: number; ifdropped: number }>;
    const dropped = interfaces.reduce((sum, state) => sum + state.dropped + state.ifdropped, 0);
    const discarded = status.discarded as number;
    const losses: Loss[] = [];
    if (dropped > 0) {
      losses.push({ count: dropped, unit: 'packets', cause: 'dropped by the kernel or the interface before capture read them (its ring was full)', remedy: 'keep a CPU free for knocktail; a narrower firewall rule or NFLOG (FirewallLog = nflog:GROUP) sees fewer packets' });
    }
    if (discarded > 0) {
      losses.push({ count: discarded, unit: 'knock packets', cause: 'captured, but discarded because knocktail could not keep up', remedy: 'keep a CPU free for knocktail' });
    }
    return losses;
  }

  status(): InputStatus {
    const stats = this.current?.stats ?? [];
    return {
      id: this.id,
      kind: 'pcap',
      filter: this.filter,
      promiscuous: this.options.promiscuous ?? false,
      snapLength: this.options.snapLength ?? 256,
      localAddresses: this.localAddresses(),
      hits: this.hits,
      capturePid: this.current?.pid ?? null,
      restarts: this.restarts,
      receivedTwice: this.receivedTwice,
      discarded: this.retiredDiscarded + (this.current?.discarded ?? 0),
      lastError: this.lastError,
      interfaces: this.interfaces.map((state, index) => {
        const live = stats[index] ?? ZERO_STATS;
        return {
          name: state.name,
          filter: sessionFilter(this.filter, state.name),
          linkType: state.linkType === null ? null : linkTypeName(state.linkType),
          error: state.error,
          received: state.retired.received + live.received,
          dropped: state.retired.dropped + live.dropped,
          ifdropped: state.retired.ifdropped + live.ifdropped,
        };
      }),
    };
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Starts a capture process and waits for each session's report; a process that never gets there is stopped. */
  private async launch(filter: string, hold: boolean): Promise<{ capture: CaptureProcess; reports: SessionReport[] }> {
    const capture = this.spawn(filter, hold);
    try {
      return { capture, reports: await capture.ready };
    } catch (error) {
      await capture.stop();
      throw error;
    }
  }

  private spawn(filter: string, hold: boolean): CaptureProcess {
    return new CaptureProcess(
      {
        sessions: this.options.interfaces.map((iface) => ({ iface, filter: sessionFilter(filter, iface) })),
        promiscuous: this.options.promiscuous ?? false,
        snapLength: this.options.snapLength ?? 256,
        bufferSize: this.options.bufferSize ?? 2 * 1024 * 1024,
        statsIntervalMs: STATS_INTERVAL_MS,
      },
      hold,
      {
        hits: (from, hits) => this.deliver(from, hits),
        failed: (from, session, error) => {
          from.failures.set(session, error);
          if (from === this.current) this.fail(this.interfaces[session], error);
        },
        exited: (from, code, signal) => {
          if (from !== this.current) return;
          for (const state of this.interfaces) this.fail(state, `the capture process exited unexpectedly (${signal ?? `code ${code}`})`);
        },
      },
    );
  }

  private adopt(capture: CaptureProcess, reports: SessionReport[], filter: string): void {
    this.current = capture;
    this.filter = filter;
    reports.forEach((report, index) => {
      const state = this.interfaces[index];
      state.linkType = report.linkType;
      state.error = report.error === null ? null : describeFailure(report, filter);
    });
    // Everything captures again: a later failure with the same text is news again.
    if (this.interfaces.every((state) => state.error === null)) this.lastError = null;
    // A session can break between opening and adoption (an interface just created and not up yet).
    for (const [index, error] of capture.failures) this.fail(this.interfaces[index], error);
  }

  /** Re-reads addresses; regenerates the filter when they changed, restarts capture that broke once its interface is back. */
  private refresh(): void {
    const local = readLocalAddresses(this.options.interfaces);
    const changed = !sameAddresses(local, this.local);
    if (changed) {
      this.local = local;
      this.options.onAddressesChanged?.(this.localAddresses());
    }
    if (this.refreshQueued || !(changed || this.recoverable())) return;
    this.refreshQueued = true;
    this.enqueue(() => {
      this.refreshQueued = false;
      return this.replace();
    }).catch((error: unknown) => this.report(error instanceof Error ? error : new Error(String(error))));
  }

  /** Some interface lost its capture but exists (again). */
  private recoverable(): boolean {
    return this.interfaces.some((state) => state.error !== null && interfaceExists(state.name));
  }

  /** Switches to a new capture process when the filter changed or broken capture can be restarted. */
  private async replace(): Promise<void> {
    const previous = this.current;
    if (previous === null) return;
    const filter = this.buildFilter();
    if (filter === this.filter && !this.recoverable()) return;
    const { capture: next, reports } = await this.launch(filter, true);
    if (reports.every((report) => report.error !== null)) {
      await next.stop();
      throw new Error(reports.map((report) => describeFailure(report, filter)).join('\n'));
    }
    const cutover = Date.now() + 1;
    next.acceptFrom = cutover;
    previous.acceptUntil = cutover;
    this.adopt(next, reports, filter);
    this.restarts++;
    await new Promise((resolve) => setTimeout(resolve, cutover - Date.now() + HANDOVER_GRACE_MS));
    await this.retire(previous);
    const held = next.held ?? [];
    next.held = null;
    for (const hit of held) this.emit(next, hit);
  }

  /** Stops a capture process and keeps its final counters. */
  private async retire(capture: CaptureProcess): Promise<void> {
    await capture.stop();
    capture.stats.forEach((stats, index) => {
      if (stats === null) return;
      const retired = this.interfaces[index].retired;
      retired.received += stats.received;
      retired.dropped += stats.dropped;
      retired.ifdropped += stats.ifdropped;
    });
    capture.stats = [];
    this.retiredDiscarded += capture.discarded;
    capture.discarded = 0;
  }

  private deliver(from: CaptureProcess, hits: HitTuple[]): void {
    for (const [time, src, dst, proto, sport, dport, flags, session] of hits) {
      const hit: KnockHit = { time, src, dst, proto, dport, sport, flags, input: this.id, iface: this.hitInterfaces[session] };
      if (from.held !== null) from.held.push(hit);
      else this.emit(from, hit);
    }
  }

  private emit(from: CaptureProcess, hit: KnockHit): void {
    if (this.sink === null) return;
    // Outside its window the other process, capturing all along, delivers the packet.
    if (hit.time < from.acceptFrom || hit.time >= from.acceptUntil) {
      this.receivedTwice++;
      return;
    }
    this.hits++;
    this.sink(hit);
  }

  private fail(state: InterfaceState, error: string): void {
    state.error = error;
    this.report(new Error(error));
  }

  private report(error: Error): void {
    if (error.message === this.lastError) return;
    this.lastError = error.message;
    this.options.onError?.(error);
  }
}

function describeFailure(report: SessionReport, filter: string): string {
  const error = report.error ?? '';
  const fix = /permission|not permitted/i.test(error)
    ? 'run as root, or give node CAP_NET_RAW'
    : /no such device|doesn't exist/i.test(error)
      ? 'check Interface = (`ip link` lists the interfaces)'
      : null;
  return `capture on ${report.iface} failed: ${error}${fix === null ? `\n  filter: ${sessionFilter(filter, report.iface)}` : `\n  fix: ${fix}`}`;
}

/** ARPHRD_ETHER and ARPHRD_PPP (linux/if_arp.h), as /sys/class/net/NAME/type shows an interface's hardware type. */
const ARPHRD_ETHER = 1;
const ARPHRD_PPP = 512;

function hardwareType(name: string): number | null {
  if (name.includes('/')) return null;
  try {
    return Number(readFileSync(`/sys/class/net/${name}/type`, 'utf8'));
  } catch {
    return null;
  }
}

/**
 * Addresses of `interfaces` (of all interfaces when one of them is `any`), canonical and sorted. A PPPoE link's
 * address belongs to its ppp interface, yet its packets cross the Ethernet NIC in PPPoE frames: when an Ethernet
 * interface is captured, the addresses of this host's PPP interfaces count as its own (which NIC a PPP link runs
 * over is not known for user-space PPPoE, and they are this host's addresses either way).
 */
function readLocalAddresses(interfaces: readonly string[]): LocalAddresses {
  const all = networkInterfaces();
  let names = interfaces.includes('any') ? Object.keys(all) : interfaces;
  if (!interfaces.includes('any') && interfaces.some((name) => hardwareType(name) === ARPHRD_ETHER)) {
    names = [...names, ...Object.keys(all).filter((name) => !names.includes(name) && hardwareType(name) === ARPHRD_PPP)];
  }
  const v4 = new Set<string>();
  const v6 = new Set<string>();
  for (const name of names) {
    for (const { address } of all[name] ?? []) {
      const canonical = canonicalIp(address);
      if (canonical === null) continue;
      (isIpv6(canonical) ? v6 : v4).add(canonical);
    }
  }
  return { v4: [...v4].sort(), v6: [...v6].sort() };
}

function sameAddresses(a: LocalAddresses, b: LocalAddresses): boolean {
  return a.v4.join(' ') === b.v4.join(' ') && a.v6.join(' ') === b.v6.join(' ');
}

function interfaceExists(name: string): boolean {
  return name === 'any' || name in networkInterfaces() || existsSync(`/sys/class/net/${name}`);
}
