/** knockd's log formats (spec §6), kept message for message, plus what we report that knockd does not. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DoorConfig } from '../src/config/types.js';
import { Logger, type LoggerOptions } from '../src/logging.js';
import { inTimeZone, repoRoot, tempDir } from './helpers.js';

const door = { name: 'openSSH', sequence: [{ proto: 'tcp', port: 7000 }] } as unknown as DoorConfig;
const ok = { status: 0, signal: null, output: '', durationMs: 1, timedOut: false, error: null };

function capture(options: Partial<LoggerOptions> = {}) {
  const dir = tempDir();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c) => (out += c));
  stderr.on('data', (c) => (err += c));
  const logFile = join(dir, 'knock.log');
  const logger = new Logger({ logFile, useSyslog: false, verbose: false, debug: false, lookup: false, stdout, stderr, ...options });
  const file = (): string => {
    logger.flush();
    return readFileSync(logFile, 'utf8');
  };
  return { logger, logFile, out: () => out, err: () => err, file };
}

describe('Logger', () => {
  it("writes knockd's messages to the log file as [YYYY-MM-DD HH:MM] message", () => {
    const { logger, file, out } = capture();
    logger.log('starting up, listening on /var/log/kern.log');
    logger.event({ type: 'stage', time: 0, door, ip: '10.66.0.2', stage: 1 });
    logger.event({ type: 'open', time: 0, door, ip: '10.66.0.2' });
    logger.event({ type: 'start', time: 0, door: 'openSSH', ip: '10.66.0.2', command: 'iptables -A x' });
    logger.event({ type: 'timeout', time: 0, door, ip: '10.66.0.3', stage: 2 });
    logger.event({ type: 'stop', time: 0, door: 'openSSH', ip: '10.66.0.2', command: 'iptables -D x', lateMs: 0 });
    logger.close();
    const lines = file().trimEnd().split('\n');
    for (const line of lines) assert.match(line, /^\[\d{4}-\d\d-\d\d \d\d:\d\d\] /);
    assert.deepEqual(
      lines.map((l) => l.slice(19)),
      [
        'starting up, listening on /var/log/kern.log',
        '10.66.0.2: openSSH: Stage 1',
        '10.66.0.2: openSSH: OPEN SESAME',
        'openSSH: running command: iptables -A x',
        '10.66.0.3: openSSH: sequence timeout (stage 2)',
        '10.66.0.2: openSSH: command timeout',
        'openSSH: running command: iptables -D x',
      ],
    );
    assert.equal(out(), '', 'nothing on stdout without -v');
  });

  it('names what a rolling or encrypted open was for, and logs refusals of one-time knocks once per door and reason, then a count', () => {
    const { logger, file } = capture();
    logger.event({ type: 'open', time: 0, door, ip: '10.66.0.2', period: 58907520 });
    logger.event({ type: 'open', time: 0, door, ip: '10.66.0.2', request: { port: 22, duration: 300, knockIp: '10.66.0.2' } });
    logger.event({ type: 'open', time: 0, door, ip: '203.0.113.9', request: { port: 443, duration: 60, knockIp: '10.66.0.2' } });
    for (const ip of ['10.66.0.7', '10.66.0.8', '10.66.0.9']) logger.event({ type: 'refused', time: 0, door, ip, reason: 'replay', detail: `used already (${ip})` });
    logger.event({ type: 'refused', time: 0, door, ip: '10.66.0.7', reason: 'auth', detail: 'failed authentication' });
    logger.close();
    assert.deepEqual(file().trimEnd().split('\n').map((line) => line.slice(19)), [
      '10.66.0.2: openSSH: OPEN SESAME (sequence of period 58907520)',
      '10.66.0.2: openSSH: OPEN SESAME (port 22 for 300 s)',
      '203.0.113.9: openSSH: OPEN SESAME (port 443 for 60 s, knocked from 10.66.0.2)',
      '10.66.0.7: openSSH: refused (replay): used already (10.66.0.7)',
      '10.66.0.7: openSSH: refused (auth): failed authentication',
      'openSSH: refused 2 more (replay) in the last 10 s',
    ]);
  });

  it('prints the same messages on stdout with -v', () => {
    const { logger, out } = capture({ verbose: true });
    logger.event({ type: 'stage', time: 0, door, ip: 'fd66::2', stage: 3 });
    logger.verbose('listening on eth0...');
    assert.equal(out(), 'fd66::2: openSSH: Stage 3\nlistening on eth0...\n');
  });

  it("reports command failures on stderr and in the log, with knockd's status text", () => {
    const { logger, err, file } = capture();
    logger.event({ type: 'exit', time: 0, door: 'oc', ip: '10.0.0.1', action: 'start', command: 'x', result: { ...ok, status: 3, output: 'boom\n' } });
    logger.event({ type: 'exit', time: 0, door: 'oc', ip: '10.0.0.1', action: 'stop', command: 'x', result: { ...ok, status: null, signal: 'SIGKILL', timedOut: true } });
    logger.event({ type: 'exit', time: 0, door: 'oc', ip: '10.0.0.1', action: 'stop', command: 'x', result: { ...ok, status: null, error: 'spawn /bin/sh ENOENT' } });
    logger.event({ type: 'exit', time: 0, door: 'oc', ip: '10.0.0.1', action: 'start', command: 'x', result: ok });
    assert.match(err(), /^oc: command returned non-zero status code \(3\)$/m);
    assert.match(err(), /^oc: command ran longer than its limit and was killed/m);
    assert.match(err(), /^oc: could not run command: spawn \/bin\/sh ENOENT$/m);
    assert.match(file(), /oc: command output: boom/);
    assert.equal(err().split('\n').filter(Boolean).length, 3, 'a successful command is not an error');
  });

  it('says how late a stop ran and when an extended door closes', () => {
    const { logger, file } = capture();
    logger.event({ type: 'stop', time: 0, door: 'oc', ip: '10.0.0.1', command: 'close', lateMs: 125_000 });
    logger.event({ type: 'extend', time: 0, door: 'oc', ip: '10.0.0.1', until: Date.parse('2026-11-21T10:00:00Z') });
    assert.match(file(), /10\.0\.0\.1: oc: command timeout \(late by 125 s\)/);
    assert.match(file(), /10\.0\.0\.1: oc: already open, stop command postponed to 2026-11-21T10:00:00\.000Z/);
  });

  it('prints a debug line per knock hit with -D only, with the right month', () => {
    const hit = { time: Date.parse('2026-11-21T04:16:16.719Z'), src: '10.66.0.2', dst: '10.66.0.1', proto: 'tcp' as const, dport: 7000, sport: 39206, flags: 2, input: 'kern.log', iface: 'eth0' };
    const quiet = capture();
    quiet.logger.debugHit(hit);
    assert.equal(quiet.out(), '');
    const debug = capture({ debug: true });
    inTimeZone('UTC', () => debug.logger.debugHit(hit));
    assert.equal(debug.out(), '2026-11-21 04:16:16.719: tcp: 10.66.0.2:39206 -> 10.66.0.1:7000 [SYN] (kern.log)\n');
  });

  it('shows the reverse-DNS name with -l once it is known (getnameinfo: /etc/hosts applies)', async () => {
    const { logger, file } = capture({ lookup: true });
    logger.event({ type: 'stage', time: 0, door, ip: '127.0.0.1', stage: 1 });
    // The name is looked up in the background: later lines carry it once it is known (no deadline; the test's timeout bounds the wait).
    for (let stage = 2; !file().includes('(localhost'); stage++) {
      await sleep(10);
      logger.event({ type: 'stage', time: 0, door, ip: '127.0.0.1', stage });
    }
    const lines = file().trimEnd().split('\n').map((l) => l.slice(19));
    assert.equal(lines[0], '127.0.0.1: openSSH: Stage 1', 'the first line is not held back for the lookup');
    assert.match(lines.at(-1)!, /^127\.0\.0\.1 \(localhost[^)]*\): openSSH: Stage \d+$/);
  });

  it('sends messages to syslog through logger(1) as knocktail, facility daemon (UseSyslog)', async () => {
    const dir = tempDir();
    const record = join(dir, 'syslog.txt');
    const done = join(dir, 'done');
    const fake = join(dir, 'logger');
    writeFileSync(fake, `#!/bin/sh\necho "ARGS $*" >> ${record}\ncat >> ${record}\ntouch ${done}\n`);
    chmodSync(fake, 0o755);
    // A process of its own finds the fake logger(1) first on its PATH; this process's PATH stays as it is.
    const script = `import { Logger } from ${JSON.stringify(join(repoRoot, 'dist', 'src', 'logging.js'))};
      const logger = new Logger({ logFile: null, useSyslog: true, verbose: false, debug: false, lookup: false });
      logger.log('10.66.0.2: openSSH: OPEN SESAME');
      logger.close();`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
    assert.equal(child.status, 0, child.stderr);
    // logger(1) gets end of input when the Logger closes: its output is complete once it is done.
    while (!existsSync(done)) await sleep(10);
    assert.equal(readFileSync(record, 'utf8'), 'ARGS -t knocktail -p daemon.notice\n10.66.0.2: openSSH: OPEN SESAME\n');
  });

  it('prints the start-up line once: "listening on X..." with -v, "starting up, listening on X" in the log only', () => {
    const { logger, out, file } = capture({ verbose: true });
    logger.startingUp('/var/log/kern.log');
    assert.equal(out(), 'listening on /var/log/kern.log...\n');
    assert.match(file(), /^\[[^\]]+\] starting up, listening on \/var\/log\/kern\.log\n$/);
  });

  it('escapes control characters from hostile text in the log file, on stderr and on stdout', () => {
    const { logger, out, err, file } = capture({ verbose: true });
    logger.error('warning: /etc/ot:3: port "\x1b]0;owned\x07\r\x9b" is invalid');
    logger.log('door\x1b[2J: OPEN SESAME');
    for (const text of [out(), err(), file()]) assert.doesNotMatch(text, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    assert.match(err(), /port "\\x1b\]0;owned\\x07\\r\\x9b" is invalid/);
    assert.match(file(), /port "\\x1b\]0;owned\\x07\\r\\x9b" is invalid/);
    assert.match(out(), /door\\x1b\[2J: OPEN SESAME/);
  });

  it('caps a burst of alike warnings: five, then one count with the last one, in the log file and on stderr', () => {
    const { logger, err, file } = capture();
    for (let line = 1; line <= 3817; line++) logger.error(`warning: /etc/ot:${line}: port "${line}x" is invalid`);
    logger.error('warning: another kind of problem');
    logger.close();
    const expected = [
      ...[1, 2, 3, 4, 5].map((line) => `warning: /etc/ot:${line}: port "${line}x" is invalid`),
      'warning: another kind of problem',
      '… and 3,812 more like this in the last 10 s; the last one: warning: /etc/ot:3817: port "3817x" is invalid',
    ];
    assert.deepEqual(err().trimEnd().split('\n'), expected);
    assert.deepEqual(file().trimEnd().split('\n').map((line) => line.slice(19)), expected);
  });

  it('warns once and keeps running when the log file cannot be opened', () => {
    const { logger, err } = capture({ logFile: '/nonexistent/dir/knock.log' });
    logger.log('still fine');
    assert.match(err(), /warning: cannot open logfile \/nonexistent\/dir\/knock\.log/);
  });
});
