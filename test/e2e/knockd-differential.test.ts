/**
 * Differential test against the real knockd 0.8 (/usr/sbin/knockd): both daemons capture on the same veth at the
 * same time, read the same door sections (knockd's file unchanged; ours adds `Mode = pcap` in [options]), get the
 * same packets, and must run the same commands: every door's command appends `START|STOP <door> <ip>` to the
 * daemon's own cmds.txt (each daemon runs in its own directory), and the lines are compared as multisets (knockd
 * runs commands concurrently, their order is not defined).
 *
 * Scenarios: knockd's conformance cases about packets (spec/knockd-behaviour.md §11) and generated ones (correct,
 * slow, late, wrong port, wrong flags, duplicate, repeated, IPv6, another door's first port; deterministic seed).
 * Each scenario knocks from its own source addresses and ends with a "flush" packet from each of them (a port of
 * a door no one starts, which fails whatever they left in progress), so that knockd's head-wipe bug cannot carry
 * one scenario's leftovers into the next. Timing margins are wide where the two must agree (knockd rounds to
 * whole seconds). Where we deliberately differ, the case says what each daemon must do:
 *   - head wipe: one source's attempt ending (success or expiry) erases other sources' knocks in knockd (§11 13, 14);
 *   - exact timeouts: knockd compares whole seconds (§11 7);
 *   - a repeated success while the door is open extends the pending stop instead of running start and stop again;
 *   - IPv6 packets with extension headers are parsed (knockd drops them);
 *   - one-time sequences: the next sequence is watched over IPv6 too, and the last one disables the door (knockd
 *     crashes with a double free) (§11 26, 29);
 *   - a reload keeps knocks in progress on unchanged doors (§11 30);
 *   - addresses added to the interface while running count (§11 33);
 *   - `-i any` works (knockd installs no filter and opens nothing) (§11 32).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cliPath, needs, tempDir } from '../helpers.js';
import { commandsFinished, type Daemon, fileLines, ip, Lab, type Link, type RawEvent, until, waitForLine } from '../inputs/pcap-lab.js';
import { random } from '../random.js';

const KNOCKD = '/usr/sbin/knockd';
const lab = new Lab('kdf', 236);
const skip = needs({ root: true, tools: ['ip', 'python3', 'knockd'] });

const MARKER_PORT = 64999;
const FLUSH_PORT = 65002;
/** Doors every run has: the marker (one SYN opens it: seen by both = everything before it was seen) and the flush door. */
const COMMON_DOORS = `[marker]\n\tsequence = ${MARKER_PORT}\n\ttcpflags = syn\n\tstart_command = echo "START marker %IP%" >> cmds.txt\n[flush]\n\tsequence = 65001,${FLUSH_PORT}\n`;

const command = (word: string, door: string): string => `echo "${word} ${door} %IP%" >> cmds.txt`;

/** knockd and knocktail side by side in the server namespace, each in its own directory. */
class Pair {
  readonly dir = tempDir('knocktail-diff-');
  knockd!: Daemon;
  knocktail!: Daemon;

  constructor(
    private readonly args: string[],
    doors: string,
    /** Extra arguments for knockd only (e.g. -D, whose per-packet lines tell what it has seen). */
    private readonly knockdArgs: string[] = [],
  ) {
    for (const side of ['knockd', 'knocktail']) mkdirSync(join(this.dir, side));
    this.writeConfigs(doors);
  }

  file(side: 'knockd' | 'knocktail', name: string): string {
    return join(this.dir, side, name);
  }

  /** The same door sections for both; only [options] differ. */
  writeConfigs(doors: string): void {
    writeFileSync(this.file('knockd', 'knockd.conf'), `[options]\n\tLogFile = ${this.file('knockd', 'knockd.log')}\n${doors}${COMMON_DOORS}`);
    writeFileSync(
      this.file('knocktail', 'knocktail.conf'),
      `[options]\n\tMode = pcap\n\tStateDir = ${this.file('knocktail', 'state')}\n\tLogFile = ${this.file('knocktail', 'knocktail.log')}\n${doors}${COMMON_DOORS}`,
    );
  }

  async start(): Promise<void> {
    this.knockd = lab.spawnInServer(KNOCKD, ['-c', this.file('knockd', 'knockd.conf'), '-v', ...this.knockdArgs, ...this.args], { cwd: join(this.dir, 'knockd') });
    this.knocktail = lab.spawnInServer(process.execPath, [cliPath, '-c', this.file('knocktail', 'knocktail.conf'), '-v', ...this.args], { cwd: join(this.dir, 'knocktail') });
    await Promise.all([this.knockd.waitForOutput('listening on'), this.knocktail.waitForOutput('listening on')]);
  }

  commands(side: 'knockd' | 'knocktail'): string[] {
    return fileLines(this.file(side, 'cmds.txt'));
  }

