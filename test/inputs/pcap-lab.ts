/**
 * A two-namespace network for the live-capture end-to-end tests (test/e2e/pcap-*, test/e2e/knockd-*): a server
 * namespace where the daemons capture, a client namespace that knocks, joined by veth pairs, on private
 * addresses unique to the test process. Daemons run inside the server namespace through `ip netns exec`, which
 * execs the command, so the pid we hold is the daemon's own and signals reach it directly.
 * Everything is deleted by `tearDown()` (deleting a namespace deletes its interfaces and addresses).
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requestStatus } from '../../src/daemon/control.js';
import { isAlive, repoRoot, sh } from '../helpers.js';

export const SENDER = join(repoRoot, 'test', 'inputs', 'pcap-send.py');
const TUN_LINK = join(repoRoot, 'test', 'inputs', 'tun-link.py');

/** How pcap-send.py delivers packets (its usage text explains each): raw sockets by default. */
export type Via = { tun: string } | { pppoe: string; mac: string; session?: number; ppp?: number };

/** One raw packet for pcap-send.py, or a pause in the sending. */
export type RawEvent =
  | { src: string; dst: string; proto: 'tcp' | 'udp'; sport: number; dport: number; flags?: string; ext?: boolean; count?: number }
  /** A pause, in seconds. */
  | { sleep: number }
  | { align: number };

/** How a program run in a namespace ended, and what it printed. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Link {
  /** The namespaces it joins (the lab's server and client, unless addLink was told others). */
  serverNs: string;
  clientNs: string;
  /** Server side interface name and addresses. */
  server: string;
  client: string;
  serverIp: string;
  clientIp: string;
  serverIp6: string;
  clientIp6: string;
  /** The /24 and /64 prefixes, for extra addresses (`${net4}.9`, `${net6}::9`). */
  net4: string;
  net6: string;
}

export function ip(...args: string[]): string {
  return sh('ip', args);
}

/**
 * Waits until both ends of a veth pair have carrier and their link-local address. The kernel's link watch sets
 * them asynchronously, up to a second later when other tests' links keep it busy; a daemon started before that
 * would see the interface's addresses change under it and switch capture filters.
 */
function awaitCarrier(link: Link): void {
  const settled = (ns: string, iface: string): boolean => {
    const [info] = JSON.parse(ip('-n', ns, '-j', 'addr', 'show', 'dev', iface)) as Array<{ operstate: string; addr_info: Array<{ scope: string }> }>;
    return info!.operstate === 'UP' && info!.addr_info.some((address) => address.scope === 'link');
  };
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let tries = 0; tries < 250; tries++) {
    if (settled(link.serverNs, link.server) && settled(link.clientNs, link.client)) return;
    Atomics.wait(pause, 0, 0, 20);
  }
  throw new Error(`the veth pair ${link.server}/${link.client} got no carrier or link-local address within 5 s`);
}

export class Lab {
  readonly serverNs: string;
  readonly clientNs: string;
  readonly links: Link[] = [];
  private readonly tag: string;
  private readonly octet: number;
  /** tun-link.py processes holding the tun devices (ours: stopped by their pid at tearDown). */
  private readonly tuns: ChildProcess[] = [];

  /** `prefix`: 2–3 letters naming the test file, so parallel test files never collide. `second`: the 10.x of its addresses. */
  constructor(
    prefix: string,
    private readonly second: number,
  ) {
    // The test process's pid names everything: a run that was killed is recognised, and swept, by the next one.
    this.tag = `${prefix}${process.pid}`;
    // Never 0: `fdXX:0:0:0::1` would not be the canonical text the hits carry (`fdXX::1`).
    this.octet = 1 + (process.pid % 250);
    this.serverNs = `${this.tag}s`;
    this.clientNs = `${this.tag}c`;
  }

  setUp(links = 1): void {
    sweepStaleNamespaces();
    ip('netns', 'add', this.serverNs);
    ip('netns', 'add', this.clientNs);
    for (const ns of [this.serverNs, this.clientNs]) ip('-n', ns, 'link', 'set', 'lo', 'up');
    for (let i = 0; i < links; i++) this.addLink();
  }

  /**
   * A veth pair with an IPv4 /24 and an IPv6 /64 (no duplicate address detection, so usable at once), between the
   * lab's server and client namespaces or, for a larger network, between two others (`between`).
   */
  addLink(between: { serverNs: string; clientNs: string } = { serverNs: this.serverNs, clientNs: this.clientNs }): Link {
    const i = this.links.length;
    const net4 = `10.${this.second + i}.${this.octet}`;
    const net6 = `fd${(this.second + i).toString(16).padStart(2, '0')}:0:0:${this.octet.toString(16)}`;
    const link: Link = {
      ...between,
      server: `${this.tag}a${i}`,
      client: `${this.tag}b${i}`,
      serverIp: `${net4}.1`,
      clientIp: `${net4}.2`,
      serverIp6: `${net6}::1`,
      clientIp6: `${net6}::2`,
      net4,
      net6,
    };
    this.links.push(link);
    this.createLink(link);
    return link;
  }

