import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isIpv6 } from '../../src/address.js';
import type { DoorConfig, KnockStep, PortRange } from '../../src/config/types.js';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../src/hit.js';
import { buildCaptureFilter, type LocalAddresses, MATCH_NOTHING_FILTER, sessionFilter } from '../../src/packet/bpf.js';
import type { DoorRange, DoorSequence } from '../../src/watch.js';
import { CaptureFileReader } from '../../src/packet/pcap-file.js';
import { emptyPacketFields, type PacketFields, packetParser } from '../../src/packet/parse.js';
import { doorConfig, fixture, needs, tempDir } from '../helpers.js';
import { buildPacket, type PacketSpec, random, writePcap } from './gen.js';

function door(sequence: string, overrides: Partial<DoorConfig> = {}): DoorSequence {
  const steps: KnockStep[] = sequence.split(',').map((item) => {
    const [port, proto = 'tcp'] = item.split(':');
    return { port: Number(port), proto: proto as KnockStep['proto'] };
  });
  const config = doorConfig({ sequence: steps, startCommand: 'true', ...overrides });
  return { door: config, sequence: steps };
}

/** A rolling or encrypted door's ranges: `rangeDoor('40000-40999,7000-7001:udp')`. */
function rangeDoor(ranges: string, overrides: Partial<DoorConfig> = {}): DoorRange {
  const parsed: PortRange[] = ranges.split(',').map((item) => {
    const [span, proto = 'tcp'] = item.split(':');
    const [first, last = first] = span!.split('-').map(Number);
    return { proto: proto as PortRange['proto'], first: first!, last: last! };
  });
  return { door: doorConfig({ sequence: [], startCommand: 'true', ...overrides }), ranges: parsed };
}

const SERVER: LocalAddresses = { v4: ['10.66.0.1'], v6: ['fd66::1'] };
const IPV6_EXTENSIONS = 'ip6[6] == 0 or ip6[6] == 43 or ip6[6] == 44 or ip6[6] == 60 or ip6[6] == 51';
const both = { ipv4Only: false };