  /** Both have run the marker's command for `src`. */
  async marker(src: string, dst: string): Promise<void> {
    await lab.send([{ src, dst, proto: 'tcp', sport: 40999, dport: MARKER_PORT, flags: 'S' }]);
    await Promise.all((['knockd', 'knocktail'] as const).map((side) => waitForLine(this.file(side, 'cmds.txt'), `START marker ${src}`)));
  }

  /**
   * Both have run every command of what they judged so far, stops included: knockd has no child left (it forks
   * one per open, at once, which runs the start, sleeps Cmd_Timeout and runs the stop), knocktail runs no command
   * and has no stop pending. Called after a marker, so that everything sent before it has been judged.
   */
  async settled(): Promise<void> {
    await Promise.all([
      until(() => this.knockd.running === false || lab.childrenOf(this.knockd.pid).length === 0, () => `knockd's children to exit: ${lab.childrenOf(this.knockd.pid).join(' ')}`),
      commandsFinished(this.file('knocktail', 'state'), { stops: true }),
    ]);
  }

  /** Our capture process once exactly one runs. */
  settledCapture(): Promise<number> {
    return lab.settledCapture(this.knocktail.pid);
  }

  /** Waits until our capture process has been replaced (a new filter is in force). */
  async captureReplaced(previous: number): Promise<void> {
    await lab.captureReplaced(this.knocktail.pid, previous);
  }

  async stop(): Promise<void> {
    await Promise.all([this.knockd?.stop(20_000), this.knocktail?.stop(20_000)]);
  }
}

// ————— scenarios —————

/** A door of a case, with the case's own port numbers (remapped so cases never share a port). */
interface DoorSpec {
  name: string;
  sequence: string;
  /** Extra directives; `start_command` defaults to `START <door>`. */
  lines?: string[];
}

/** A packet: source letter (`A`, `B`… IPv4; `A6`… IPv6), port, protocol, flags, destination `L` (local) or `T` (target). */
interface Knock {
  from: string;
  port: number;
  proto?: 'tcp' | 'udp';
  flags?: string;
  to?: 'L' | 'T';
  ext?: boolean;
}
type Step = Knock | { sleep: number } | { align: number };

interface Case {
  id: string;
  title: string;
  doors: DoorSpec[];
  steps: Step[];
  /** Commands knocktail must run (`START door A`); null for generated scenarios, where only agreement is checked. */
  expect: string[] | null;
  /** knockd's commands where it deliberately differs. */
  knockd?: string[];
  /** Keep the ports as written (generated scenarios use the shared pool doors). */
  fixedPorts?: boolean;
  /** Packets after the case that end attempts the flush cannot reach (on a Target door). */
  cleanup?: Step[];
}

const k = (from: string, ports: Array<number | string>, flags = 'S', extra: Partial<Knock> = {}): Knock[] =>
  ports.map((p) => {
    const [port, proto] = String(p).split('/');
    return { from, port: Number(port), proto: (proto ?? 'tcp') as 'tcp' | 'udp', flags, ...extra };
  });
const door = (name: string, sequence: string, ...lines: string[]): DoorSpec => ({ name, sequence, lines });

