/**
 * `knocktail knock` through the real CLI: knock's options and exit statuses, UDP knocks really arriving on
 * loopback (TCP knocks, IPv6, name resolution and refused knocks are tested in network namespaces, against
 * knockd, in test/e2e/knock-client.test.ts), and knocking a config's door by name.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/parse.js';
import { RollingSequences } from '../../src/knocks/rolling.js';
import { runCli, tempDir } from '../helpers.js';
import { rollingDoor, writeSecretFile } from '../knocks/support.js';

const TIMEOUT = { timeout: 60_000 };

/** UDP sockets on 127.0.0.1 that record the datagrams they get. */
async function listeners(count: number): Promise<{ ports: number[]; received: Buffer[][]; close(): void }> {
  const sockets: Socket[] = [];
  const received: Buffer[][] = [];
  for (let i = 0; i < count; i++) {
    const socket = createSocket('udp4');
    const got: Buffer[] = [];
    socket.on('message', (message) => got.push(message));
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    sockets.push(socket);
    received.push(got);
  }
  return { ports: sockets.map((socket) => socket.address().port), received, close: () => sockets.forEach((socket) => socket.close()) };
}

/** Waits until every listener holds `count` datagrams (they were sent before the CLI exited). */
async function settle(received: Buffer[][], count: number): Promise<void> {
  for (let i = 0; i < 200 && received.some((got) => got.length < count); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('knocktail knock: knock\'s command line', () => {
  it('usage problems exit 1, as knock\'s do, and say what is wrong', TIMEOUT, async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /give HOST and at least one PORT/],
      [['127.0.0.1'], /give HOST and at least one PORT/],
      [['-x', '127.0.0.1', '1'], /Unknown option '-x'/],
      [['-4', '-6', '127.0.0.1', '1'], /-4 and -6 exclude each other/],
      [['-d', '-5', '127.0.0.1', '1'], /delay cannot be negative/],
      [['-d', 'abc', '127.0.0.1', '1'], /-d "abc" is not a delay/],
      [['-d', '3600001', '127.0.0.1', '1'], /from 0 to 3600000/],
      [['127.0.0.1', '0'], /port "0" is invalid: ports are 1-65535/],
      [['127.0.0.1', '70000'], /port "70000" is invalid/],
      [['127.0.0.1', 'ssh'], /port "ssh" is invalid/],
      [['127.0.0.1', '7000:icmp'], /protocol "icmp" in "7000:icmp" is invalid/],
      [['127.0.0.1', '7000,'], /empty step/],
      [['-u', '127.0.0.1', '7000:tcp'], /-u makes every knock UDP; remove -u or the :tcp/],
      [['-4', '::1', '7000'], /::1 is an IPv6 address, but -4 asks for IPv4/],
      [['-6', '127.0.0.1', '7000'], /127\.0\.0\.1 is an IPv4 address, but -6 asks for IPv6/],
      [['-c', 'x.conf', '127.0.0.1'], /with -c, give HOST and one DOOR name/],
      [['-c', 'x.conf', '127.0.0.1', 'a', 'b'], /with -c, give HOST and one DOOR name/],
      [['-c', 'x.conf', '-u', '127.0.0.1', 'a'], /-u cannot be combined with -c/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(['knock', ...args]);
      assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message, args.join(' '));
      assert.match(result.stderr, /^knocktail knock: /);
      assert.equal(result.stdout, '', 'nothing was knocked');
    }
  });

  it('-h prints the usage and -V the version, exit 0', TIMEOUT, async () => {
    const help = await runCli(['knock', '--help']);
    assert.equal(help.code, 0);
    for (const option of ['-u, --udp', '-d, --delay MS', '-4, --ipv4', '-6, --ipv6', '-c, --config FILE', '-v, --verbose', '-V, --version', 'HOST DOOR', 'Exit status']) {
      assert.ok(help.stdout.includes(option), option);
    }
    const version = await runCli(['knock', '-V']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^knocktail knock \d+\.\d+\.\d+\n$/);
  });

  it('UDP knocks arrive, one datagram of one zero byte each; -v prints knock\'s lines; PORT arguments may list several', TIMEOUT, async () => {
    const udp = await listeners(4);
    try {
      const [a, b, c, d] = udp.ports as [number, number, number, number];
      const result = await runCli(['knock', '-v', '-d', '20', '127.0.0.1', `${a}:udp`, `${b}:UDP,${c}:udp`, '--udp', String(d)]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, [a, b, c, d].map((port) => `hitting udp 127.0.0.1:${port}\n`).join(''));
      await settle(udp.received, 1);
      assert.deepEqual(udp.received, [[Buffer.alloc(1)], [Buffer.alloc(1)], [Buffer.alloc(1)], [Buffer.alloc(1)]]);
    } finally {
      udp.close();
    }
  });

  it('a host name is resolved (localhost, -4) and knocked at its address; a TCP knock to a closed port is still sent (exit 0)', TIMEOUT, async () => {
    const udp = await listeners(1);
    try {
      const result = await runCli(['knock', '-v', '-4', 'localhost', `${udp.ports[0]}:udp`, '1']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `hitting udp 127.0.0.1:${udp.ports[0]}\nhitting tcp 127.0.0.1:1\n`);
      await settle(udp.received, 1);
      assert.equal(udp.received[0]!.length, 1);
    } finally {
      udp.close();
    }
  });
});