describe('capture filter', () => {
  test('one clause per destination set: ports merged and sorted, flags on IPv4 TCP, IPv6 by port plus extension headers', () => {
    const filter = buildCaptureFilter(
      [door('9000,7000,8000', { tcpFlags: { set: TCP_SYN, clear: TCP_ACK } }), door('2222:udp,3333:tcp,4444:udp'), door('8000,9000,9000', { tcpFlags: { set: TCP_SYN, clear: TCP_ACK } })],
      SERVER,
      both,
    );
    assert.equal(
      filter,
      '(dst host 10.66.0.1 and ((tcp dst port (7000 or 8000 or 9000) and tcp[tcpflags] & 0x12 == 0x02) or udp dst port (2222 or 4444) or tcp dst port 3333)) or ' +
        `(dst host fd66::1 and (tcp dst port (3333 or 7000 or 8000 or 9000) or udp dst port (2222 or 4444) or ${IPV6_EXTENSIONS}))`,
    );
  });

  test('runs of three or more ports become a portrange; several local addresses share one clause', () => {
    const filter = buildCaptureFilter([door('1000,1001,1002,1003,1005,1007,1008')], { v4: ['192.0.2.1', '192.0.2.9'], v6: [] }, both);
    assert.equal(filter, '(dst host (192.0.2.1 or 192.0.2.9) and (tcp dst port (1005 or 1007 or 1008) or tcp dst portrange 1000-1003))');
  });

  test('Target: only in its own family (knockd also put IPv4 targets into the IPv6 filter); local addresses irrelevant', () => {
    assert.equal(
      buildCaptureFilter([door('1000,2000', { target: '10.88.0.50' }), door('3000', { target: 'fd00::50' })], SERVER, both),
      `(dst host 10.88.0.50 and tcp dst port (1000 or 2000)) or (dst host fd00::50 and (tcp dst port 3000 or ${IPV6_EXTENSIONS}))`,
    );
  });

  test('IPv4 only; any destination; no address of a family; nothing to knock', () => {
    assert.equal(buildCaptureFilter([door('7000:udp')], SERVER, { ipv4Only: true }), '(dst host 10.66.0.1 and udp dst port 7000)');
    assert.equal(buildCaptureFilter([door('7000:udp', { target: 'fd00::50' })], SERVER, { ipv4Only: true }), MATCH_NOTHING_FILTER);
    assert.equal(
      buildCaptureFilter([door('7000', { tcpFlags: { set: TCP_SYN, clear: 0 } })], null, both),
      `(ip and (tcp dst port 7000 and tcp[tcpflags] & 0x02 == 0x02)) or (ip6 and (tcp dst port 7000 or ${IPV6_EXTENSIONS}))`,
    );
    assert.equal(buildCaptureFilter([door('7000')], { v4: ['10.0.0.1'], v6: [] }, both), '(dst host 10.0.0.1 and tcp dst port 7000)');
    assert.equal(buildCaptureFilter([door('7000')], { v4: [], v6: [] }, both), MATCH_NOTHING_FILTER);
    assert.equal(buildCaptureFilter([], SERVER, both), MATCH_NOTHING_FILTER);
    // A used-up one-time door has no current sequence.
    assert.equal(buildCaptureFilter([{ door: door('7000').door, sequence: [] }], SERVER, both), MATCH_NOTHING_FILTER);
  });

  test('a range door\'s ranges are portranges, merged with overlapping and adjacent ranges and ports of other doors', () => {
    assert.equal(buildCaptureFilter([rangeDoor('40000-40999')], null, { ipv4Only: true }), '(ip and tcp dst portrange 40000-40999)');
    assert.equal(
      buildCaptureFilter([rangeDoor('40000-40999,40000-41023:udp'), rangeDoor('40500-41500'), door('39999,7000,41502'), rangeDoor('7001-7001:udp')], SERVER, { ipv4Only: true }),
      '(dst host 10.66.0.1 and ((tcp dst port (7000 or 41502) or tcp dst portrange 39999-41500) or (udp dst port 7001 or udp dst portrange 40000-41023)))',
    );
    assert.equal(
      buildCaptureFilter([rangeDoor('50000-50255', { tcpFlags: { set: TCP_SYN, clear: TCP_ACK } })], SERVER, both),
      `(dst host 10.66.0.1 and (tcp dst portrange 50000-50255 and tcp[tcpflags] & 0x12 == 0x02)) or (dst host fd66::1 and (tcp dst portrange 50000-50255 or ${IPV6_EXTENSIONS}))`,
    );
    assert.equal(buildCaptureFilter([rangeDoor('1-65535')], null, { ipv4Only: true }), '(ip and tcp dst portrange 1-65535)', 'a whole protocol is one clause, not 65535 ports');
  });

  test('doors with different flag rules keep separate TCP clauses', () => {
    const filter = buildCaptureFilter(
      [door('7000', { tcpFlags: { set: TCP_FIN, clear: 0 } }), door('8000', { tcpFlags: { set: 0, clear: TCP_RST } }), door('9000')],
      { v4: ['10.0.0.1'], v6: [] },
      both,
    );
    assert.equal(filter, '(dst host 10.0.0.1 and ((tcp dst port 7000 and tcp[tcpflags] & 0x01 == 0x01) or (tcp dst port 8000 and tcp[tcpflags] & 0x04 == 0x00) or tcp dst port 9000))');
  });

  test('a named interface\'s session also takes PPPoE frames (pppoes last); `any` and the match-nothing filter stay as they are', () => {
    const filter = buildCaptureFilter([door('7000:udp')], { v4: ['192.0.2.1'], v6: [] }, both);
    assert.equal(sessionFilter(filter, 'eth0'), `(${filter}) or (pppoes and (${filter}))`);
    assert.equal(sessionFilter(filter, 'any'), filter);
    assert.equal(sessionFilter(MATCH_NOTHING_FILTER, 'eth0'), MATCH_NOTHING_FILTER);
    assert.equal(sessionFilter('', 'eth0'), '', 'no filter yet (status before the first capture)');
  });
});