/** knockd's §11 cases about packets, with their documented results. */
const CONFORMANCE: Case[] = [
  { id: 'c1', title: 'basic', doors: [door('openSSH', '7000,8000,9000', 'seq_timeout = 5', 'tcpflags = syn')], steps: k('A', [7000, 8000, 9000]), expect: ['START openSSH A'] },
  { id: 'c2', title: 'a wrong monitored port invalidates', doors: [door('openSSH', '7000,8000,9000', 'tcpflags = syn')], steps: k('A', [7000, 8000, 8000, 9000]), expect: [] },
  {
    id: 'c3',
    title: 'unmonitored ports are invisible',
    doors: [door('openSSH', '7000,8000,9000', 'tcpflags = syn'), door('other', '1234')],
    steps: [...k('A', [7000, 5555, '8000/udp', 8000, 9000])],
    expect: ['START openSSH A'],
  },
  {
    id: 'c4',
    title: 'a flag mismatch is ignored, even through another door',
    doors: [door('A', '7000,8000,9000', 'tcpflags = syn,!ack'), door('B', '8000,1')],
    steps: [...k('A', [7000]), ...k('A', [8000], 'SA'), ...k('A', [9000], 'A'), ...k('A', [8000, 9000])],
    expect: ['START A A'],
  },
  { id: 'c5a', title: 'without TCPFlags any flags count', doors: [door('C', '7000,8000,9000')], steps: [...k('A', [7000], 'A'), ...k('A', [8000], 'R'), ...k('A', [9000], 'FPU')], expect: ['START C A'] },
  { id: 'c5b', title: 'without TCPFlags an ACK is a wrong knock', doors: [door('C', '7000,8000,9000')], steps: [...k('A', [7000]), ...k('A', [9000], 'A'), ...k('A', [8000, 9000])], expect: [] },
  { id: 'c6', title: 'late knock', doors: [door('D', '7000,8000,9000', 'seq_timeout = 2')], steps: [...k('A', [7000]), { sleep: 2.5 }, ...k('A', [8000, 9000])], expect: [] },
  // §11 8 knocks at x.05, x+1.05, x+1.90: 9000 comes at x+1.60 here, for a margin against a slow sender.
  { id: 'c8', title: 'whole seconds: in time', doors: [door('D', '7000,8000,9000', 'seq_timeout = 2')], steps: [{ align: 0.05 }, ...k('A', [7000]), { sleep: 1.0 }, ...k('A', [8000]), { sleep: 0.55 }, ...k('A', [9000])], expect: ['START D A'] },
  { id: 'c9', title: 'the timeout counts from the first knock', doors: [door('D', '7000,8000,9000', 'seq_timeout = 2')], steps: [{ align: 0.05 }, ...k('A', [7000]), { sleep: 1.5 }, ...k('A', [8000]), { sleep: 0.6 }, ...k('A', [9000])], expect: [] },
  {
    id: 'c10',
    title: 'shared prefix (#13)',
    doors: [door('A', '1000,2000,3000'), door('B', '1000,2000,4000')],
    steps: k('A', [1000, 2000, 4000]),
    expect: ['START B A'],
  },
  {
    id: 'c11',
    title: "another door's first port in mid-attempt",
    doors: [door('A', '1000,2000,3000'), door('B', '1000,2000,4000'), door('E', '5000,6000')],
    steps: k('A', [1000, 5000, 6000, 5000, 6000]),
    expect: ['START E A'],
  },
  { id: 'c12', title: 'repeated first port', doors: [door('A', '1000,2000,3000')], steps: [...k('A', [1000, 1000, 2000, 3000]), ...k('B', [1000, 1000, 1000, 2000, 3000])], expect: ['START A B'] },
  {
    id: 'c13b',
    title: 'two knockers, the older one finishing last',
    doors: [door('A', '1000,2000,3000')],
    steps: [...k('B', [1000]), ...k('A', [1000, 2000, 3000]), ...k('B', [2000, 3000])],
    expect: ['START A A', 'START A B'],
  },
  { id: 'c15', title: 'a one-port door opens on every knock', doors: [door('single', '5555:udp')], steps: k('A', ['5555/udp', '5555/udp', '5555/tcp']), expect: ['START single A', 'START single A'] },
  {
    id: 'c16',
    title: 'the protocol is part of each step',
    doors: [door('mixed', '2222:udp,3333:tcp,4444:udp'), door('X', '3333:udp,2')],
    steps: [...k('A', ['2222/udp', '3333/udp', '4444/udp']), ...k('B', ['2222/udp']), ...k('B', [3333], 'A'), ...k('B', ['4444/udp'])],
    expect: ['START mixed B'],
  },
  {
    id: 'c17',
    title: 'overlapping doors',
    doors: [door('A', '1000,2000'), door('B', '2000,3000')],
    steps: [...k('A', [1000, 2000, 3000]), ...k('A', [2000, 3000])],
    expect: ['START A A', 'START B A'],
  },
  { id: 'c18', title: 'identical doors', doors: [door('D1', '4000,5000'), door('D2', '4000,5000')], steps: k('A', [4000, 5000]), expect: ['START D1 A', 'START D2 A'] },
  {
    id: 'c19',
    title: 'Seq_Timeout 0',
    doors: [door('Z', '1000,2000', 'seq_timeout = 0'), door('Z1', '3000', 'seq_timeout = 0')],
    steps: k('A', [1000, 2000, 3000]),
    expect: ['START Z1 A'],
  },
  {
    id: 'c22',
    title: 'IPv6 command selection',
    doors: [
      door('v6a', '7000,8000:udp', `start_command = ${command('START4', 'c22-v6a')}`, `start_command_6 = ${command('START6', 'c22-v6a')}`),
      door('v6b', '9000', 'tcpflags = syn,!ack', `start_command = ${command('START4', 'c22-v6b')}`),
      door('v6c', '9100', `start_command = ${command('START4', 'c22-v6c')}`, 'command_6 ='),
    ],
    steps: [...k('A6', [7000, '8000/udp', 9000, 9100]), ...k('B', [7000, '8000/udp', 9000, 9100])],
    expect: ['START6 v6a A6', 'START4 v6b A6', 'START4 v6a B', 'START4 v6b B', 'START4 v6c B'],
  },
  {
    id: 'c24',
    title: 'Target',
    doors: [door('T', '1000,2000', 'target = %TARGET%'), door('L', '1000,2000')],
    steps: [...k('A', [1000, 2000], 'S', { to: 'T' }), ...k('B', [1000], 'S', { to: 'T' }), ...k('B', [2000]), ...k('C', [1000, 2000])],
    expect: ['START T A', 'START L C'],
    // B's attempt on T waits for a knock to the target; a wrong port there ends it in both daemons.
    cleanup: k('B', [1000], 'S', { to: 'T' }),
  },
];

