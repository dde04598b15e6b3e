/**
 * Replay through the real CLI of archived logs with rolling and encrypted doors: periods and message windows come
 * from each line's own stamp, and the report (table, JSON, summary) tells the genuine opens from the refused
 * replays, and why.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/parse.js';
import { encryptedDoorSpec } from '../../src/knocks/decoder.js';
import { RollingSequences } from '../../src/knocks/rolling.js';
import { knockLine } from '../daemon/harness.js';
import { type ReplayEvent, replayEvents, runCli, tempDir } from '../helpers.js';
import { writeSecretFile } from '../knocks/support.js';
import { message, type MessageOptions } from '../knocks/message-support.js';
import { buildPacket, writePcap } from '../packet/gen.js';

/** A period start for 30 s periods and a slot start for messages. */
const T = Date.parse('2026-11-21T05:00:00Z');
const env = { ...process.env, TZ: 'UTC' };
const [OWNER, SNIFFER, SCANNER] = ['198.51.100.7', '203.0.113.66', '192.0.2.99'];

/** Log lines of knocks on `ports` from `src`, 10 ms apart from `time`. */
function lines(src: string, ports: readonly number[], time: number): string[] {
  return ports.map((port, i) => knockLine(src, port, { time: new Date(time + i * 10) }));
}

/** A directory of its own with a config, whose text `doors` makes (writing secret files into the directory). */
function scratch(name: string, doors: (dir: string) => string): { dir: string; config: string } {
  const dir = tempDir(`knocktail-replay-${name}-`);
  const config = join(dir, 'knocktail.conf');
  writeFileSync(config, doors(dir));
  return { dir, config };
}

const trace = (events: ReplayEvent[]): string[] =>
  events
    .filter((e) => e.event === 'open' || e.event === 'refused')
    .map((e) => `${e.event} ${e.ip} ${e.event === 'refused' ? e.reason : e.period ?? `${e.port} ${e.duration} ${e.knockIp}`} @${(Date.parse(e.time) - T) / 1000}`);

describe('replay: a rolling door', () => {
  it('tells the genuine opens from the refused replays of a sniffer and of the owner, and a scan of the range opens nothing', async () => {
    // A fixed secret: with a random one, the scan below would reach a second step whenever the sequence's second
    // port follows its first (once in 999 runs).
    const { dir, config } = scratch('rolling', (home) =>
      `[options]\n  LogFormat = iptables\n[ssh]\n  Sequence_Secret = ${writeSecretFile(home, Buffer.from('the secret of the rolling replay test\n'))}\n  Sequence_Ports = 40000-40999\n  Seq_Timeout = 10\n` +
        '  Start_Command = open %IP%\n  Cmd_Timeout = 30\n  Stop_Command = close %IP%\n',
    );
    const rolling = new RollingSequences('ssh', loadConfig(config).doors[0]!.rolling!);
    const period = rolling.periodAt(T);
    const ports = (p: number): number[] => rolling.sequence(p).map((step) => step.port);
    const scan = Array.from({ length: 1000 }, (_, i) => 40000 + i);
    const log = join(dir, 'kern.log');
    writeFileSync(
      log,
      [
        ...lines(OWNER, ports(period), T + 1000),
        ...lines(SNIFFER, ports(period), T + 3000),
        ...lines(OWNER, ports(period), T + 5000),
        ...scan.map((port, i) => knockLine(SCANNER, port, { time: new Date(T + 10_000 + i) })),
        ...lines(SNIFFER, ports(period), T + 40_000),
        ...lines(OWNER, ports(period + 1), T + 41_000),
      ].join(''),
    );
    const events = await replayEvents(['-c', config, log]);
    assert.deepEqual(trace(events), [
      `open ${OWNER} ${period} @1.03`,
      `refused ${SNIFFER} replay @3.03`,
      `refused ${OWNER} replay @5.03`,
      `refused ${SNIFFER} replay @40.03`,
      `open ${OWNER} ${period + 1} @41.03`,
    ]);
    const refusal = events.find((e) => e.event === 'refused')!;
    assert.equal(refusal.detail, `the sequence of period ${period} was used already at ${new Date(T + 1030).toISOString()} by ${OWNER}`);
    assert.deepEqual(
      events.filter((e) => e.event === 'start' || e.event === 'stop' || e.event === 'extend').map((e) => `${e.event} ${e.command ?? ''} @${(Date.parse(e.time) - T) / 1000}`),
      ['start open 198.51.100.7 @1.03', 'stop close 198.51.100.7 @31.03', 'start open 198.51.100.7 @41.03', 'stop close 198.51.100.7 @71.03'],
    );
    assert.ok(events.filter((e) => e.event === 'stage' && e.ip === SCANNER).every((e) => e.stage === 1), 'the scan never got past a first knock');

    const table = await runCli(['replay', '-c', config, log], { env });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`open +ssh {2}${OWNER.replaceAll('.', '\\.')} {2}sequence of period ${period}\\n`));
    assert.match(table.stdout, new RegExp(`refused {2}ssh {2}${SNIFFER.replaceAll('.', '\\.')} {2}replay: the sequence of period ${period} was used already at .* by ${OWNER.replaceAll('.', '\\.')}\\n`));
    assert.match(table.stdout, /\ndoor ssh refused 3 one-time knocks: 3 replay\n/);
    assert.match(table.stdout, new RegExp(`\\ndoor ssh opened 2 times for ${OWNER.replaceAll('.', '\\.')} \\(2x\\)\\n`));
  });
});