  /** Creates (again, after `ip link del`) the veth pair of `link` with its addresses, up. */
  createLink(link: Link): void {
    const { serverNs, clientNs } = link;
    ip('-n', serverNs, 'link', 'add', link.server, 'type', 'veth', 'peer', 'name', link.client, 'netns', clientNs);
    ip('-n', serverNs, 'addr', 'add', `${link.serverIp}/24`, 'dev', link.server);
    ip('-n', clientNs, 'addr', 'add', `${link.clientIp}/24`, 'dev', link.client);
    ip('-n', serverNs, 'addr', 'add', `${link.serverIp6}/64`, 'dev', link.server, 'nodad');
    ip('-n', clientNs, 'addr', 'add', `${link.clientIp6}/64`, 'dev', link.client, 'nodad');
    ip('-n', serverNs, 'link', 'set', link.server, 'up');
    ip('-n', clientNs, 'link', 'set', link.client, 'up');
    awaitCarrier(link);
  }

  /**
   * A tun device in the server namespace, up, with these addresses: `none` has the hardware type of a WireGuard
   * interface, `ppp` that of pppd's ppp interfaces (tun-link.py, which holds it until tearDown). Packets written
   * into it (send with `{ tun: name }`) arrive on it. Named `${tag}t${n}`.
   */
  async addTun(kind: 'ppp' | 'none', addresses: string[]): Promise<string> {
    const name = `${this.tag}t${this.tuns.length}`;
    const holder = spawn('ip', ['netns', 'exec', this.serverNs, 'python3', TUN_LINK, name, kind], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.tuns.push(holder);
    await new Promise<void>((resolve, reject) => {
      holder.once('exit', (code) => reject(new Error(`tun-link.py ${name} ${kind} exited (${code})`)));
      holder.stdout!.once('data', () => resolve());
    });
    for (const address of addresses) ip('-n', this.serverNs, 'addr', 'add', address, 'dev', name, ...(address.includes(':') ? ['nodad'] : []));
    ip('-n', this.serverNs, 'link', 'set', name, 'up');
    return name;
  }

  /** The MAC address of an interface in a namespace. */
  mac(ns: string, iface: string): string {
    return (JSON.parse(ip('-n', ns, '-j', 'link', 'show', iface)) as Array<{ address: string }>)[0]!.address;
  }

  /** Lets the client send to `address` on the server side of `link` although the server does not own it (yet). */
  routeToServer(link: Link, address: string): void {
    ip('-n', this.clientNs, 'neigh', 'replace', address, 'lladdr', this.mac(this.serverNs, link.server), 'dev', link.client, 'nud', 'permanent');
  }

  tearDown(): void {
    for (const holder of this.tuns) holder.kill();
    for (const ns of [this.serverNs, this.clientNs]) spawnSync('ip', ['netns', 'del', ns]);
  }

  /** Pids of processes still inside the server namespace. */
  serverPids(): number[] {
    return ip('netns', 'pids', this.serverNs)
      .split('\n')
      .filter((line) => line !== '')
      .map(Number);
  }

  /**
   * Sends raw packets from a namespace (the client's by default; sources may be any address, pauses as given).
   * Asynchronous, so that the daemons' output keeps being read while a long schedule plays.
   */
  send(events: RawEvent[], ns = this.clientNs, via?: Via): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', ns, 'python3', SENDER, '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
      let errors = '';
      child.stderr!.setEncoding('utf8').on('data', (text: string) => (errors += text));
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`pcap-send.py failed (${code}): ${errors}`))));
      child.stdin!.end(JSON.stringify({ packets: events, via }));
    });
  }

  /** The capture process of the daemon `daemonPid`: its one child that captures (null while a filter switch runs two). */
  capturePid(daemonPid: number): number | null {
    const captures = this.serverPids().filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return parent === daemonPid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--knocktail-capture');
      } catch {
        return false; // gone meanwhile
      }
    });
    return captures.length === 1 ? captures[0]! : null;
  }

  /** The capture process of `daemonPid` once exactly one runs. */
  async settledCapture(daemonPid: number): Promise<number> {
    let pid: number | null = null;
    await until(() => (pid = this.capturePid(daemonPid)) !== null, () => `one capture process; pids ${this.serverPids().join(' ')}`);
    return pid!;
  }

  /** Waits until the capture process of `daemonPid` has been replaced: the new filter is in force. */
  async captureReplaced(daemonPid: number, previous: number): Promise<number> {
    let pid: number | null = null;
    await until(() => (pid = this.capturePid(daemonPid)) !== null && pid !== previous, () => `a new capture process (was ${previous}); pids ${this.serverPids().join(' ')}`);
    return pid!;
  }

  /** Pids of the live children of `parent` in the server namespace (zombies, reaped soon, do not count). */
  childrenOf(parent: number): number[] {
    return this.serverPids().filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return Number(fields[1]) === parent && fields[0] !== 'Z';
      } catch {
        return false; // gone meanwhile
      }
    });
  }

  /** Runs a program in the client namespace (asynchronous, so that daemons' output keeps being read meanwhile). */
  inClient(command: string, args: string[]): Promise<Run> {
    return new Promise((resolve) => {
      execFile('ip', ['netns', 'exec', this.clientNs, command, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
      });
    });
  }

  /**
   * tcpdump in the server namespace, writing to `file` the packets matching `filter` that arrive on `iface` (`-Q in`:
   * not the server's replies), each at once (-U); resolves once it listens. `extra`: more options (`-c N`).
   */
  async capture(iface: string, file: string, filter: string, extra: string[] = []): Promise<Daemon> {
    // -s: headers are all a test needs, and libpcap's ring in immediate mode holds only a few packets of the default
    // 256 KiB snapshot length (a burst arriving while tcpdump waits for a CPU would be dropped).
    // -Z root: write into a root-only scratch directory.
    const tcpdump = this.spawnInServer('tcpdump', ['-i', iface, '-Q', 'in', '-n', '-s', '256', '-U', '--immediate-mode', '-Z', 'root', ...extra, '-w', file, filter]);
    try {
      await tcpdump.waitForOutput('listening on');
    } catch (error) {
      await tcpdump.stop();
      throw error;
    }
    return tcpdump;
  }

  /** Runs the stock knock client in the client namespace. */
  knock(...args: string[]): void {
    sh('ip', ['netns', 'exec', this.clientNs, 'knock', ...args]);
  }

  /** Starts a process inside the server namespace. */
  spawnInServer(command: string, args: string[], options: { cwd?: string } = {}): Daemon {
    return new Daemon(spawn('ip', ['netns', 'exec', this.serverNs, command, ...args], { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] }));
  }
}

