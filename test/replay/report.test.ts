/**
 * What replay reports, through the real CLI: the closing summary in the JSON stream (per input: lines, time rules,
 * repeats, where reading stopped), the text summary in the words of `knocktail status`, logs that hold the same
 * packets (a copy, kern.log beside syslog) read once and reported, and --execute showing each command's status and
 * output, with exit status 1 when one failed.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LINE_COUNTERS } from '../../src/daemon/status-report.js';
import { knockLine } from '../daemon/harness.js';
import { fixture, replayOutput, runCli, tempDir } from '../helpers.js';

const env = { ...process.env, TZ: 'UTC' };
const CONF = fixture('conf', 'manifest.conf');
const LOG = fixture('real', 'iptables-kernlog-rfc3339.log');
const T = Date.parse('2026-11-21T05:00:00Z');

function config(dir: string, doors: string): string {
  const path = join(dir, 'knocktail.conf');
  writeFileSync(path, `[options]\n  LogFormat = iptables\n${doors}`);
  return path;
}

describe('replay --json: the summary is the last object of the stream', () => {
  it('holds every input with its lines and time, the opens, timeouts, events and commands; stderr stays empty', async () => {
    const result = await runCli(['replay', '--json', '-c', CONF, LOG], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '', 'no summary text on stderr');
    const { events, summary } = replayOutput(result.stdout);
    assert.deepEqual(summary.inputs, [
      {
        input: LOG,
        kind: 'log',
        firewall: null,
        lines: { read: 84, packets: 72, skipped: 12, ignored: 0, otherProtocols: 0, malformed: 0, tooLong: 0 },
        capture: null,
        time: { knocksTooOld: 0, knocksOutOfOrder: 0, largestStepBackMs: 0, longGaps: 0, firstLongGaps: [] },
        repeats: [],
        problem: null,
      },
    ]);
    assert.deepEqual(summary.opens, [
      { door: 'S1', ip: '10.66.0.2', count: 4 },
      { door: 'S1', ip: '10.66.0.1', count: 1 },
      { door: 'S2', ip: '10.66.0.2', count: 1 },
      { door: 'S2', ip: '10.66.0.1', count: 1 },
      { door: 'S3', ip: '10.66.0.2', count: 1 },
    ]);
    assert.equal(summary.events, events.length);
    assert.equal(summary.timeouts, events.filter((e) => e.event === 'timeout').length);
    assert.deepEqual(summary.commands, { run: 0, failed: 0 });
    assert.equal(summary.complete, true);
    assert.equal(summary.packets, 72 - 2, 'the knock lines of watched ports (2 of the 72 packets go to ports no door uses)');
  });

  it('carries what the time rules did per input: knocks out of order, too old, long gaps (and the text says it too)', async () => {
    const dir = tempDir();
    const conf = config(dir, '[d]\n  sequence = 7000,8000\n  seq_timeout = 5\n');
    const log = join(dir, 'kern.log');
    const DAY = 86_400_000;
    writeFileSync(
      log,
      [
        knockLine('192.0.2.7', 7000, { time: new Date(T) }),
        knockLine('192.0.2.8', 7000, { time: new Date(T - 1500) }), // out of order, 1.5 s back
        knockLine('192.0.2.9', 7000, { time: new Date(T - 120_000) }), // more than MaxKnockAge back
        knockLine('192.0.2.7', 7000, { time: new Date(T + 2 * DAY) }), // a gap of two days
      ].join(''),
    );
    const json = await runCli(['replay', '--json', '-c', conf, log], { env });
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(replayOutput(json.stdout).summary.inputs[0]!.time, {
      knocksTooOld: 1,
      knocksOutOfOrder: 1,
      largestStepBackMs: 1500,
      longGaps: 1,
      firstLongGaps: [{ from: new Date(T).toISOString(), to: new Date(T + 2 * DAY).toISOString() }],
    });
    const text = await runCli(['replay', '-c', conf, log], { env });
    assert.match(text.stdout, /kern\.log: 1 knock stamped more than MaxKnockAge before the knocks read before it: ignored/);
    assert.match(text.stdout, /kern\.log: 1 knock stamped before the knock read before it \(up to 2 s back\)/);
    assert.match(text.stdout, /kern\.log: 1 gap of more than a day between knocks: 2026-11-21T05:00:00\.000Z → 2026-11-23T05:00:00\.000Z/);
  });
});

describe('replay text summary: the words of knocktail status', () => {
  it('says what each count means: binary junk is "skipped unparsed", a watched port in a foreign line "ignored"', async () => {
    const dir = tempDir();
    const log = join(dir, 'kern.log');
    const knock = readFileSync(LOG, 'utf8').split('\n')[2]!;
    // No port a door watches: binary junk, a line of another program, an ICMP line (skipped unparsed). A watched port
    // in a line no format recognises (ignored); a knock with a bad address (malformed); a knock.
    const icmp = knock.replace(/PROTO=TCP .*/, 'PROTO=ICMP TYPE=8 CODE=0 ID=1 SEQ=1 ');
    const foreign = 'Nov 21 04:16:16 vm myapp[7]: listening on SPT=1 DPT=7000 ';
    const malformed = knock.replace('SRC=10.66.0.2', 'SRC=10.66.0.299');
    writeFileSync(log, Buffer.concat([Buffer.from([0x01, 0xff, 0x1b, 0x5b, 0x32, 0x4a, 0x0a]), Buffer.from(`Nov 21 04:16:16 vm sshd[1]: Accepted publickey\n${icmp}\n${foreign}\n${malformed}\n${knock}\n`)]));
    const result = await runCli(['replay', '-c', CONF, log], { env });
    assert.equal(result.code, 0, result.stderr);
    const words = Object.fromEntries(Object.entries(LINE_COUNTERS).map(([key, { label }]) => [key, label]));
    const expected = `${log}: lines: ${words.lines} 6, ${words.matched} 1, ${words.skipped} 3, ${words.ignored} 1, ${words.notKnock} 0, ${words.missed} 1\n`;
    assert.ok(result.stdout.includes(expected), `${expected} in:\n${result.stdout}`);
    assert.match(expected, /skipped unparsed \(no port a door watches in them\) 3, ignored \(no log format recognised them\) 1/);
  });
});