describe('replay: a capture file', () => {
  it('rolling and encrypted knocks in a pcap open as from a log: the reader lets the ranges through', async () => {
    const { dir, config } = scratch('capture', (home) =>
      `[rolling]\n  Sequence_Secret = ${writeSecretFile(home)}\n  Sequence_Ports = 40000-40999:udp\n  Start_Command = open %IP%\n` +
        `[encrypted]\n  Knock_Key = ${writeSecretFile(home, undefined, 'e.key')}\n  Port_Span = 50000-50255\n  Allowed_Ports = 22\n  Start_Command = open %IP% %PORT%\n`,
    );
    const [rollingDoor, encryptedDoor] = loadConfig(config).doors;
    const rolling = new RollingSequences('rolling', rollingDoor!.rolling!);
    const spec = encryptedDoorSpec(encryptedDoor!);
    const knocks = [
      ...rolling.sequence(rolling.periodAt(T)).map((step) => ({ src: OWNER, proto: 'udp' as const, dport: step.port })),
      ...message(spec, { time: T, source: SNIFFER }).map((value) => ({ src: SNIFFER, proto: 'tcp' as const, dport: spec.span.portOf(value).port })),
    ];
    const capture = join(dir, 'knocks.pcap');
    const packets = knocks.map((knock, i) => ({ time: T + 1000 + i * 10, data: buildPacket({ link: 'ethernet', dst: '192.0.2.1', flags: 0x02, ...knock }).bytes }));
    writeFileSync(capture, writePcap({ linkType: 1, packets }));
    const events = await replayEvents(['-c', config, capture]);
    assert.deepEqual(
      events.filter((e) => e.event === 'start').map((e) => `${e.door} ${e.command}`),
      [`rolling open ${OWNER}`, `encrypted open ${SNIFFER} 22`],
    );
  });
});

describe('replay: an encrypted door', () => {
  it('runs the request\'s commands and stops after its duration; replays, forged, tampered and refused requests are reported with their reason', async () => {
    const { dir, config } = scratch('encrypted', (home) =>
      `[options]\n  LogFormat = iptables\n[ssh]\n  Knock_Key = ${writeSecretFile(home, Buffer.from('the key of the replay tests, 32+ bytes'), 'ssh.key')}\n  Port_Span = 40000-41023\n  Allowed_Ports = 22\n` +
        '  Max_Duration = 600\n  Seq_Timeout = 10\n  Start_Command = open %IP% %PORT% %DURATION% %KNOCK_IP%\n  Stop_Command = close %IP% %PORT%\n',
    );
    const spec = encryptedDoorSpec(loadConfig(config).doors[0]!);
    const ports = (source: string, seconds: number, options: MessageOptions['request'] = {}): number[] =>
      message(spec, { time: T + seconds * 1000, source, request: options }).map((value) => spec.span.portOf(value).port);
    const genuine = ports(OWNER, 1, { port: 22, duration: 300 });
    const tampered = ports(OWNER, 50);
    tampered[5] = 40000 + ((tampered[5]! - 40000 + 512) % 1024);
    const log = join(dir, 'kern.log');
    writeFileSync(
      log,
      [
        ...lines(OWNER, genuine, T + 1000),
        ...lines(OWNER, genuine, T + 20_000),
        ...lines(SNIFFER, genuine, T + 30_000),
        ...lines(OWNER, tampered, T + 50_000),
        ...lines(OWNER, ports(OWNER, 70, { port: 2222 }), T + 70_000),
        ...lines(OWNER, ports(OWNER, 80, { duration: 601 }), T + 80_000),
      ].join(''),
    );
    const events = await replayEvents(['-c', config, log]);
    const end = (start: number): number => start + (genuine.length - 1) * 0.01;
    // A forged or tampered message ends refused when its Seq_Timeout has passed. The sniffer's copy is forged in
    // effect: the message is bound to its sender's address, so from another address it does not authenticate. The
    // tampered knock breaks the check chain, so that message never even gets complete. (A data knock that happens
    // to equal a sync value starts a message of its own, which ends incomplete: those are left out here.)
    assert.deepEqual(
      trace(events.filter((e) => e.reason !== 'incomplete')),
      [`open ${OWNER} 22 300 ${OWNER} @${end(1)}`, `refused ${OWNER} replay @${end(20)}`, `refused ${SNIFFER} auth @40`, `refused ${OWNER} port @${end(70)}`, `refused ${OWNER} duration @${end(80)}`],
    );
    assert.ok(events.some((e) => e.event === 'refused' && e.ip === OWNER && e.reason === 'incomplete' && e.time === new Date(T + 60_000).toISOString()), 'the tampered message');
    assert.deepEqual(
      events.filter((e) => e.event === 'start' || e.event === 'stop').map((e) => `${e.event} ${e.command} @${(Date.parse(e.time) - T) / 1000}`),
      [`start open ${OWNER} 22 300 ${OWNER} @${end(1)}`, `stop close ${OWNER} 22 @${end(1) + 300}`],
      'the stop comes after the requested duration, not Cmd_Timeout',
    );

    const table = await runCli(['replay', '-c', config, log], { env });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`open +ssh {2}${OWNER.replaceAll('.', '\\.')} {2}port 22 for 300 s\\n`));
    assert.match(table.stdout, /refused {2}ssh {2}198\.51\.100\.7 {2}port: it asks for port 2222, which Allowed_Ports does not list\n/);
    assert.match(table.stdout, /\ndoor ssh refused \d+ one-time knocks: 1 replay, 1 auth, \d+ incomplete, 1 port, 1 duration \(-v lists the incomplete ones\)\n/);
    assert.doesNotMatch(table.stdout, /incomplete:/, 'without -v, like timeouts');
    assert.match(table.stdout, /\ndoor ssh opened 1 time for 198\.51\.100\.7\n/);
  });
});