/** Where we differ on purpose, within the same run. */
const DIFFERENCES: Case[] = [
  {
    id: 'd7',
    title: 'exact timeouts (§11 7): 1.4 s is inside a 2 s timeout; knockd sees seconds 0 and 2',
    doors: [door('D', '7000,8000,9000', 'seq_timeout = 2')],
    steps: [{ align: 0.7 }, ...k('A', [7000]), { sleep: 1.4 }, ...k('A', [8000, 9000])],
    expect: ['START D A'],
    knockd: [],
  },
  {
    id: 'd13',
    title: "head wipe (§11 13): A's success erases B's knock in progress in knockd",
    doors: [door('A', '1000,2000,3000')],
    steps: [...k('A', [1000]), ...k('B', [1000]), ...k('A', [2000, 3000]), ...k('B', [2000, 3000])],
    expect: ['START A A', 'START A B'],
    knockd: ['START A A'],
  },
  {
    id: 'd14',
    title: "head wipe by expiry (§11 14): a stranger's stale attempt expiring erases B's knock in knockd",
    doors: [door('A', '1000,2000,3000', 'seq_timeout = 3')],
    steps: [{ align: 0.05 }, ...k('C', [1000]), { sleep: 1.5 }, ...k('B', [1000]), { sleep: 1.5 }, ...k('B', [2000, 3000])],
    expect: ['START A B'],
    knockd: [],
  },
  {
    id: 'dext',
    title: 'a repeated success while the door is open postpones its stop (knockd runs start and stop again)',
    doors: [door('R', '1000,2000', `start_command = ${command('START', 'dext-R')}`, 'cmd_timeout = 2', `stop_command = ${command('STOP', 'dext-R')}`)],
    steps: [...k('A', [1000, 2000]), { sleep: 0.3 }, ...k('A', [1000, 2000])],
    expect: ['START R A', 'STOP R A'],
    knockd: ['START R A', 'START R A', 'STOP R A', 'STOP R A'],
  },
  {
    id: 'dv6x',
    title: 'IPv6 with an extension header before TCP is parsed (knockd drops it)',
    doors: [door('E', '1000,2000')],
    steps: k('A6', [1000, 2000], 'S', { ext: true }),
    expect: ['START E A6'],
    knockd: [],
  },
];


interface PoolDoor {
  name: string;
  steps: Array<{ port: number; proto: 'tcp' | 'udp' }>;
  flags: '' | 'syn' | 'syn,!ack';
}

/**
 * Doors for the generated scenarios (ports 30000-30011, distinct first steps, so a source never has two attempts
 * at once), and the scenarios: one kind each, one door, fresh sources.
 */