/** Runs tcpdump; returns its result. */
function tcpdump(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('tcpdump', args, { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

interface Captured {
  micros: number;
  fields: PacketFields | null;
}

async function packetsOf(path: string): Promise<Captured[]> {
  const reader = await CaptureFileReader.open(path);
  const out: Captured[] = [];
  await reader.read((p) => {
    const fields = emptyPacketFields();
    const ok = packetParser(p.interface.linkType)(p.buffer, p.offset, p.offset + p.capturedLength, fields);
    out.push({ micros: Math.round(p.time * 1000), fields: ok ? fields : null });
  });
  return out;
}

/**
 * What the filter must let through: TCP/UDP to a door's destination on one of its ports, and for IPv4 TCP
 * with its flags (knockd's visibility rule); IPv6 flags are left to the matcher.
 */
function needed(fields: PacketFields | null, doors: Array<DoorSequence | DoorRange>, local: LocalAddresses | null, ipv4Only: boolean): boolean {
  if (fields === null) return false;
  const v6 = isIpv6(fields.dst);
  if (v6 && ipv4Only) return false;
  return doors.some((watched) => {
    const d = watched.door;
    const destinationOk = d.target !== null ? d.target === fields.dst : local === null || (v6 ? local.v6 : local.v4).includes(fields.dst);
    const stepOk =
      'ranges' in watched
        ? watched.ranges.some((range) => range.proto === fields.proto && fields.dport >= range.first && fields.dport <= range.last)
        : watched.sequence.some((step) => step.proto === fields.proto && step.port === fields.dport);
    const { set, clear } = d.tcpFlags;
    const flagsOk = fields.proto !== 'tcp' || v6 || (fields.flags & (set | clear)) === set;
    return destinationOk && stepOk && flagsOk;
  });
}

const skipTcpdump = needs({ tools: ['tcpdump'] });

describe('capture filter, checked with libpcap', { skip: skipTcpdump }, () => {
  const SCENARIOS: Array<{ name: string; doors: Array<DoorSequence | DoorRange>; local: LocalAddresses | null; ipv4Only: boolean }> = [
    {
      name: 'S1 SYN, S2 UDP, S3 mixed on the server addresses',
      doors: [door('7000,8000,9000', { tcpFlags: { set: TCP_SYN, clear: 0 } }), door('7000:udp,8000:udp,9000:udp'), door('2222:udp,3333,4444:udp')],
      local: SERVER,
      ipv4Only: false,
    },
    { name: 'syn,!ack (drops SYN+ACK)', doors: [door('7000,8000,9000', { tcpFlags: { set: TCP_SYN, clear: TCP_ACK } })], local: SERVER, ipv4Only: false },
    { name: 'no TCPFlags: every segment to a door port', doors: [door('7000,8000,9000')], local: SERVER, ipv4Only: true },
    { name: 'any destination', doors: [door('7000,9000,22')], local: null, ipv4Only: false },
    { name: 'Target door plus a door on local addresses', doors: [door('7000', { target: '10.66.0.2' }), door('5555,6666:udp,7001', { target: 'fd66::1' })], local: SERVER, ipv4Only: false },
    { name: 'no doors', doors: [], local: SERVER, ipv4Only: false },
    {
      name: 'range doors (rolling, encrypted) beside a fixed door',
      doors: [rangeDoor('7000-8000', { tcpFlags: { set: TCP_SYN, clear: TCP_ACK } }), rangeDoor('8500-9500:udp,2000-2300'), door('9000,22')],
      local: SERVER,
      ipv4Only: false,
    },
    { name: 'a range door on any destination', doors: [rangeDoor('1-8999')], local: null, ipv4Only: false },
  ];
  const FILES = ['knocks', 'knocks6', 'knocks-any', 'knocks-any-sll', 'loopback', 'ufw-knocks'];

  for (const scenario of SCENARIOS) {
    test(`${scenario.name}: libpcap accepts exactly the packets the doors need, in every fixture pcap`, async () => {
      const filter = buildCaptureFilter(scenario.doors, scenario.local, { ipv4Only: scenario.ipv4Only });
      const dir = tempDir();
      let total = 0;
      for (const name of FILES) {
        const input = fixture('real', `${name}.pcap`);
        const output = join(dir, `${name}.pcap`);
        const result = tcpdump(['-r', input, '-w', output, filter]);
        assert.equal(result.status, 0, `tcpdump rejected ${filter}: ${result.stderr}`);
        const accepted = new Set((await packetsOf(output)).map((p) => p.micros));
        const all = await packetsOf(input);
        const expected = new Set(all.filter((p) => needed(p.fields, scenario.doors, scenario.local, scenario.ipv4Only)).map((p) => p.micros));
        assert.deepEqual([...accepted].sort(), [...expected].sort(), `${name}.pcap with ${filter}`);
        total += expected.size;
      }
      if (scenario.doors.length > 0) assert.ok(total > 0, 'the scenario selects some packets');
    });
  }

  test('IPv6 extension headers: the filter lets them through (a superset), other destinations stay out', async () => {
    const doors = [door('7000,8000', { tcpFlags: { set: TCP_SYN, clear: 0 } })];
    const filter = buildCaptureFilter(doors, SERVER, both);
    const base: PacketSpec = { link: 'ethernet', src: 'fd66::2', dst: 'fd66::1', proto: 'tcp', dport: 7000, flags: TCP_SYN };
    const specs: Array<[PacketSpec, boolean]> = [
      [base, true],
      [{ ...base, ipv6Extensions: [{ kind: 'dest', units: 1 }] }, true],
      [{ ...base, ipv6Extensions: [{ kind: 'hop', units: 0 }, { kind: 'frag', offset: 0 }] }, true],
      [{ ...base, dport: 7001 }, false],
      [{ ...base, dst: 'fd66::9', ipv6Extensions: [{ kind: 'dest', units: 1 }] }, false],
      [{ ...base, src: '10.66.0.2', dst: '10.66.0.1', ipv4Options: 8 }, true],
      [{ ...base, src: '10.66.0.2', dst: '10.66.0.1', flags: TCP_ACK }, false],
    ];
    const dir = tempDir();
    const input = join(dir, 'ext.pcap');
    writeFileSync(input, writePcap({ linkType: 1, packets: specs.map(([spec], i) => ({ time: 1_795_000_000_000 + i, data: buildPacket(spec).bytes })) }));
    const output = join(dir, 'out.pcap');
    const result = tcpdump(['-r', input, '-w', output, filter]);
    assert.equal(result.status, 0, result.stderr);
    const accepted = (await packetsOf(output)).map((p) => p.micros - 1_795_000_000_000_000);
    assert.deepEqual(accepted, specs.flatMap(([, pass], i) => (pass ? [i * 1000] : [])));
    // Every packet that passed is one the matcher can use.
    for (const p of await packetsOf(output)) assert.ok(needed(p.fields, doors, SERVER, false));
  });

  test('PPPoE: a NIC\'s session filter takes exactly the needed packets, plain or in PPPoE session frames; other link types unchanged', async () => {
    const doors = [door('7000,8000:udp', { tcpFlags: { set: TCP_SYN, clear: TCP_ACK } })];
    const local = { v4: ['203.0.113.1'], v6: ['2001:db8::1'] };
    const filter = sessionFilter(buildCaptureFilter(doors, local, both), 'eth0');
    const base: PacketSpec = { link: 'ethernet', src: '198.51.100.7', dst: '203.0.113.1', proto: 'tcp', dport: 7000, flags: TCP_SYN };
    const v6: PacketSpec = { ...base, src: '2001:db8:9::7', dst: '2001:db8::1' };
    const specs: PacketSpec[] = [
      base,
      { ...base, pppoe: true },
      { ...v6, pppoe: true },
      { ...v6, pppoe: true, ipv6Extensions: [{ kind: 'dest', units: 1 }] },
      { ...base, pppoe: true, proto: 'udp', dport: 8000 },
      { ...base, pppoe: true, flags: TCP_SYN | TCP_ACK }, // flags not allowed
      { ...base, pppoe: true, dport: 7001 }, // no door port
      { ...base, pppoe: true, dst: '203.0.113.9' }, // not this host
      { ...base, pppoe: true, proto: 'icmp' },
    ];
    const dir = tempDir();
    for (const link of ['ethernet', 'sll'] as const) {
      const input = join(dir, `${link}.pcap`);
      const output = join(dir, `${link}-out.pcap`);
      writeFileSync(input, writePcap({ linkType: link === 'ethernet' ? 1 : 113, packets: specs.map((spec, i) => ({ time: 1_795_000_000_000 + i, data: buildPacket({ ...spec, link }).bytes })) }));
      const result = tcpdump(['-r', input, '-w', output, filter]);
      assert.equal(result.status, 0, result.stderr);
      const accepted = (await packetsOf(output)).map((p) => p.micros - 1_795_000_000_000_000);
      const expected = (await packetsOf(input)).flatMap((p, i) => (needed(p.fields, doors, local, false) ? [i * 1000] : []));
      assert.deepEqual(accepted, expected, link);
      assert.deepEqual(expected, [0, 1000, 2000, 3000, 4000], `${link}: the plain and the PPPoE knocks`);
    }
    // Raw IP (WireGuard, tun): no PPPoE there; the session filter takes what the plain filter takes.
    const raw = join(dir, 'raw.pcap');
    writeFileSync(raw, writePcap({ linkType: 101, packets: [base, v6, { ...base, dport: 7001 }].map((spec, i) => ({ time: 1_795_000_000_000 + i, data: buildPacket({ ...spec, link: 'raw' }).bytes })) }));
    for (const f of [buildCaptureFilter(doors, local, both), filter]) {
      const out = join(dir, 'raw-out.pcap');
      assert.equal(tcpdump(['-r', raw, '-w', out, f]).status, 0);
      assert.deepEqual((await packetsOf(out)).map((p) => p.micros - 1_795_000_000_000_000), [0, 1000]);
    }
  });

  test('random door sets compile for every supported link type', () => {
    const next = random(0x62706621);
    const dir = tempDir();
    const raw = join(dir, 'raw.pcap');
    writeFileSync(raw, writePcap({ linkType: 101, packets: [] }));
    const files = [fixture('real', 'knocks.pcap'), fixture('real', 'knocks-any-sll.pcap'), fixture('real', 'knocks-any.pcap'), raw];
    const targets = [null, '192.0.2.5', '2001:db8::5'];
    for (let i = 0; i < 25; i++) {
      const doors = Array.from({ length: 1 + Math.floor(next() * 4) }, () => {
        const sequence = Array.from({ length: 1 + Math.floor(next() * 5) }, () => `${1 + Math.floor(next() * 65535)}:${next() < 0.5 ? 'tcp' : 'udp'}`).join(',');
        return door(sequence, {
          target: targets[Math.floor(next() * targets.length)],
          tcpFlags: { set: Math.floor(next() * 256) & 0x3f, clear: 0 },
        });
      });
      for (const d of doors) d.door.tcpFlags.clear = Math.floor(next() * 256) & ~d.door.tcpFlags.set;
      const local = next() < 0.2 ? null : { v4: ['10.0.0.1', '10.0.0.2'].slice(0, 1 + Math.floor(next() * 2)), v6: ['fe80::1', '2001:db8::1'] };
      const plain = buildCaptureFilter(doors, local, { ipv4Only: next() < 0.3 });
      for (const filter of [plain, sessionFilter(plain, 'eth0')]) {
        for (const file of files) {
          const result = tcpdump(['-r', file, '-d', filter]);
          assert.equal(result.status, 0, `${file}: ${filter}\n${result.stderr}`);
          assert.match(result.stdout, /^\(000\)/);
        }
      }
    }
    assert.equal(tcpdump(['-r', files[0], '-d', MATCH_NOTHING_FILTER]).status, 0);
  });
});
