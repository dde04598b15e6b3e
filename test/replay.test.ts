/**
 * Replay end to end: the real kernel logs of fixtures/real through the CLI, against the MANIFEST's
 * sequences S1-S3, asserting exactly the opens the ground truth implies.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { fixture, runCli, tempDir, replayEvents, type ReplayEvent } from './helpers.js';
import { stepAt } from './steps.js';

const env = { ...process.env, TZ: 'UTC' };
const CONF = fixture('conf', 'manifest.conf');

/** A copy of a fixture with a known mtime (year-less stamps take their year from it). */
function copyWithMtime(name: string, dir: string): string {
  const path = join(dir, name);
  copyFileSync(fixture('real', name), path);
  const mtime = new Date('2026-11-21T05:00:00Z');
  utimesSync(path, mtime, mtime);
  return path;
}


const opens = (events: ReplayEvent[]) => events.filter((e) => e.event === 'open').map((e) => `${e.door} ${e.ip} ${stepAt(Date.parse(e.time), true)}`);

// Phase A and C (MANIFEST): S1 with syn,!ack opens for A01, A04 (1 s apart, within 5 s), A20 (hping3 SYNs)
// and A25; FIN/ACK/SYN+ACK/RST/PSH/URG/xmas/null knocks (A12-A19) are invisible to it; A05, A06 (wrong
// order), A07 (incomplete), A08 (7000 fails A07's leftover attempt, still inside its 5 s), A09, A10
// (wrong protocol) and A11 (repeated first port) open nothing. S2 opens for A02, S3 for A03. Loopback:
// C01 (S1) and C02 (S2) from 10.66.0.1; C04 (reversed) nothing.
const expectedV4 = [
  'S1 10.66.0.2 A01',
  'S2 10.66.0.2 A02',
  'S3 10.66.0.2 A03',
  'S1 10.66.0.2 A04',
  'S1 10.66.0.2 A20',
  'S1 10.66.0.2 A25',
  'S1 10.66.0.1 C01',
  'S2 10.66.0.1 C02',
];
describe('knocktail replay on the real kernel logs', () => {
  for (const file of ['iptables-kernlog.log', 'iptables-kernlog-rfc3339.log']) {
    it(`opens exactly what the ground truth implies for ${file}`, async () => {
      const events = await replayEvents(['-c', CONF, copyWithMtime(file, tempDir())]);
      assert.deepEqual(opens(events), expectedV4);
    });
  }

  it('opens exactly what the ground truth implies for the IPv6 log (B01-B03, B11, C03)', async () => {
    const events = await replayEvents(['-c', CONF, copyWithMtime('ip6tables-kernlog-rfc3339.log', tempDir())]);
    assert.deepEqual(opens(events), ['S1 fd66::2 B01', 'S2 fd66::2 B02', 'S3 fd66::2 B03', 'S1 fd66::2 B11', 'S1 fd66::1 C03']);
  });

  it('reports stages, timeouts, expanded commands and stops Cmd_Timeout after their start, in time order', async () => {
    const events = await replayEvents(['-c', CONF, copyWithMtime('iptables-kernlog-rfc3339.log', tempDir())]);
    const times = events.map((e) => Date.parse(e.time));
    assert.deepEqual(times, [...times].sort((a, b) => a - b), 'event-time order');
    for (const e of events) assert.ok(['stage', 'open', 'timeout', 'start', 'stop', 'extend'].includes(e.event), e.event);

    const a01 = events.filter((e) => stepAt(Date.parse(e.time), true) === 'A01' && e.door === 'S1');
    assert.deepEqual(
      a01.map((e) => [e.event, e.stage ?? e.command ?? '']),
      [['stage', 1], ['stage', 2], ['stage', 3], ['open', ''], ['start', 'open-ssh 10.66.0.2']],
    );
    // Each S1 start is followed by its stop 10 s (Cmd_Timeout) later, unless a repeat success while the door
    // was open extended it: A25 comes 9.2 s after A20, so A20's stop moves to 10 s after A25 (no second start).
    const s1 = events.filter((e) => e.door === 'S1' && ['start', 'stop', 'extend'].includes(e.event));
    assert.deepEqual(
      s1.map((e) => `${e.event} ${e.ip} ${stepAt(Date.parse(e.time) - (e.event === 'stop' ? 10_000 : 0), true)}`),
      [
        'start 10.66.0.2 A01', 'stop 10.66.0.2 A01',
        'start 10.66.0.2 A04', 'stop 10.66.0.2 A04',
        'start 10.66.0.2 A20', 'extend 10.66.0.2 A25', 'stop 10.66.0.2 A25',
        'start 10.66.0.1 C01', 'stop 10.66.0.1 C01',
      ],
    );
    for (const stop of s1.filter((e) => e.event === 'stop')) assert.equal(stop.command, `close-ssh ${stop.ip}`);
    // S3 has no stop command: no stop event.
    assert.equal(events.filter((e) => e.event === 'stop' && e.door === 'S3').length, 0);
    // C04 (9000, 8000, 7000 on lo) leaves an S1 attempt at stage 1 that times out 5 s after its knock.
    const timeouts = events.filter((e) => e.event === 'timeout').map((e) => `${e.door} ${e.ip} ${e.stage} ${stepAt(Date.parse(e.time) - 5000, true)}`);
    assert.ok(timeouts.includes('S1 10.66.0.1 1 C04'), timeouts.join('; '));
  });

  it('merges separate logs by event time (iptables and ip6tables beside each other)', async () => {
    const dir = tempDir();
    const events = await replayEvents(['-c', CONF, copyWithMtime('ip6tables-kernlog-rfc3339.log', dir), copyWithMtime('iptables-kernlog-rfc3339.log', dir)]);
    const times = events.map((e) => Date.parse(e.time));
    assert.deepEqual(times, [...times].sort((a, b) => a - b));
    assert.equal(events.filter((e) => e.event === 'open').length, 8 + 5);
    // Each start is stamped with its own open's time, not with a later line's.
    for (const [i, e] of events.entries()) if (e.event === 'start') assert.equal(e.time, events[i - 1]!.time);
  });

  it('reads a rotated set oldest first, whatever order the files are given in, .gz included', async () => {
    const dir = tempDir();
    const text = readFileSync(fixture('real', 'iptables-kernlog-rfc3339.log'), 'utf8').split('\n');
    // Split the log in three generations: kern.log.2.gz (oldest), kern.log.1, kern.log (newest).
    writeFileSync(join(dir, 'kern.log.2.gz'), gzipSync(text.slice(0, 30).join('\n') + '\n'));
    writeFileSync(join(dir, 'kern.log.1'), text.slice(30, 60).join('\n') + '\n');
    writeFileSync(join(dir, 'kern.log'), text.slice(60).join('\n'));
    const files = ['kern.log', 'kern.log.2.gz', 'kern.log.1'].map((f) => join(dir, f));
    const events = await replayEvents(['-c', CONF, ...files]);
    assert.deepEqual(opens(events), expectedV4);
  });

  it('prints a readable report naming which doors opened for whom', async () => {
    const result = await runCli(['replay', '-c', CONF, copyWithMtime('iptables-kernlog.log', tempDir())], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^2026-11-21T04:16:16\.000Z {2}open {5}S1 {2}10\.66\.0\.2$/m);
    assert.match(result.stdout, /door S1 opened 5 times for 10\.66\.0\.2 \(4x\), 10\.66\.0\.1$/m);
    assert.match(result.stdout, /door S3 opened 1 time for 10\.66\.0\.2$/m);
    // 12 lines are not parsed: the 4 kernel messages, ICMP and 7 packets to ports no door uses (22, 80, 53, 5555, 6666, 7001, …).
    // The words are those of knocktail status.
    assert.match(
      result.stdout,
      /iptables-kernlog\.log: lines: read 84, TCP\/UDP packets 72, skipped unparsed \(no port a door watches in them\) 12, ignored \(no log format recognised them\) 0, other protocols \(ICMP…\) 0, malformed \(a format claimed them, a field was missing or invalid\) 0\n/,
    );
  });
});

