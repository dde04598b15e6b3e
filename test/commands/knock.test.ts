/**
 * `knocktail knock` through the real CLI: knock's options and exit statuses, UDP knocks really arriving on
 * loopback (TCP knocks, IPv6, name resolution and refused knocks are tested in network namespaces, against
 * knockd, in test/e2e/knock-client.test.ts), knocking a config's door by name, and an encrypted door's message
 * (its order on the wire, TCP knocks and NAT are tested in network namespaces in test/e2e/knock-encrypted.test.ts).
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { chmodSync, chownSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/parse.js';
import { encryptedDoorSpec, KnockDecoder, type KnockOutcome } from '../../src/knocks/decoder.js';
import { MemoryUsedKnocks } from '../../src/knocks/used.js';
import { RollingSequences } from '../../src/knocks/rolling.js';
import { canRunAsNobody, isRoot, runCli, tempDir } from '../helpers.js';
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

/** Runs `body` with `count` listeners (see listeners()), closed afterwards. */
async function withListeners(count: number, body: (udp: Awaited<ReturnType<typeof listeners>>) => Promise<void>): Promise<void> {
  const udp = await listeners(count);
  try {
    await body(udp);
  } finally {
    udp.close();
  }
}

/** Waits until every listener holds `count` datagrams (they were sent before the CLI exited). */
async function settle(received: Buffer[][], count: number): Promise<void> {
  for (let i = 0; i < 200 && received.some((got) => got.length < count); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** Each command line fails with exit 1, its message, and nothing knocked. */
async function assertRefused(cases: ReadonlyArray<[args: string[], message: RegExp]>): Promise<void> {
  for (const [args, message] of cases) {
    const result = await runCli(['knock', ...args]);
    assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message, args.join(' '));
    assert.match(result.stderr, /^knocktail knock: /);
    assert.equal(result.stdout, '', 'nothing was knocked');
  }
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
    await assertRefused(cases);
  });

  it('-h prints the usage and -V the version, exit 0', TIMEOUT, async () => {
    const help = await runCli(['knock', '--help']);
    assert.equal(help.code, 0);
    for (const option of ['-u, --udp', '-d, --delay MS', '-4, --ipv4', '-6, --ipv6', '-c, --config FILE', '--port PORT', '--for SECONDS', '--ip ADDRESS', '-v, --verbose', '-V, --version', 'HOST DOOR', 'Exit status']) {
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

/** The config of an encrypted door whose span is `ports` (UDP, in this order) and its key file, in `dir`. */
function encryptedDoor(dir: string, name: string, ports: readonly number[], extra = ''): string {
  const conf = join(dir, `${name}.conf`);
  const key = writeSecretFile(dir, undefined, `${name}.key`);
  writeFileSync(conf, `[${name}]\n\tKnock_Key = ${key}\n\tPort_Span = ${ports.map((port) => `${port}:udp`).join(', ')}\n\tAllowed_Ports = 22, 2222\n${extra}`);
  return conf;
}

/** The ports of `hitting udp 127.0.0.1:PORT` lines, in order. */
function hitPorts(stdout: string): number[] {
  return [...stdout.matchAll(/^hitting udp 127\.0\.0\.1:(\d+)$/gm)].map((match) => Number(match[1]));
}

/**
 * Feeds `ports` from `source` to a decoder of the door in `conf` (Trust_Knock_IP overridden by `trust`) and expires
 * what is left: what opened, and the reasons of the refusals. (On a span of 2^8 ports a data knock often equals
 * a sync value and starts a message in progress that ends "incomplete": only the opens and the refusals a
 * test names are compared.)
 */
function decode(conf: string, source: string, ports: readonly number[], trust?: boolean): { opens: unknown[]; reasons: string[] } {
  const spec = encryptedDoorSpec(loadConfig(conf).doors[0]!);
  const decoder = new KnockDecoder({ ...spec, trustKnockIp: trust ?? spec.trustKnockIp }, new MemoryUsedKnocks(), 10);
  const now = Date.now();
  const outcomes: KnockOutcome[] = ports.flatMap((port, i) => decoder.knock(source, decoder.valueOf('udp', port), now + i));
  outcomes.push(...decoder.expire(now + 3_600_000));
  return {
    opens: outcomes.flatMap((outcome) => (outcome.type === 'open' ? [{ openFor: outcome.openFor, source: outcome.source, request: outcome.request, recent: Math.abs(outcome.messageTime - now) < 60_000 }] : [])),
    reasons: outcomes.flatMap((outcome) => (outcome.type === 'refused' ? [outcome.reason] : [])),
  };
}

describe('knocktail knock -c CONFIG HOST DOOR --port P --for SECONDS: an encrypted door\'s message', () => {
  const dir = tempDir('knocktail-knock-message-');

  it('the knocks -v lists arrive on the span, one datagram each; in that order they decode to the request, bound to the knocks\' source', TIMEOUT, async () => {
    await withListeners(256, async (udp) => {
      const conf = encryptedDoor(dir, 'ssh', udp.ports);
      const result = await runCli(['knock', '-c', conf, '-v', '127.0.0.1', 'ssh', '--port', '2222', '--for', '900']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, '', 'no warning: loopback is no NAT');
      assert.equal(result.stdout.split('\n')[0], 'door [ssh]: asking to open port 2222 for 900 s for 127.0.0.1 (the address the knocks come from), 29 knocks');
      const sent = hitPorts(result.stdout);
      assert.equal(sent.length, 29, 'a message without an address on a span of 2^8 ports: 29 knocks (docs/encrypted-knocks.md)');
      const total = () => udp.received.reduce((sum, got) => sum + got.length, 0);
      for (let i = 0; i < 200 && total() < sent.length; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.deepEqual(
        udp.ports.map((_, i) => udp.received[i]!.length),
        udp.ports.map((port) => sent.filter((hit) => hit === port).length),
        'every knock arrived at its port, and nothing else',
      );
      assert.ok(udp.received.flat().every((datagram) => datagram.equals(Buffer.alloc(1))));
      assert.deepEqual(decode(conf, '127.0.0.1', sent).opens, [{ openFor: '127.0.0.1', source: '127.0.0.1', request: { port: 2222, duration: 900, address: null }, recent: true }]);
      // The message is bound to its source: from anywhere else it does not authenticate.
      const elsewhere = decode(conf, '192.0.2.9', sent);
      assert.deepEqual(elsewhere.opens, []);
      assert.ok(elsewhere.reasons.includes('auth'), elsewhere.reasons.join());
    });
  });

  it('--ip names the address to open for: with Trust_Knock_IP it opens for that address, without it the knocks\' source must be that address', TIMEOUT, async () => {
    await withListeners(256, async (udp) => {
      const conf = encryptedDoor(dir, 'nat', udp.ports, '\tMax_Duration = 65535\n');
      const result = await runCli(['knock', '-c', conf, '-v', '127.0.0.1', 'nat', '--port', '22', '--for', '65535', '--ip', '2001:DB8:0::42']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, '');
      assert.equal(result.stdout.split('\n')[0], 'door [nat]: asking to open port 22 for 65535 s for 2001:db8::42 (--ip), 54 knocks');
      const sent = hitPorts(result.stdout);
      assert.equal(sent.length, 54, 'a message naming an IPv6 address on a span of 2^8 ports: 54 knocks');
      const request = { port: 22, duration: 65535, address: '2001:db8::42' };
      assert.deepEqual(decode(conf, '127.0.0.1', sent, true).opens, [{ openFor: '2001:db8::42', source: '127.0.0.1', request, recent: true }]);
      const untrusted = decode(conf, '127.0.0.1', sent, false);
      assert.deepEqual(untrusted.opens, []);
      assert.ok(untrusted.reasons.includes('address'), untrusted.reasons.join());
      assert.deepEqual(decode(conf, '2001:db8::42', sent, false).opens, [{ openFor: '2001:db8::42', source: '2001:db8::42', request, recent: true }]);
    });
  });

  it('-d sets the pause between knocks; a warning when the message then takes longer than the door\'s Seq_Timeout', TIMEOUT, async () => {
    await withListeners(256, async (udp) => {
      const conf = encryptedDoor(dir, 'slow', udp.ports, '\tSeq_Timeout = 1\n');
      const result = await runCli(['knock', '-c', conf, '-d', '40', '127.0.0.1', 'slow', '--port', '22', '--for', '60']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(
        result.stderr,
        'knocktail knock: warning: the 29 knocks of the message, 40 ms apart, take 1.12 s, longer than the Seq_Timeout of door [slow] (1 s): ' +
          'the server will not put the message together; use a smaller -d\n',
      );
      const quick = await runCli(['knock', '-c', conf, '-d', '0', '127.0.0.1', 'slow', '--port', '22', '--for', '60']);
      assert.equal(quick.code, 0, quick.stderr);
      assert.equal(quick.stderr, '');
      // With the default pause (10 ms) 29 knocks take 0.28 s: no warning either.
      const normal = await runCli(['knock', '-c', conf, '127.0.0.1', 'slow', '--port', '22', '--for', '60']);
      assert.equal(normal.stderr, '');
    });
  });

  it('refuses bad requests and misplaced options with exit 1 before knocking', TIMEOUT, async () => {
    const conf = encryptedDoor(dir, 'ssh2', Array.from({ length: 256 }, (_, i) => 40000 + i));
    const plain = join(dir, 'plain.conf');
    writeFileSync(plain, '[plain]\n\tsequence = 7000:udp\n');
    const door = ['-c', conf, '-v', '127.0.0.1', 'ssh2'];
    const cases: Array<[string[], RegExp]> = [
      [['-v', '127.0.0.1', '7000', '--port', '22', '--for', '60'], /--port, --for and --ip go with an encrypted door: -c FILE HOST DOOR --port PORT --for SECONDS/],
      [['-c', plain, '-v', '127.0.0.1', 'plain', '--port', '22', '--for', '60'], /door \[plain\] opens for its sequence: remove them/],
      [door, /door \[ssh2\] opens for encrypted messages \(Knock_Key\): say what to open with --port PORT --for SECONDS/],
      [[...door, '--port', '22'], /an encrypted door's message needs both --port PORT and --for SECONDS/],
      [[...door, '--for', '60'], /needs both --port PORT and --for SECONDS/],
      [[...door, '--ip', '203.0.113.9'], /needs both --port PORT and --for SECONDS/],
      [[...door, '--port', '0', '--for', '60'], /--port "0" is not a port: give a whole number from 1 to 65535/],
      [[...door, '--port', '65536', '--for', '60'], /--port "65536" is not a port/],
      [[...door, '--port', 'ssh', '--for', '60'], /--port "ssh" is not a port/],
      [[...door, '--port', '22.0', '--for', '60'], /--port "22.0" is not a port/],
      [[...door, '--port=', '--for', '60'], /--port "" is not a port/],
      [[...door, '--port', '22', '--for', '0'], /--for "0" is not a duration: give whole seconds from 1 to 65535/],
      [[...door, '--port', '22', '--for', '65536'], /--for "65536" is not a duration/],
      [[...door, '--port', '22', '--for', '1.5'], /--for "1.5" is not a duration/],
      [[...door, '--port', '22', '--for', '5m'], /--for "5m" is not a duration/],
      [[...door, '--port', '22', '--for', '60', '--ip', '203.0.113.09'], /--ip "203.0.113.09" is not an IP address/],
      [[...door, '--port', '22', '--for', '60', '--ip', '203.0.113'], /--ip "203.0.113" is not an IP address/],
      [[...door, '--port', '22', '--for', '60', '--ip', 'host.example.org'], /--ip "host.example.org" is not an IP address/],
      [[...door, '--port', '22', '--for', '60', '--ip', 'fe80::1%eth0'], /--ip "fe80::1%eth0" is not an IP address: .* without a zone/],
      [[...door, '--port', '22', '--for', '60', '--ip', '0.0.0.0'], /--ip "0.0.0.0": 0\.0\.0\.0 is not the address of one host/],
      [[...door, '--port', '22', '--for', '60', '--ip', 'ff02::1'], /is not the address of one host/],
      [[...door, '--port', '22', '--for', '60', '--ip', '::ffff:203.0.113.9'], /write it as 203\.0\.113\.9/],
      [[...door, '--port', '22', '--for', '60', '-d', 'x'], /-d "x" is not a delay/],
    ];
    await assertRefused(cases);
  });

  it('a client copy whose key file others can read is refused with the fix', TIMEOUT, async () => {
    const conf = encryptedDoor(dir, 'copy', Array.from({ length: 256 }, (_, i) => 40000 + i));
    const key = join(dir, 'copy.key');
    chmodSync(key, 0o640);
    const refused = await runCli(['knock', '-c', conf, '-v', '127.0.0.1', 'copy', '--port', '22', '--for', '60']);
    assert.equal(refused.code, 1);
    assert.equal(refused.stdout, '');
    assert.match(refused.stderr, new RegExp(`${conf}:2: Knock_Key: ${key} can be read or written by its group \\(mode 0640\\).*chmod 600 ${key}`, 's'));
  });

  it('a client copy and key file owned by the user running the client (not root) are accepted', { ...TIMEOUT, skip: isRoot ? canRunAsNobody() : false }, async () => {
    await withListeners(256, async (udp) => {
      // Under root, the client runs as nobody, owning its copy in a directory it may enter.
      const own = tempDir('knocktail-knock-own-');
      const conf = encryptedDoor(own, 'own', udp.ports);
      const user = isRoot ? 65534 : process.getuid!();
      for (const file of [own, conf, join(own, 'own.key')]) chownSync(file, user, user);
      const result = await runCli(['knock', '-c', conf, '-v', '127.0.0.1', 'own', '--port', '22', '--for', '60'], isRoot ? { uid: user } : {});
      assert.equal(result.code, 0, result.stderr);
      assert.equal(hitPorts(result.stdout).length, 29);
      assert.notEqual(statSync(join(own, 'own.key')).uid, 0);
    });
  });
});
