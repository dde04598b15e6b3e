/**
 * Rolling doors end to end (issue 12), run by rolling-file.test.ts (kernel LOG → rsyslog → kern.log → daemon)
 * and rolling-pcap.test.ts (live capture): `knocktail knock -c` from the client namespace opens the door; the
 * same packets sent again (raw packets) from another source and from the same source, in the period and in the
 * next, open nothing and are refused as replays in the daemon's log; clients whose clocks are off by one period
 * (Debian's faketime) still open, two periods off they do not; a full ordered scan of a range, up and down, opens
 * nothing. Then `knocktail replay` of the kern.log and of tcpdump's capture of the same traffic tells the genuine
 * opens from the refused replays, as the daemon did.
 *
 * Waits are for events (commands, the daemon's refusal count, a marker knock); the clock is only waited for where
 * the test needs a period to begin (a knock early in a period stays in it however slow the machine).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/parse.js';
import { RollingSequences } from '../../src/knocks/rolling.js';
import { requestStatus } from '../../src/daemon/control.js';
import type { ReplayEvent } from '../helpers.js';
import { type Link, type RawEvent, until } from '../inputs/pcap-lab.js';
import { rollingDoor, writeSecretFile } from '../knocks/support.js';
import { faketimeSkip, type Mode, RangeLab, rangeLabSkip, verdicts } from './range-lab.js';

const TIMEOUT = { timeout: 90_000 };
/** The README's rate limit for a rolling door's range (file mode). */
const README_LIMIT = { perSecond: 2, burst: 10 };

/** The door knocked and replayed: short periods, so that the test sees the next one soon. */
const MAIN = { name: 'roll', ports: '40000-40999', period: 10 };
/** One door per client clock: its offset in periods (the client runs under `faketime -f ±N s`). */
const SKEWED = [
  { name: 'plus1', ports: '41000-41999', periods: 1 },
  { name: 'minus1', ports: '42000-42999', periods: -1 },
  { name: 'plus2', ports: '43000-43999', periods: 2 },
  { name: 'minus2', ports: '44000-44999', periods: -2 },
];
const SKEW_PERIOD = 20;
/** Scanned from end to end. Logged without a rate limit in file mode, so that the whole scan reaches the daemon. */
const SCANNED = { name: 'scan', ports: '45000-45999', period: 10 };

/** `hitting tcp ADDRESS:PORT` lines of knock -v: the ports knocked. */
const hit = (stdout: string): number[] => [...stdout.matchAll(/^hitting tcp \S+:(\d+)$/gm)].map((match) => Number(match[1]));

const syns = (src: string, dst: string, ports: readonly number[]): RawEvent[] => ports.map((dport, i) => ({ src, dst, proto: 'tcp', sport: 30000 + i, dport, flags: 'S' }));

/** Waits until at least `room` ms are left in the current period of `doors` (so that what follows stays in it). */
async function earlyInPeriod(doors: RollingSequences, room: number): Promise<number> {
  await until(() => doors.msLeft(Date.now()) >= room, () => `a period with ${room} ms left`, 60_000);
  return doors.periodAt(Date.now());
}