describe('logs that hold the same packets', () => {
  it('a copy under another name: every packet counted once (the same opens as the log alone), reported as a copy', async () => {
    const dir = tempDir();
    const copy = join(dir, 'kern.log.backup');
    copyFileSync(LOG, copy);
    const alone = replayOutput((await runCli(['replay', '--json', '-c', CONF, LOG], { env })).stdout);
    const both = await runCli(['replay', '--json', '-c', CONF, LOG, copy], { env });
    assert.equal(both.code, 0, both.stderr);
    const { events, summary } = replayOutput(both.stdout);
    assert.deepEqual(events, alone.events, 'not merged into repeated, cancelled sequences');
    assert.deepEqual(summary.inputs[1]!.repeats, [{ of: LOG, packets: 70 }]);
    const text = await runCli(['replay', '-c', CONF, LOG, copy], { env });
    assert.match(text.stdout, new RegExp(`kern\\.log\\.backup: all its 70 knock packets are also in ${LOG.replaceAll('.', '\\.')} \\(the same packet in the same second\\): each was counted once\\. \\S+ looks like a copy of \\S+: give one of them`));
  });

  it('kern.log beside syslog (the same kernel lines among others, whole-second stamps): read once, reported as an overlap', async () => {
    const dir = tempDir();
    const kernlog = join(dir, 'kern.log');
    const syslog = join(dir, 'messages');
    // Three knocks of a door; the second log has the same kernel lines, stamped to the second, among other programs' lines.
    const conf = config(dir, '[d]\n  sequence = 7000,8000,9000\n  seq_timeout = 5\n  start_command = open %IP%\n');
    const knocks = [7000, 8000, 9000].map((port, i) => knockLine('192.0.2.7', port, { time: new Date(T + 100 + i * 200) }));
    writeFileSync(kernlog, knocks.join(''));
    const wholeSecond = knocks.map((line) => line.replace(/^(\S+T\d\d:\d\d:\d\d)\.\d+Z/, '$1Z'));
    writeFileSync(syslog, [...wholeSecond, knockLine('192.0.2.99', 8000, { time: new Date(T + 300) }), 'Nov 21 05:00:00 vm cron[2]: job\n'].join(''));
    const result = await runCli(['replay', '--json', '-c', conf, kernlog, syslog], { env });
    assert.equal(result.code, 0, result.stderr);
    const { events, summary } = replayOutput(result.stdout);
    assert.deepEqual(events.filter((e) => e.event === 'open').map((e) => e.ip), ['192.0.2.7'], 'the door opens once, not cancelled by the repeats');
    assert.deepEqual(summary.inputs.find((input) => input.input === kernlog)!.repeats, [{ of: syslog, packets: 3 }]);
    const text = await runCli(['replay', '-c', conf, kernlog, syslog], { env });
    assert.match(text.stdout, /kern\.log: all its 3 knock packets are also in \S+messages/);
    assert.match(text.stdout, /door d opened 1 time for 192\.0\.2\.7\n/);
  });
});