/** Namespaces of labs (`k` + two letters + the test process's pid + `s`/`c`). */
const LAB_NAMESPACE = /^k[a-z]{2}(\d+)[sc]$/;

/**
 * Deletes the namespaces that labs of killed test runs left behind (their test process is gone), after stopping
 * what still ran inside them (daemons, capture processes, ulogd). Namespaces of running tests are left alone.
 */
export function sweepStaleNamespaces(): void {
  const names = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((line) => line.split(' ')[0]!);
  for (const name of names) {
    const pid = LAB_NAMESPACE.exec(name)?.[1];
    if (pid === undefined || Number(pid) === process.pid || isAlive(Number(pid))) continue;
    const inside = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout.split('\n').filter((line) => line !== '');
    for (const stale of inside) {
      try {
        process.kill(Number(stale), 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    spawnSync('ip', ['netns', 'del', name]);
  }
}

/** A daemon started by a test: its output so far, signals, and its exit. */
export class Daemon {
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitStatus: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(private readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (text: string) => (this.output += text));
    child.stderr!.setEncoding('utf8').on('data', (text: string) => (this.output += text));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        resolve(this.exitStatus);
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitStatus === null;
  }

  /** Waits until the output contains `text`; fails with the output when the daemon exits first or after `limitMs`. */
  async waitForOutput(text: string | RegExp, limitMs = 20_000): Promise<void> {
    const found = (): boolean => (typeof text === 'string' ? this.output.includes(text) : text.test(this.output));
    await until(found, () => `${String(text)} in the output of pid ${this.pid}:\n${this.output}`, limitMs, () => !this.running);
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM, then the exit status; SIGKILL (by pid) if it has not exited after `limitMs`. */
  async stop(limitMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), limitMs);
    const status = await this.exited;
    clearTimeout(timer);
    return status;
  }
}

/** Polls `condition` every 50 ms; rejects with `describe()` after `limitMs`, or at once when `abandon()` turns true. */
export async function until(condition: () => boolean, describe: () => string, limitMs = 20_000, abandon: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    if (condition()) return;
    if (abandon()) throw new Error(`gave up waiting (the process exited) for ${describe()}`);
    if (Date.now() > deadline) throw new Error(`nothing after ${limitMs} ms: waited for ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The lines of a file (none while it does not exist). */
export function fileLines(path: string): string[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '');
}

/** Waits until the file holds a line equal to `line`. */
export function waitForLine(path: string, line: string, limitMs = 20_000): Promise<void> {
  return until(() => fileLines(path).includes(line), () => `"${line}" in ${path}, which holds:\n${fileLines(path).join('\n')}`, limitMs);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until the daemon using `stateDir` runs no command: every command of an open it judged before now has
 * finished. A check that something did *not* open comes after this (a command can outlast a later one).
 * `limitMs` bounds the wait (a hang guard, not a speed check).
 */
export async function commandsFinished(stateDir: string, options: { stops?: boolean; limitMs?: number } = {}): Promise<void> {
  const limitMs = options.limitMs ?? 20_000;
  const deadline = Date.now() + limitMs;
  for (;;) {
    const status = await requestStatus(stateDir);
    // With `stops`, also every pending stop has run (the doors are closed again).
    if (status.running.length === 0 && (!options.stops || status.open.length === 0)) return;
    if (Date.now() > deadline) throw new Error(`commands still running or stops pending after ${limitMs} ms: ${JSON.stringify({ running: status.running, open: status.open })}`);
    await sleep(50);
  }
}