function generated(seed: number, count: number): { doors: DoorSpec[]; cases: Case[] } {
  const next = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const pool: PoolDoor[] = [];
  const firsts = new Set<string>();
  while (pool.length < 6) {
    const length = 2 + Math.floor(next() * 3);
    const steps: PoolDoor['steps'] = [];
    while (steps.length < length) {
      const step = { port: 30000 + Math.floor(next() * 12), proto: next() < 0.75 ? ('tcp' as const) : ('udp' as const) };
      const previous = steps[steps.length - 1];
      if (previous && previous.port === step.port && previous.proto === step.proto) continue;
      steps.push(step);
    }
    const first = `${steps[0]!.proto}/${steps[0]!.port}`;
    if (firsts.has(first)) continue;
    firsts.add(first);
    pool.push({ name: `r${pool.length}`, steps, flags: pick(['', 'syn', 'syn,!ack'] as const) });
  }
  const doors = pool.map((d) =>
    door(
      d.name,
      d.steps.map((s) => `${s.port}:${s.proto}`).join(','),
      'seq_timeout = 3',
      ...(d.flags ? [`tcpflags = ${d.flags}`] : []),
      `start_command = ${command('START', d.name)}`,
      'cmd_timeout = 1',
      `stop_command = ${command('STOP', d.name)}`,
    ),
  );
  const allSteps = pool.flatMap((d) => d.steps);
  const knock = (from: string, step: PoolDoor['steps'][number], flags = 'S'): Knock => ({ from, port: step.port, proto: step.proto, flags });
  const kinds = ['correct', 'slow', 'late', 'wrong-port', 'wrong-flags', 'duplicate', 'repeated', 'ipv6', 'other-first'] as const;
  const cases: Case[] = [];
  for (let i = 0; i < count; i++) {
    // Every kind at least twice, then at random.
    const kind = i < kinds.length * 2 ? kinds[i % kinds.length]! : pick(kinds);
    const d = pick(pool);
    const at = 1 + Math.floor(next() * (d.steps.length - 1));
    const sequence = (from: string): Knock[] => d.steps.map((s) => knock(from, s));
    let steps: Step[];
    switch (kind) {
      case 'correct':
        steps = sequence('A');
        break;
      case 'slow':
        steps = sequence('A').flatMap((s, j) => (j === 0 ? [s] : [{ sleep: 0.35 }, s]));
        break;
      case 'late':
        steps = sequence('A').flatMap((s, j) => (j === 1 ? [{ sleep: 4.2 }, s] : [s]));
        break;
      case 'wrong-port': {
        const wrong = pick(allSteps.filter((s) => s.port !== d.steps[at]!.port || s.proto !== d.steps[at]!.proto));
        steps = sequence('A');
        steps.splice(at, 0, knock('A', wrong));
        break;
      }
      case 'wrong-flags': {
        const tcpAt = d.steps.findIndex((s, j) => j >= 1 && s.proto === 'tcp');
        steps = sequence('A');
        if (tcpAt >= 0) steps.splice(tcpAt, 0, knock('A', d.steps[tcpAt]!, d.flags === 'syn' ? 'A' : 'SA'));
        break;
      }
      case 'duplicate':
        steps = sequence('A');
        steps.splice(at, 0, knock('A', d.steps[at - 1]!));
        break;
      case 'repeated':
        // Well after the stop (Cmd_Timeout 1 s) has run: both daemons open again.
        steps = [...sequence('A'), { sleep: 2.5 }, ...sequence('A')];
        break;
      case 'ipv6':
        steps = sequence('A6');
        break;
      case 'other-first': {
        const other = pick(pool.filter((o) => o !== d));
        steps = [knock('A', d.steps[0]!), ...other.steps.map((s) => knock('A', s))];
        break;
      }
    }
    cases.push({ id: `g${i}`, title: `${kind} on ${d.name}`, doors: [], steps, expect: null, fixedPorts: true });
  }
  return { doors, cases };
}

/** Turns cases into door sections and one packet schedule; remembers which addresses belong to which case. */
class Plan {
  doors = '';
  readonly events: RawEvent[] = [];
  readonly sourcesOf = new Map<string, Set<string>>();
  /** Per case: letter → address. */
  private readonly letters = new Map<string, Map<string, string>>();
  private nextV4 = 100;
  private nextV6 = 0x100;

  constructor(
    private readonly link: Link,
    private readonly target: string,
  ) {}

  add(cases: Case[], index: number): void {
    for (const [offset, c] of cases.entries()) this.addCase(c, index + offset);
  }

  addDoors(doors: DoorSpec[]): void {
    for (const d of doors) this.doors += this.section(d.name, d.sequence, d.lines ?? []);
  }

  private addCase(c: Case, index: number): void {
    const ports = new Map<number, number>();
    const port = (p: number): number => {
      if (c.fixedPorts) return p;
      if (!ports.has(p)) ports.set(p, 11000 + index * 40 + ports.size);
      return ports.get(p)!;
    };
    for (const d of c.doors) {
      const sequence = d.sequence
        .split(',')
        .map((item) => {
          const [p, proto] = item.split(':');
          return `${port(Number(p))}${proto ? `:${proto}` : ''}`;
        })
        .join(',');
      this.doors += this.section(`${c.id}-${d.name}`, sequence, d.lines ?? []);
    }
    const destinations = new Map<string, Set<string>>();
    for (const step of [...c.steps, ...(c.cleanup ?? [])]) {
      if (!('from' in step)) {
        this.events.push(step);
        continue;
      }
      const src = this.address(c.id, step.from);
      const dst = step.to === 'T' ? this.target : src.includes(':') ? this.link.serverIp6 : this.link.serverIp;
      if (!destinations.has(src)) destinations.set(src, new Set());
      const proto = step.proto ?? 'tcp';
      this.events.push({ src, dst, proto, sport: 20000 + (this.events.length % 20000), dport: port(step.port), flags: step.flags ?? 'S', ...(step.ext ? { ext: true } : {}) });
    }
    // The flush: a monitored port no door expects next fails whatever each source left in progress.
    for (const src of destinations.keys()) {
      this.events.push({ src, dst: src.includes(':') ? this.link.serverIp6 : this.link.serverIp, proto: 'tcp', sport: 39999, dport: FLUSH_PORT, flags: 'S' });
    }
    this.events.push({ sleep: 0.05 });
    this.sourcesOf.set(c.id, new Set(destinations.keys()));
  }

  /** Expected command lines of a case, with door names and addresses filled in. */
  lines(c: Case, expected: string[]): string[] {
    return expected
      .map((line) => {
        const [word, doorName, letter] = line.split(' ') as [string, string, string];
        return `${word} ${c.fixedPorts ? doorName : `${c.id}-${doorName}`} ${this.address(c.id, letter)}`;
      })
      .sort();
  }

