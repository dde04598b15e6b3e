/**
 * The lab of the range doors' end-to-end tests (rolling doors, encrypted doors), in either mode:
 *
 * - `file`: LOG rules in the server namespace (README's recipes: one per range, with its per-source rate limit) →
 *   the kernel log → a private rsyslog → kern.log → the real daemon following it;
 * - `pcap`: the real daemon capturing live on the server side of the veth pair (Mode = pcap).
 *
 * Either way tcpdump records what arrives on the server side, so that `knocktail replay` can be run on the
 * kern.log the test produced and on a capture of the same traffic. A one-port marker door (a raw SYN on
 * MARKER_PORT) proves that the daemon has read everything sent before it. Namespaces, rules, rsyslog, tcpdump and
 * the daemon come from firewall-lab.ts and pcap-lab.ts and are undone at tearDown, also after a failure.
 */
import { join } from 'node:path';
import { requestStatus } from '../../src/daemon/control.js';
import { cliPath, replayOutput, type ReplayEvent, type ReplaySummaryJson, runCli, which } from '../helpers.js';
import { waitFor } from '../daemon/harness.js';
import { commandsFinished, type Daemon, fileLines, type Link, type RawEvent, type Run, until } from '../inputs/pcap-lab.js';
import { FirewallLab, liveSkip, untilLogged } from './firewall-lab.js';

export type Mode = 'file' | 'pcap';

/** The marker door's port, and a port the LOG rules log that no door uses (rsyslog's first line). */
const MARKER_PORT = 7999;
const PROBE_PORT = 7998;

/** A range the firewall logs: `LOW:HIGH`, with the README's per-source rate limit when `limit` is given. */
export interface LoggedRange {
  ports: string;
  limit?: { name: string; perSecond: number; burst: number };
}

/** What the daemon said about a door, from its log: opens, and refusals with their reasons. */
export interface Verdicts {
  /** `IP: DETAIL` of each OPEN SESAME line (`198.51.100.7: port 22 for 2 s`). */
  opens: string[];
  /** `IP: REASON` of each refusal logged by itself (the first of a burst). */
  refusals: string[];
  /** Refusals per reason: those logged by themselves and those counted in `refused N more (REASON)` lines. */
  refusedByReason: Record<string, number>;
}

/** Skip reason of a range lab test in `mode`, with `tools` beside the lab's own; false when it can run. */
export function rangeLabSkip(mode: Mode, tools: string[] = []): string | false {
  return liveSkip(['iptables', 'tcpdump', 'python3', ...(mode === 'file' ? ['rsyslogd'] : []), ...tools], mode === 'file');
}

/** Skip reason when `faketime` is missing; false when it is there (the check that it moves Node's clock is the test's). */
export const faketimeSkip = (): string | false => (which('faketime') === null ? 'needs faketime (installed by .ci/run)' : false);

export class RangeLab {
  readonly fw: FirewallLab;
  link!: Link;
  daemon!: Daemon;
  conf!: string;
  readonly kernLog: string;
  /** tcpdump's capture of what arrived on the server side. */
  readonly pcap: string;
  private capture: Daemon | null = null;
  private markers = 0;

  /** `tag`: 3 letters naming the test file; `second`: the 10.x of its addresses. */
  constructor(
    tag: string,
    second: number,
    readonly mode: Mode,
  ) {
    this.fw = new FirewallLab(tag, second);
    this.kernLog = join(this.fw.dir, 'kern.log');
    this.pcap = join(this.fw.dir, 'arrived.pcap');
  }

  get serverNs(): string {
    return this.fw.lab.serverNs;
  }

  get clientNs(): string {
    return this.fw.lab.clientNs;
  }

  /**
   * Namespaces and link, tcpdump on the server side for `ranges` and the marker's ports, and in file mode the LOG
   * rules for them (the marker's without a limit) and rsyslog, running once it has written a first line.
   */
  async setUp(ranges: LoggedRange[]): Promise<Link> {
    this.link = this.fw.setUp({ kernelLog: this.mode === 'file' });
    const portranges = [...ranges.map((range) => range.ports.replace(':', '-')), `${PROBE_PORT}-${MARKER_PORT}`];
    this.capture = await this.fw.lab.capture(this.link.server, this.pcap, `(tcp or udp) and (${portranges.map((range) => `dst portrange ${range}`).join(' or ')})`);
    const capture = this.capture;
    this.fw.onTearDown(async () => void (await capture.stop()));
    if (this.mode === 'file') {
      for (const range of ranges) this.fw.logPorts(range.ports, range.limit === undefined ? {} : { limit: range.limit });
      this.fw.logPorts(`${PROBE_PORT}:${MARKER_PORT}`);
      const rsyslog = this.fw.startRsyslog(this.kernLog);
      await untilLogged(this.kernLog, `${this.fw.prefix} IN=`, () => this.fw.knock(this.link.serverIp, String(PROBE_PORT)), () => rsyslog.process.output);
    }
    return this.link;
  }

  tearDown(): Promise<void> {
    return this.fw.tearDown();
  }

  /** Writes the config (the marker door and `sections`, door sections as written) and starts the daemon. */
  async start(sections: string): Promise<Daemon> {
    const input = this.mode === 'file' ? { firewallLog: this.kernLog, logFormat: 'knock', prefixFormat: true } : { pcap: this.link.server };
    this.conf = this.fw.writeConfig({ ...input, doors: [{ name: 'marker', sequence: String(MARKER_PORT), tcpflags: 'syn' }], sections });
    this.daemon = await this.fw.daemon(this.conf, this.mode === 'pcap' ? ['ip', 'netns', 'exec', this.serverNs] : []);
    return this.daemon;
  }