describe('replay --execute', () => {
  it('shows each command\'s exit status and output, counts the failures, and exits 1 when one failed', async () => {
    const dir = tempDir();
    const conf = config(
      dir,
      '[ok]\n  sequence = 7000\n  start_command = echo opened %IP%\n' + '[bad]\n  sequence = 8000\n  start_command = echo "no such chain" >&2; exit 3\n',
    );
    const log = join(dir, 'kern.log');
    writeFileSync(log, [knockLine('192.0.2.7', 7000, { time: new Date(T) }), knockLine('192.0.2.8', 8000, { time: new Date(T + 1000) })].join(''));
    const text = await runCli(['replay', '--execute', '-c', conf, log], { env });
    assert.equal(text.code, 1, text.stderr);
    assert.match(text.stdout, /^\S+ {2}exit {5}ok {2}192\.0\.2\.7 {2}start command: exit status 0\n {4}\| opened 192\.0\.2\.7\n/m);
    assert.match(text.stdout, /^\S+ {2}exit {5}bad {2}192\.0\.2\.8 {2}start command: exit status 3\n {4}\| no such chain\n/m);
    assert.match(text.stdout, /^2 commands run, 1 failed \(their exit lines above say how\)$/m);
    const json = await runCli(['replay', '--json', '--execute', '-c', conf, log], { env });
    assert.equal(json.code, 1);
    const { events, summary } = replayOutput(json.stdout);
    assert.deepEqual(
      events.filter((e) => e.event === 'exit').map((e) => [e.door, (e as unknown as { status: number }).status, (e as unknown as { output: string }).output]),
      [['ok', 0, 'opened 192.0.2.7\n'], ['bad', 3, 'no such chain\n']],
    );
    assert.deepEqual(summary.commands, { run: 2, failed: 1 });
    assert.equal(summary.complete, false);
  });

  it('all commands succeeding: exit status 0; a dry run shows no exit lines', async () => {
    const dir = tempDir();
    const conf = config(dir, '[ok]\n  sequence = 7000\n  start_command = true\n');
    const log = join(dir, 'kern.log');
    writeFileSync(log, knockLine('192.0.2.7', 7000, { time: new Date(T) }));
    const executed = await runCli(['replay', '--execute', '-c', conf, log], { env });
    assert.equal(executed.code, 0, executed.stderr);
    assert.match(executed.stdout, /start command: exit status 0\n/);
    assert.match(executed.stdout, /^1 command run, 0 failed$/m);
    const dry = await runCli(['replay', '-c', conf, log], { env });
    assert.equal(dry.code, 0);
    assert.doesNotMatch(dry.stdout, /exit status|commands? run/);
  });
});