export function rollingDoorSuite(mode: Mode, tag: string, second: number): void {
  const skip = rangeLabSkip(mode) || faketimeSkip();
  describe(`rolling doors end to end, ${mode === 'file' ? 'file mode (kernel LOG → rsyslog → kern.log)' : 'pcap mode (live capture)'}`, { skip }, () => {
    const lab = new RangeLab(tag, second, mode);
    let link: Link;
    let sniffer: string;
    const sequences = new Map<string, RollingSequences>();
    const ports = (door: string, period: number): number[] => sequences.get(door)!.sequence(period).map((step) => step.port);

    before(async () => {
      link = await lab.setUp([
        ...[MAIN, ...SKEWED].map((door) => ({ ports: door.ports.replace('-', ':'), limit: { name: door.name, ...README_LIMIT } })),
        { ports: SCANNED.ports.replace('-', ':') },
      ]);
      sniffer = `${link.net4}.66`;
      const dir = lab.fw.dir;
      const secret = writeSecretFile(dir, undefined, 'rolling.secret');
      const doors = [MAIN, ...SKEWED.map((door) => ({ ...door, period: SKEW_PERIOD })), SCANNED].map((door) => ({
        ...door,
        lines: ['sequence_length = 4', `sequence_period = ${door.period}`, 'seq_timeout = 5'],
      }));
      // The client's copy: the doors without commands (README, "Moving a knockd door to a rolling door").
      const client = join(dir, 'client.conf');
      writeFileSync(client, doors.map((door) => rollingDoor(door.name, secret, door.ports, door.lines)).join(''));
      for (const door of loadConfig(client).doors) sequences.set(door.name, new RollingSequences(door.name, door.rolling!));
      await lab.start(doors.map((door) => rollingDoor(door.name, secret, door.ports, [...door.lines, `start_command = echo "START ${door.name} %IP%" >> ${lab.commands}`])).join(''));
    });
    after(() => lab.tearDown());

    const knock = (door: string, faketime?: string) => lab.knocktail(['-c', join(lab.fw.dir, 'client.conf'), '-v', link.serverIp, door], faketime);

    test('knocktail knock -c opens the door; the same knocks from another source and from the same one, in the period and the next, are refused as replays', TIMEOUT, async () => {
      const roll = sequences.get(MAIN.name)!;
      const period = await earlyInPeriod(roll, 6000);
      const run = await knock(MAIN.name);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(hit(run.stdout), ports(MAIN.name, period), 'the client knocked the sequence of the period');
      await until(() => lab.commandLines().includes(`START roll ${link.clientIp}`), () => `the open:\n${lab.daemon.output}`);

      const replay = async (source: string, refusals: number) => {
        await lab.rateLimitAllows(MAIN.name, source, 4);
        await lab.send(syns(source, link.serverIp, ports(MAIN.name, period)));
        await lab.untilRefused(refusals);
      };
      await replay(sniffer, 1);
      await replay(link.clientIp, 2);
      assert.equal(roll.periodAt(Date.now()), period, 'the replays came in the period of the open (it had 6 s left)');
      await until(() => roll.periodAt(Date.now()) === period + 1, () => `period ${period + 1}`);
      await replay(sniffer, 3);
      await replay(link.clientIp, 4);
      await lab.marker();
      assert.deepEqual(lab.commandLines(), [`START roll ${link.clientIp}`], 'opened once');
      const log = verdicts(lab.logText(), MAIN.name);
      assert.deepEqual(log.opens, [`${link.clientIp}: sequence of period ${period}`]);
      assert.equal(log.refusals[0], `${sniffer}: replay`);
      assert.match(lab.logText(), new RegExp(`${sniffer.replaceAll('.', '\\.')}: roll: refused \\(replay\\): the sequence of period ${period} was used already at \\S+ by ${link.clientIp.replaceAll('.', '\\.')}\\n`));
    });

    test('clients whose clocks are one period off open the door; two periods off, not (faketime)', TIMEOUT, async () => {
      // Precondition: faketime moves the clock Node reads (it could not with a Node that reads the clock without libc).
      const shifted = await lab.fw.lab.inClient('faketime', ['-f', '+3600s', process.execPath, '-e', 'console.log(Date.now())']);
      const offset = Number(shifted.stdout) - Date.now();
      assert.ok(offset > 3_500_000 && offset < 3_700_000, `faketime -f +3600s moved Node's clock by ${offset} ms (${shifted.stderr})`);

      const any = sequences.get(SKEWED[0]!.name)!;
      const period = await earlyInPeriod(any, 10_000);
      const runs = await Promise.all(SKEWED.map((door) => knock(door.name, `${door.periods > 0 ? '+' : ''}${door.periods * SKEW_PERIOD}s`)));
      assert.equal(any.periodAt(Date.now()), period, 'the clients knocked in one period (it had 10 s left)');
      for (const [i, door] of SKEWED.entries()) {
        assert.equal(runs[i]!.code, 0, runs[i]!.stderr);
        assert.deepEqual(hit(runs[i]!.stdout), ports(door.name, period + door.periods), `${door.name}: the client knocked the sequence of its own clock's period`);
      }
      await until(() => ['plus1', 'minus1'].every((door) => lab.commandLines().includes(`START ${door} ${link.clientIp}`)), () => `the opens:\n${lab.daemon.output}`);
      await lab.marker();
      const opened = lab.commandLines().filter((line) => /^START (plus|minus)/.test(line)).sort();
      assert.deepEqual(opened, [`START minus1 ${link.clientIp}`, `START plus1 ${link.clientIp}`]);
      const log = lab.logText();
      assert.deepEqual(verdicts(log, 'plus1').opens, [`${link.clientIp}: sequence of period ${period + 1}`]);
      assert.deepEqual(verdicts(log, 'minus1').opens, [`${link.clientIp}: sequence of period ${period - 1}`]);
    });

    test('a full ordered scan of a range, up and then down, opens nothing', TIMEOUT, async () => {
      const scanner = `${link.net4}.99`;
      const [low, high] = SCANNED.ports.split('-').map(Number) as [number, number];
      const up = Array.from({ length: high - low + 1 }, (_, i) => low + i);
      const scan = syns(scanner, link.serverIp, [...up, ...up.reverse()]);
      const knocksBefore = (await requestStatus(lab.fw.stateDir)).counters.visible;
      // In chunks, so that the kernel's log buffer never holds more than rsyslog has read.
      const paced: RawEvent[] = scan.flatMap((packet, i) => (i % 25 === 24 ? [packet, { sleep: 0.02 }] : [packet]));
      await lab.send(paced);
      await lab.marker();
      const knocksAfter = (await requestStatus(lab.fw.stateDir)).counters.visible;
      assert.equal(knocksAfter - knocksBefore, scan.length + 1, 'every knock of the scan (and the marker) reached the doors');
      assert.deepEqual(lab.commandLines().filter((line) => line.includes(scanner)), []);
    });

    test('replay of the kern.log and of the capture reports the genuine opens and the refused replays, as the daemon did', TIMEOUT, async () => {
      const log = await lab.stop();
      const daemon = ['roll', 'plus1', 'minus1', 'plus2', 'minus2', 'scan'].map((door) => ({ door, ...verdicts(log, door) }));
      const expectOpens = daemon.flatMap((d) => d.opens.map((open) => `open ${d.door} ${open}`)).sort();
      assert.equal(expectOpens.length, 3);
      assert.deepEqual(daemon.find((d) => d.door === 'roll')!.refusedByReason, { replay: 4 }, 'the daemon\'s log: four replays refused');
      const files = mode === 'file' ? [lab.kernLog, lab.pcap] : [lab.pcap];
      for (const file of files) {
        const { events, summary } = await lab.replay(file);
        const opens = events.filter((e) => e.event === 'open' && e.door !== 'marker').map((e) => `open ${e.door} ${e.ip}: sequence of period ${e.period}`).sort();
        assert.deepEqual(opens, expectOpens, file);
        const refused = events.filter((e): e is ReplayEvent & { reason: string } => e.event === 'refused').map((e) => `${e.door} ${e.ip} ${e.reason}`);
        assert.deepEqual(refused, [sniffer, link.clientIp, sniffer, link.clientIp].map((ip) => `roll ${ip} replay`), file);
        assert.deepEqual(summary.refused, [{ door: 'roll', reason: 'replay', count: 4 }], file);
        assert.deepEqual(summary.opens.filter((open) => open.door !== 'marker').map((open) => `${open.door} ${open.ip} ${open.count}`).sort(), ['minus1', 'plus1', 'roll'].map((door) => `${door} ${link.clientIp} 1`));
        assert.equal(summary.complete, true);
      }
    });
  });
}