  /** Where the doors' commands write (the marker door writes `START marker IP`). */
  get commands(): string {
    return this.fw.commands;
  }

  /** The lines of the doors' commands, the marker door's left out, in the order they were written. */
  commandLines(): string[] {
    return fileLines(this.commands).filter((line) => !line.startsWith('START marker '));
  }

  /** `knocktail knock ARGS` in the client namespace; with `faketime` (`+20s`), under Debian's faketime. */
  knocktail(args: string[], faketime?: string): Promise<Run> {
    const clock = faketime === undefined ? [] : ['faketime', '-f', faketime];
    const [command, ...rest] = [...clock, process.execPath, cliPath, 'knock', ...args];
    return this.fw.lab.inClient(command!, rest);
  }

  /** Raw packets from the client namespace (any source address). */
  send(events: RawEvent[]): Promise<void> {
    return this.fw.lab.send(events);
  }

  /**
   * A marker knock from `source`, then waits for its command and for every command to finish: everything sent
   * before it has been judged, and what it opened has run.
   */
  async marker(source = this.link.clientIp): Promise<void> {
    await this.send([{ src: source, dst: this.link.serverIp, proto: 'tcp', sport: 40999, dport: MARKER_PORT, flags: 'S' }]);
    const wanted = ++this.markers;
    await until(
      () => fileLines(this.commands).filter((line) => line.startsWith('START marker ')).length === wanted,
      () => `marker ${wanted} in ${this.commands}:\n${fileLines(this.commands).join('\n')}\n--- daemon:\n${this.daemon.output.slice(-3000)}`,
    );
    await commandsFinished(this.fw.stateDir);
  }

  /** The daemon's count of refused one-time knocks (status). */
  async refused(): Promise<number> {
    return (await requestStatus(this.fw.stateDir)).counters.refused;
  }

  /** Waits until the daemon has refused `count` one-time knocks in all. */
  async untilRefused(count: number): Promise<void> {
    await waitFor(`${count} refused knocks`, async () => (await this.refused()) >= count, () => this.daemon.output.slice(-3000));
  }

  /** Waits until the daemon's log file matches `pattern`. */
  async untilLog(pattern: RegExp): Promise<void> {
    await until(() => pattern.test(this.logText()), () => `${String(pattern)} in the daemon's log:\n${this.logText()}`, 30_000);
  }

  /**
   * Waits until no door has anything in progress (status): every attempt and message in progress has ended and been
   * reported (a timeout, a refusal), as replay reports them at the end of its input.
   */
  async untilIdle(): Promise<void> {
    await waitFor('no knocks in progress', async () => (await requestStatus(this.fw.stateDir)).attempts.count === 0, () => this.daemon.output.slice(-3000));
  }

  /** File mode: waits until `source` may send `packets` knocks within the hashlimit `name` (nothing to wait for in pcap mode). */
  async rateLimitAllows(name: string, source: string, packets: number): Promise<void> {
    if (this.mode === 'file') await this.fw.rateLimitAllows(name, source, packets);
  }

  /** The daemon's log file so far. */
  logText(): string {
    return fileLines(join(this.fw.dir, 'knocktail.log')).join('\n');
  }

  /** Stops the daemon (it must exit 0: its last words, the counts of refusals, are then in its log) and tcpdump. */
  async stop(): Promise<string> {
    const exit = await this.daemon.stop();
    if (exit.code !== 0) throw new Error(`knocktail exited ${JSON.stringify(exit)}:\n${this.daemon.output}`);
    await this.capture?.stop();
    return this.logText();
  }

  /** `knocktail replay --json -c CONF FILE`, which must succeed: its events and summary. */
  async replay(file: string): Promise<{ events: ReplayEvent[]; summary: ReplaySummaryJson }> {
    const result = await runCli(['replay', '--json', '-c', this.conf, file], { env: { ...process.env, TZ: 'UTC' } });
    if (result.code !== 0) throw new Error(`knocktail replay ${file} exited ${result.code}: ${result.stderr}`);
    return replayOutput(result.stdout);
  }
}

/** What the daemon's log (its lines, in order) says about `door`. */
export function verdicts(log: string, door: string): Verdicts {
  const result: Verdicts = { opens: [], refusals: [], refusedByReason: {} };
  const count = (reason: string, n: number) => (result.refusedByReason[reason] = (result.refusedByReason[reason] ?? 0) + n);
  for (const line of log.split('\n')) {
    const message = line.replace(/^\[[^\]]*\] /, '');
    const open = new RegExp(`^(\\S+): ${door}: OPEN SESAME \\((.*)\\)$`).exec(message);
    const refused = new RegExp(`^(\\S+): ${door}: refused \\((\\w+)\\): `).exec(message);
    const more = new RegExp(`^${door}: refused (\\d+) more \\((\\w+)\\) in the last`).exec(message);
    if (open) result.opens.push(`${open[1]}: ${open[2]}`);
    if (refused) {
      result.refusals.push(`${refused[1]}: ${refused[2]}`);
      count(refused[2]!, 1);
    }
    if (more) count(more[2]!, Number(more[1]));
  }
  return result;
}