describe('replay and hostile input', () => {
  it('counts and skips malformed and foreign lines, never fatal', async () => {
    const dir = tempDir();
    const real = readFileSync(fixture('real', 'iptables-kernlog-rfc3339.log'), 'utf8');
    const junk = ['', 'garbage', '\u0000\u0001binary\uffff', 'x'.repeat(100_000), `${real.split('\n')[2]!.replace('SRC=10.66.0.2', 'SRC=999.1.1.1')}`];
    const path = join(dir, 'kern.log');
    writeFileSync(path, `${junk.join('\n')}\n${real}`);
    const events = await replayEvents(['-c', CONF, path]);
    assert.deepEqual(opens(events), expectedV4);
  });

  it('never lets text from a log line reach a shell, in any field (--execute)', async () => {
    const dir = tempDir();
    const marker = join(dir, 'opened');
    const conf = join(dir, 'k.conf');
    writeFileSync(conf, `[d]\nsequence = 7000\nstart_command = echo %IP% >> ${marker}\n`);
    const good = '2026-11-21T04:16:16.719457+00:00 vm kernel: [  446.351538] KNOCK IN=vfx0 OUT= MAC=02:66:00:00:00:01:02:66:00:00:00:02:08:00 SRC=10.66.0.2 DST=10.66.0.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=42887 DF PROTO=TCP SPT=39206 DPT=7000 WINDOW=64240 RES=0x00 SYN URGP=0 ';
    const pwned = join(dir, 'pwned');
    const payloads = [`$(touch ${pwned})`, `\`touch ${pwned}\``, `;touch ${pwned};`, `|touch ${pwned}`, `&&touch ${pwned}`, `'$(touch ${pwned})'`];
    const hostile: string[] = [];
    for (const p of payloads) {
      hostile.push(good.replace('SRC=10.66.0.2', `SRC=10.66.0.2${p}`));
      hostile.push(good.replace('SRC=10.66.0.2', `SRC=${p}`));
      hostile.push(good.replace('DST=10.66.0.1', `DST=${p}`));
      hostile.push(good.replace('IN=vfx0', `IN=${p}`));
      hostile.push(good.replace('KNOCK ', `KNOCK ${p} `));
      hostile.push(good.replace('DPT=7000', `DPT=7000${p}`));
      hostile.push(good.replace('SYN ', `SYN ${p} `));
      hostile.push(good.replace(' vm ', ` ${p} `));
      hostile.push(`${good}${p}`);
    }
    const log = join(dir, 'kern.log');
    writeFileSync(log, [...hostile, good].join('\n') + '\n');
    const result = await runCli(['replay', '--execute', '-c', conf, log], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(existsSync(pwned), false, 'no payload ran');
    // A payload in the log prefix leaves a well-formed kernel line (the prefix is the admin's free text):
    // those knocks count, and still only the canonical address reaches the command.
    assert.equal(readFileSync(marker, 'utf8'), '10.66.0.2\n'.repeat(1 + payloads.length));
    assert.deepEqual(readdirSync(dir).sort(), ['k.conf', 'kern.log', 'opened']);
  });

  it('runs a start command longer than 4096 bytes after expansion (knockd case 37 refuses it: deliberate difference)', async () => {
    const dir = tempDir();
    const marker = join(dir, 'long');
    const conf = join(dir, 'k.conf');
    const padding = ':'.repeat(4200);
    writeFileSync(conf, `[d]\nsequence = 7000\nstart_command = echo %IP% > ${marker} # ${padding}\n`);
    const log = join(dir, 'kern.log');
    writeFileSync(log, '2026-11-21T04:16:16.719457+00:00 vm kernel: [  446.351538] KNOCK IN=vfx0 OUT= SRC=10.66.0.2 DST=10.66.0.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=42887 DF PROTO=TCP SPT=39206 DPT=7000 WINDOW=64240 RES=0x00 SYN URGP=0 \n');
    const result = await runCli(['replay', '--execute', '-c', conf, log], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(readFileSync(marker, 'utf8'), '10.66.0.2\n');
  });

  it('warns that lines in a forgeable log (syslog, messages…) may be forged', async () => {
    const dir = tempDir();
    const syslog = join(dir, 'syslog');
    copyFileSync(fixture('real', 'forged.log'), syslog);
    const result = await runCli(['replay', '-c', CONF, syslog], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /warning: .*syslog: any local user can write kernel-looking lines into this log/);
  });

  it('refuses a missing file and a broken config with a clear message', async () => {
    const missing = await runCli(['replay', '-c', CONF, '/nonexistent/kern.log'], { env });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /\/nonexistent\/kern\.log: no such file/);
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.conf'), '[d]\nsequence = 7000,-1\n');
    const bad = await runCli(['replay', '-c', join(dir, 'bad.conf'), fixture('real', 'iptables-kernlog.log')], { env });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /bad\.conf:2: .*-1/);
  });

  it('rejects unknown options with exit status 2', async () => {
    const result = await runCli(['replay', '--bogus', fixture('real', 'iptables-kernlog.log')], { env });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--bogus/);
  });
});