describe('knocktail knock -c CONFIG HOST DOOR', () => {
  const dir = tempDir('knocktail-knock-c-');

  it('knocks a fixed door\'s sequence, as written in the config (a knockd.conf works)', TIMEOUT, async () => {
    const udp = await listeners(3);
    try {
      const [a, b, c] = udp.ports as [number, number, number];
      const conf = join(dir, 'knockd.conf');
      writeFileSync(conf, `[options]\n\tUseSyslog\n[openSSH]\n\tsequence = ${a}:udp,${b}:udp,${c}:udp\n\tcommand = /sbin/iptables -A INPUT -s %IP% -j ACCEPT\n`);
      const result = await runCli(['knock', '-c', conf, '-v', '127.0.0.1', 'openSSH']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `hitting udp 127.0.0.1:${a}\nhitting udp 127.0.0.1:${b}\nhitting udp 127.0.0.1:${c}\n`);
      await settle(udp.received, 1);
      assert.deepEqual(udp.received.map((got) => got.length), [1, 1, 1]);
    } finally {
      udp.close();
    }
  });

  it('knocks a rolling door\'s sequence of the current period, from a client copy holding only the door and its secret', TIMEOUT, async () => {
    const conf = join(dir, 'client.conf');
    writeFileSync(conf, rollingDoor('ssh', writeSecretFile(dir, undefined, 'ssh.secret'), '61000-61999:udp', ['sequence_length = 5']));
    const rolling = new RollingSequences('ssh', loadConfig(conf).doors[0]!.rolling!);
    const before = rolling.periodAt(Date.now());
    const result = await runCli(['knock', '-c', conf, '-v', '127.0.0.1', 'ssh']);
    const after = rolling.periodAt(Date.now());
    assert.equal(result.code, 0, result.stderr);
    const expected = (period: number) => rolling.sequence(period).map((step) => `hitting udp 127.0.0.1:${step.port}\n`).join('');
    // The period may have turned while the CLI started: then either sequence is right.
    assert.ok([before, after].some((period) => result.stdout === expected(period)), result.stdout);
    assert.equal(result.stdout.split('\n').length, 6);
  });

  it('refuses what a client cannot knock, and unknown doors, with exit 1', TIMEOUT, async () => {
    const once = join(dir, 'once.txt');
    writeFileSync(once, '1000,2000\n');
    const conf = join(dir, 'mixed.conf');
    writeFileSync(
      conf,
      `[fin]\n\tsequence = 7000\n\ttcpflags = fin\n[noSyn]\n\tsequence = 7000:udp,7001\n\ttcpflags = !syn\n[udpFin]\n\tsequence = 7000:udp\n\ttcpflags = fin\n` +
        `[once]\n\tone_time_sequences = ${once}\n[twice]\n\tsequence = 1\n[twice]\n\tsequence = 2\n`,
    );
    const cases: Array<[string, RegExp]> = [
      ['fin', /door \[fin\] wants TCP knocks with other flags than a plain SYN \(TCPFlags\), which a connect\(\) cannot send/],
      ['noSyn', /door \[noSyn\] wants TCP knocks with other flags/],
      ['once', /door \[once\] takes its sequence from the one-time file .*once\.txt/],
      ['twice', /defines door \[twice\] 2 times \(lines 12, 14\)/],
      ['nope', /has no door \[nope\]; its doors: \[fin\], \[noSyn\], \[udpFin\], \[once\], \[twice\], \[twice\]/],
    ];
    for (const [name, message] of cases) {
      const result = await runCli(['knock', '-c', conf, '127.0.0.1', name]);
      assert.equal(result.code, 1, name);
      assert.match(result.stderr, message, name);
    }
    // TCPFlags does not concern a door of UDP knocks.
    const udpFin = await runCli(['knock', '-c', conf, '127.0.0.1', 'udpFin']);
    assert.equal(udpFin.code, 0, udpFin.stderr);
  });

  it('a broken config or secret file: the problems with file:line, exit 1, nothing sent', TIMEOUT, async () => {
    const conf = join(dir, 'broken.conf');
    writeFileSync(conf, rollingDoor('ssh', 'missing.secret', '61000-61999'));
    const result = await runCli(['knock', '-c', conf, '-v', '127.0.0.1', 'ssh']);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, new RegExp(`${conf}:2: Sequence_Secret: cannot read ${join(dir, 'missing.secret')}`));
    const absent = await runCli(['knock', '-c', join(dir, 'absent.conf'), '127.0.0.1', 'ssh']);
    assert.equal(absent.code, 1);
    assert.match(absent.stderr, /cannot read config file .*absent\.conf/);
  });
});