  address(caseId: string, letter: string): string {
    let map = this.letters.get(caseId);
    if (map === undefined) this.letters.set(caseId, (map = new Map()));
    let address = map.get(letter);
    if (address === undefined) {
      address = letter.endsWith('6') ? `${this.link.net6}::${(this.nextV6++).toString(16)}` : `${this.link.net4}.${this.nextV4++}`;
      if (this.nextV4 > 250) throw new Error('out of test source addresses');
      map.set(letter, address);
    }
    return address;
  }

  private section(name: string, sequence: string, lines: string[]): string {
    const body = lines.map((line) => line.replace('%TARGET%', this.target));
    if (!body.some((line) => /^(start_)?command\s*=/.test(line))) body.push(`start_command = ${command('START', name)}`);
    return `[${name}]\n\tsequence = ${sequence}\n${body.map((line) => `\t${line}\n`).join('')}`;
  }
}

/** The lines of `all` whose address (last word) is one of `sources`, sorted. */
function linesFrom(all: string[], sources: ReadonlySet<string>): string[] {
  return all.filter((line) => sources.has(line.slice(line.lastIndexOf(' ') + 1))).sort();
}

describe('differential: knocktail against knockd 0.8 on the same packets', { skip }, () => {
  let link: Link;
  const pairs: Pair[] = [];
  const pair = (args: string[], doors: string, knockdArgs: string[] = []): Pair => {
    const made = new Pair(args, doors, knockdArgs);
    pairs.push(made);
    return made;
  };

  before(() => {
    lab.setUp(1);
    link = lab.links[0]!;
  });
  after(async () => {
    for (const p of pairs) await p.stop();
    lab.tearDown();
  });

  test('§11 packet cases and 30 generated scenarios (seed 20261121): the same commands, except the listed deliberate differences', async () => {
    const target = `${link.net4}.50`;
    lab.routeToServer(link, target);
    const plan = new Plan(link, target);
    const { doors: poolDoors, cases: generatedCases } = generated(20261121, 30);
    plan.add(CONFORMANCE, 0);
    plan.add(DIFFERENCES, CONFORMANCE.length);
    plan.addDoors(poolDoors);
    plan.add(generatedCases, 0);
    const run = pair(['-i', link.server], plan.doors);
    await run.start();
    await lab.send(plan.events);
    await run.marker(`${link.net4}.99`, link.serverIp);
    // Pending stops (Cmd_Timeout 1 s on generated doors, 2 s on dext) have all run.
    await run.settled();
    await run.stop();
    const knockd = run.commands('knockd');
    const ours = run.commands('knocktail');

    const report: string[] = [];
    for (const c of [...CONFORMANCE, ...DIFFERENCES, ...generatedCases]) {
      const sources = plan.sourcesOf.get(c.id)!;
      const mine = linesFrom(ours, sources);
      const theirs = linesFrom(knockd, sources);
      const expectKnocktail = c.expect === null ? theirs : plan.lines(c, c.expect);
      const expectKnockd = c.knockd === undefined ? expectKnocktail : plan.lines(c, c.knockd);
      if (JSON.stringify(mine) !== JSON.stringify(expectKnocktail) || JSON.stringify(theirs) !== JSON.stringify(expectKnockd)) {
        report.push(`${c.id} (${c.title}):\n  knocktail ${JSON.stringify(mine)} expected ${JSON.stringify(expectKnocktail)}\n  knockd    ${JSON.stringify(theirs)} expected ${JSON.stringify(expectKnockd)}`);
      }
    }
    assert.deepEqual(report, [], `\n${report.join('\n')}\n--- knockd output:\n${run.knockd.output.slice(-4000)}`);
    // The generated scenarios are not all trivial: both opened doors in some and refused in others.
    const generatedSources = new Set(generatedCases.flatMap((c) => [...plan.sourcesOf.get(c.id)!]));
    const opened = new Set(linesFrom(ours, generatedSources).map((line) => line.slice(line.lastIndexOf(' ') + 1)));
    assert.ok(opened.size >= 10 && opened.size <= generatedSources.size - 8, `generated scenarios opened for ${opened.size} of ${generatedSources.size} sources`);
  });

  test("knockd's own knock client (TCP, UDP, mixed, IPv6, -d delays, out of order): both run the same commands", async () => {
    const section = (name: string, sequence: string): string => `[${name}]\n\tsequence = ${sequence}\n\tstart_command = echo "START ${name} %IP%" >> cmds.txt\n`;
    const doors = section('tcp', '7000,8000,9000') + '\ttcpflags = syn\n' + section('udp', '7100:udp,7200:udp,7300:udp') +
      section('mixed', '2222:udp,3333:tcp,4444:udp') + section('slow', '5100,5200:udp,5300');
    const run = pair(['-i', link.server], doors);
    await run.start();
    const server = link.serverIp;
    // Real connect() SYNs and UDP datagrams from the client's own addresses, one knock after the other.
    lab.knock(server, '7000', '8000', '9000');
    lab.knock('-u', server, '7100', '7200', '7300');
    lab.knock('-6', link.serverIp6, '2222:udp', '3333', '4444:udp');
    lab.knock('-d', '300', server, '5100', '5200:udp', '5300');
    lab.knock('-6', link.serverIp6, '9000', '8000', '7000'); // out of order: no door
    lab.knock(server, String(MARKER_PORT));
    for (const side of ['knockd', 'knocktail'] as const) await waitForLine(run.file(side, 'cmds.txt'), `START marker ${link.clientIp}`);
    await run.settled();
    const opens = (side: 'knockd' | 'knocktail'): string[] => run.commands(side).filter((line) => !line.startsWith('START marker')).sort();
    const expected = [`START tcp ${link.clientIp}`, `START udp ${link.clientIp}`, `START mixed ${link.clientIp6}`, `START slow ${link.clientIp}`].sort();
    assert.deepEqual(opens('knocktail'), expected);
    assert.deepEqual(opens('knockd'), expected);
    await run.stop();
  });

  test('one-time sequences: the next one is watched over IPv6 too (knockd keeps the old filter), and the last sequence disables the door (knockd crashes)', async () => {
    const doors = '[ots]\n\tone_time_sequences = ots.txt\n\tseq_timeout = 5\n\tstart_command = echo "START ots %IP%" >> cmds.txt\n';
    const run = pair(['-i', link.server], doors);
    // Relative path: each daemon resolves it in its own directory (knockd: its cwd; knocktail: next to its config).
    for (const side of ['knockd', 'knocktail'] as const) writeFileSync(run.file(side, 'ots.txt'), ' 1001,1002\n 2001:udp,2002\n3001\n');
    await run.start();
    const v4 = (n: number): string => `${link.net4}.${n}`;
    const syn = (src: string, ...ports: number[]): RawEvent[] =>
      ports.map((dport) => ({ src, dst: src.includes(':') ? link.serverIp6 : link.serverIp, proto: 'tcp', sport: 21000 + dport, dport, flags: 'S' }));
    const second = (src: string): RawEvent[] => [{ src, dst: src.includes(':') ? link.serverIp6 : link.serverIp, proto: 'udp', sport: 22001, dport: 2001 }, ...syn(src, 2002)];

    const capture = await run.settledCapture();
    await lab.send(syn(v4(100), 1001, 1002));
    await run.marker(v4(120), link.serverIp);
    // The used sequence is gone for both; over IPv6 only knocktail watches the next one (a knockd bug).
    await lab.send([...syn(v4(101), 1001, 1002), ...second(`${link.net6}::101`)]);
    await run.marker(v4(121), link.serverIp);
    // knocktail's filter covered every line of the file from the start: moving on replaced no capture.
    assert.equal(lab.capturePid(run.knocktail.pid), capture);
    // Over IPv4 knockd now opens with the second sequence, which knocktail has used already.
    await lab.send(second(v4(102)));
    await run.marker(v4(103), link.serverIp);
    // The last sequence: both open; knockd then dies of a double free, knocktail disables the door.
    await lab.send(syn(v4(104), 3001));
    const knockdExit = await run.knockd.exited;
    await waitForLine(run.file('knocktail', 'cmds.txt'), `START ots ${v4(104)}`);
    await lab.send(syn(v4(105), 3001, 1001, 1002));
    await lab.send([{ src: v4(106), dst: link.serverIp, proto: 'tcp', sport: 40999, dport: MARKER_PORT, flags: 'S' }]);
    await waitForLine(run.file('knocktail', 'cmds.txt'), `START marker ${v4(106)}`);
    await run.settled();

    const opens = (side: 'knockd' | 'knocktail'): string[] => run.commands(side).filter((line) => line.startsWith('START ots'));
    assert.deepEqual(opens('knocktail'), [`START ots ${v4(100)}`, `START ots ${link.net6}::101`, `START ots ${v4(104)}`]);
    assert.deepEqual(opens('knockd'), [`START ots ${v4(100)}`, `START ots ${v4(102)}`, `START ots ${v4(104)}`]);
    assert.deepEqual(knockdExit, { code: null, signal: 'SIGABRT' }, `knockd output:\n${run.knockd.output}`);
    assert.match(run.knockd.output, /double free/);
    assert.ok(run.knocktail.running, 'knocktail runs on');
    // knockd overwrites the first byte of the used line (3001 → #001); knocktail inserts the #.
    assert.equal(readFileSync(run.file('knockd', 'ots.txt'), 'utf8'), '#1001,1002\n#2001:udp,2002\n#001\n');
    assert.deepEqual(
      readFileSync(run.file('knocktail', 'ots.txt'), 'utf8').split('\n').map((line) => line.replace(/\s/g, '')),
      ['#1001,1002', '#2001:udp,2002', '#3001', ''],
    );
    await run.stop();
  });

  test('reload and interface addresses: knocks in progress survive SIGHUP, a new door is watched by both, a new address only by knocktail', async () => {
    const doorA = '[A]\n\tsequence = 1000,2000,3000\n\tstart_command = echo "START A %IP%" >> cmds.txt\n';
    const run = pair(['-i', link.server], doorA);
    await run.start();
    const v4 = (n: number): string => `${link.net4}.${n}`;
    const syn = (src: string, dst: string, ...ports: number[]): RawEvent[] => ports.map((dport) => ({ src, dst, proto: 'tcp', sport: 23000 + dport, dport, flags: 'S' }));
    await lab.send(syn(v4(110), link.serverIp, 1000, 2000));
    await run.marker(v4(111), link.serverIp);
    const capture = await run.settledCapture();
    run.writeConfigs(`${doorA}[B]\n\tsequence = 4000\n\tstart_command = echo "START B %IP%" >> cmds.txt\n`);
    run.knockd.signal('SIGHUP');
    run.knocktail.signal('SIGHUP');
    await run.captureReplaced(capture);
    await lab.send(syn(v4(110), link.serverIp, 3000, 4000));
    // An address added while both run: knockd never learns it.
    const added = v4(9);
    lab.routeToServer(link, added);
    const before = await run.settledCapture();
    ip('-n', lab.serverNs, 'addr', 'add', `${added}/24`, 'dev', link.server);
    await run.captureReplaced(before);
    await lab.send(syn(v4(112), added, 1000, 2000, 3000));
    await run.marker(v4(113), link.serverIp);
    await run.settled();
    ip('-n', lab.serverNs, 'addr', 'del', `${added}/24`, 'dev', link.server);
    const knocks = (side: 'knockd' | 'knocktail'): string[] => run.commands(side).filter((line) => !line.startsWith('START marker')).sort();
    // §11 30: knockd forgets A's progress on reload; knocktail keeps it (door A did not change).
    assert.deepEqual(knocks('knocktail'), [`START A ${v4(110)}`, `START A ${v4(112)}`, `START B ${v4(110)}`]);
    assert.deepEqual(knocks('knockd'), [`START B ${v4(110)}`]);
    await run.stop();
  });

  test('`-i lo`: both open for knocks to 127.0.0.1 and ::1; `-i any`: knockd opens nothing, knocktail works', async () => {
    const doorL = '[L]\n\tsequence = 1000,2000\n\tstart_command = echo "START L %IP%" >> cmds.txt\n';
    const loopback = pair(['-i', 'lo'], doorL);
    await loopback.start();
    const syn = (src: string, dst: string, ...ports: number[]): RawEvent[] => ports.map((dport) => ({ src, dst, proto: 'tcp', sport: 24000 + dport, dport, flags: 'S' }));
    await lab.send([...syn('127.0.0.1', '127.0.0.1', 1000, 2000), ...syn('::1', '::1', 1000, 2000)], lab.serverNs);
    await lab.send([{ src: '127.0.0.1', dst: '127.0.0.1', proto: 'tcp', sport: 40999, dport: MARKER_PORT, flags: 'S' }], lab.serverNs);
    for (const side of ['knockd', 'knocktail'] as const) await waitForLine(loopback.file(side, 'cmds.txt'), 'START marker 127.0.0.1');
    await loopback.settled();
    for (const side of ['knockd', 'knocktail'] as const) {
      assert.deepEqual(loopback.commands(side).filter((line) => !line.startsWith('START marker')).sort(), ['START L 127.0.0.1', 'START L ::1'], side);
    }
    await loopback.stop();

    // knockd with -D prints every packet it captured: its line for the marker packet says it has judged the knocks.
    const any = pair(['-i', 'any'], doorL, ['-D']);
    await any.start();
    const knocker = `${link.net4}.120`;
    const markerSource = `${link.net4}.121`;
    await lab.send([...syn(knocker, link.serverIp, 1000, 2000), { src: markerSource, dst: link.serverIp, proto: 'tcp', sport: 40999, dport: MARKER_PORT, flags: 'S' }]);
    await waitForLine(any.file('knocktail', 'cmds.txt'), `START L ${knocker}`);
    await any.knockd.waitForOutput(`tcp: ${markerSource}:40999 -> ${link.serverIp}:${MARKER_PORT}`);
    await any.settled();
    // knockd got the same packets (no filter at all) and judged them against no local address.
    assert.doesNotMatch(any.knockd.output, /OPEN SESAME|Stage 1/);
    assert.deepEqual(any.commands('knockd'), []);
    await any.stop();
  });
});
