/**
 * The client side of encrypted knocks: a door of a config (loaded by the real parser, key file and all) makes
 * exactly the knocks of the document's test vectors; the NAT rule; the addresses a door cannot open for; the
 * kernel's source address. The CLI is tested in test/commands/knock.test.ts, across namespaces in
 * test/e2e/knock-encrypted.test.ts.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { messageKnocks, natProblem, openForProblem, sourceAddressTowards } from '../../src/client/encrypted.js';
import { KnockError } from '../../src/client/send.js';
import { loadConfig } from '../../src/config/parse.js';
import type { DoorConfig } from '../../src/config/types.js';
import { tempDir } from '../helpers.js';
import { documentVectors } from '../knocks/message-support.js';
import { writeSecretFile } from '../knocks/support.js';

const VECTORS = documentVectors();

const dir = tempDir('knocktail-client-encrypted-');

/** The door `name` of a client's copy: the section, its key file, nothing else. */
function clientDoor(name: string, key: Buffer, span: string, extra = ''): DoorConfig {
  const file = name.replace(/\W/g, '_');
  const conf = join(dir, `${file}.conf`);
  const keyFile = writeSecretFile(dir, key, `${file}.key`);
  writeFileSync(conf, `[${name}]\n\tKnock_Key = ${keyFile}\n\tPort_Span = ${span}\n\tAllowed_Ports = 1-65535\n${extra}`);
  return loadConfig(conf).doors.find((door) => door.name === name)!;
}

describe('messageKnocks', () => {
  assert.equal(VECTORS.length, 3);
  for (const vector of VECTORS) {
    it(`knocks the document's vector "${vector.name}", from a door read from a config`, () => {
      const door = clientDoor(vector.door, Buffer.from(vector.keyFile, 'hex'), vector.portSpan);
      const steps = messageKnocks(door, vector.request, { time: vector.time, nonce: Buffer.from(vector.nonce, 'hex'), source: vector.request.address === null ? vector.source : null });
      assert.equal(steps.map((step) => (step.proto === 'udp' ? `${step.port}:udp` : `${step.port}`)).join(','), vector.knocks);
    });
  }

  it('refuses a door that is not encrypted, and TCP knocks that TCPFlags would not count', () => {
    const conf = join(dir, 'plain.conf');
    writeFileSync(conf, '[plain]\n\tSequence = 7000\n');
    const plain = loadConfig(conf).doors[0]!;
    const context = { time: 1767225677, nonce: Buffer.alloc(4), source: '192.0.2.1' };
    assert.throws(() => messageKnocks(plain, { port: 22, duration: 60, address: null }, context), /door \[plain\] is not an encrypted door \(it has no Knock_Key\)/);
    const fin = clientDoor('fin', Buffer.alloc(32, 7), '40000-40255', '\tTCPFlags = fin\n');
    assert.throws(() => messageKnocks(fin, { port: 22, duration: 60, address: null }, context), (error) => error instanceof KnockError && /other flags than a plain SYN/.test(error.message));
    const udpFin = clientDoor('udpFin', Buffer.alloc(32, 7), '40000-40255:udp', '\tTCPFlags = fin\n');
    assert.equal(messageKnocks(udpFin, { port: 22, duration: 60, address: null }, context).length, 29, 'TCPFlags does not concern UDP knocks');
  });
});

describe('natProblem: a message bound to a private source, sent to a public host', () => {
  it('is explained, with the fix; both private or local, or a public source, is no problem', () => {
    const cases: Array<[source: string, host: string, nat: boolean]> = [
      ['192.168.1.20', '203.0.113.9', true],
      ['10.0.0.2', '198.51.100.1', true],
      ['172.16.5.5', '8.8.8.8', true],
      ['100.64.0.9', '203.0.113.9', true],
      ['fd12:3456::2', '2001:db8::1', true],
      ['192.168.1.20', '192.168.1.1', false],
      ['10.0.0.2', '172.20.0.1', false],
      ['127.0.0.1', '127.0.0.1', false],
      ['::1', '::1', false],
      ['fd00::2', 'fd00::1', false],
      ['fe80::2', 'fe80::1', false],
      ['198.51.100.7', '203.0.113.9', false],
      ['2001:db8::7', '2001:db8:1::1', false],
      ['172.32.0.1', '203.0.113.9', false],
    ];
    for (const [source, host, nat] of cases) {
      const problem = natProblem(source, host);
      assert.equal(problem !== null, nat, `${source} → ${host}`);
      if (problem === null) continue;
      assert.ok(problem.includes(`this host knocks ${host} from ${source}, a private address`), problem);
      assert.match(problem, /--ip ADDRESS/);
      assert.match(problem, /Trust_Knock_IP = yes/);
    }
  });
});

describe('openForProblem: --ip must name one host', () => {
  it('refuses unspecified, multicast, broadcast and IPv4-mapped addresses, and accepts host addresses', () => {
    assert.match(openForProblem('::ffff:192.0.2.1')!, /192\.0\.2\.1 is an IPv4 address written as IPv6: write it as 192\.0\.2\.1/);
    for (const address of ['0.0.0.0', '::', '224.0.0.1', '239.1.2.3', '255.255.255.255', 'ff02::1']) {
      assert.match(openForProblem(address) ?? '', /is not the address of one host/, address);
    }
    for (const address of ['203.0.113.9', '10.0.0.1', '2001:db8::42', '1.0.0.0', '223.255.255.255']) assert.equal(openForProblem(address), null, address);
  });
});

describe('sourceAddressTowards', () => {
  it('is the kernel\'s choice of source address (loopback: loopback)', async () => {
    assert.equal(await sourceAddressTowards({ address: '127.0.0.1', family: 4 }, 40000), '127.0.0.1');
    assert.equal(await sourceAddressTowards({ address: '::1', family: 6 }, 40000), '::1');
  });
});
