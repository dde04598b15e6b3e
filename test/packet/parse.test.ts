import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonicalIp } from '../../src/address.js';
import { emptyPacketFields, type PacketFields, packetParser, UnsupportedLinkTypeError } from '../../src/packet/parse.js';
import { buildPacket, type Ipv6Extension, LINK_TYPES, type Link, type PacketSpec, random } from './gen.js';

const SEED = 0x6b6e6f63;
const ALL_LINKS: Link[] = ['ethernet', 'sll', 'sll2', 'raw', 'raw-ipv4', 'raw-ipv6', 'null-le', 'null-be', 'loop'];
const TAGGABLE: ReadonlySet<Link> = new Set(['ethernet', 'sll', 'sll2']);
const VLAN_TPIDS = [0x8100, 0x88a8, 0x9100];
const AF_INET6_VALUES = [10, 24, 28, 30];

/** What a parse tells about a packet (where its addresses sit in the buffer is internal). */
type Expected = Omit<PacketFields, 'family' | 'addressAt'>;

function reported({ family: _family, addressAt: _addressAt, ...fields }: PacketFields): Expected {
  return fields;
}

function parse(link: Link, bytes: Uint8Array, length = bytes.length): Expected | null {
  const out = emptyPacketFields();
  return packetParser(LINK_TYPES[link])(bytes, 0, length, out) ? reported(out) : null;
}

function tcp(overrides: Partial<PacketSpec> = {}): PacketSpec {
  return { link: 'ethernet', src: '192.0.2.7', dst: '198.51.100.1', proto: 'tcp', sport: 40001, dport: 7000, flags: 0x02, ...overrides };
}

function fieldsOf(spec: PacketSpec): Expected {
  return {
    src: canonicalIp(spec.src)!,
    dst: canonicalIp(spec.dst)!,
    proto: spec.proto as 'tcp' | 'udp',
    sport: spec.sport ?? 40000,
    dport: spec.dport ?? 7000,
    flags: spec.proto === 'tcp' ? (spec.flags ?? 0x02) : 0,
    ifindex: spec.link === 'sll2' ? (spec.ifindex ?? 2) : -1,
  };
}

/** A random packet and what the parser must say about it (null = not a TCP/UDP knock). */
function randomPacket(next: () => number): { spec: PacketSpec; expected: Expected | null } {
  const int = (n: number): number => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)];
  const link = pick(ALL_LINKS);
  const v6 = link === 'raw-ipv6' ? true : link === 'raw-ipv4' ? false : next() < 0.5;
  const address = (): string => {
    if (!v6) return [int(256), int(256), int(256), int(256)].join('.');
    const groups = Array.from({ length: 8 }, () => (next() < 0.3 ? 0 : int(65536)));
    if (next() < 0.1) groups.splice(0, 6, 0, 0, 0, 0, 0, 0xffff);
    return groups.map((g) => g.toString(16).padStart(4, '0')).join(':');
  };
  const roll = next();
  const proto: PacketSpec['proto'] = roll < 0.45 ? 'tcp' : roll < 0.9 ? 'udp' : roll < 0.95 ? 'icmp' : 'esp';
  const spec: PacketSpec = {
    link,
    src: address(),
    dst: address(),
    proto,
    sport: int(65536),
    dport: int(65536),
    flags: int(256),
    payload: int(24),
  };
  if (TAGGABLE.has(link) && next() < 0.4) spec.vlan = Array.from({ length: 1 + int(3) }, () => pick(VLAN_TPIDS));
  if (TAGGABLE.has(link) && next() < 0.25) spec.pppoe = true;
  if (link === 'sll2') spec.ifindex = int(2 ** 32);
  if (link === 'null-le' || link === 'null-be' || link === 'loop') spec.af6 = pick(AF_INET6_VALUES);
  if (proto === 'tcp' && next() < 0.5) spec.tcpOptions = Array.from({ length: int(41) }, () => int(256));
  let later = false;
  if (!v6) {
    if (next() < 0.3) spec.ipv4Options = 4 * int(11);
    if (next() < 0.1) {
      spec.fragmentOffset = 1 + int(8000);
      later = true;
    }
  } else if (next() < 0.5) {
    spec.ipv6Extensions = Array.from({ length: 1 + int(4) }, (): Ipv6Extension => {
      const kind = pick(['hop', 'routing', 'dest', 'frag', 'ah'] as const);
      if (kind === 'frag') {
        const offset = next() < 0.8 ? 0 : 1 + int(8000);
        if (offset !== 0) later = true;
        return { kind, offset };
      }
      return { kind, units: int(4) };
    });
  }
  const knock = (proto === 'tcp' || proto === 'udp') && !later;
  return { spec, expected: knock ? fieldsOf(spec) : null };
}

describe('packet parser', () => {
  test('every link type: exact fields of TCP and UDP packets, IPv4 and IPv6', () => {
    for (const link of ALL_LINKS) {
      for (const [src, dst] of [
        ['10.66.0.2', '10.66.0.1'],
        ['fd66:0000:0000:0000:0000:0000:0000:0002', 'FD66::1'],
      ]) {
        const v6 = src.includes(':');
        if ((link === 'raw-ipv4' && v6) || (link === 'raw-ipv6' && !v6)) continue;
        for (const spec of [tcp({ link, src, dst, flags: 0x12 }), { ...tcp({ link, src, dst }), proto: 'udp' as const, dport: 8000 }]) {
          assert.deepEqual(parse(link, buildPacket(spec).bytes), fieldsOf(spec), `${link} ${spec.proto} ${src}`);
        }
      }
    }
    assert.equal(parse('raw-ipv4', buildPacket(tcp({ link: 'raw-ipv4', src: 'fd66::2', dst: 'fd66::1' })).bytes), null, 'IPv6 under the IPv4-only link type');
  });

  test('all eight TCP flag bits are reported, options never parsed', () => {
    for (let flags = 0; flags < 256; flags++) {
      assert.equal(parse('ethernet', buildPacket(tcp({ flags })).bytes)?.flags, flags);
    }
    const crafted: Array<[string, number[]]> = [
      // The SYN that sends pcap.decode into an endless loop: option kind 254 with length 0.
      ['option 254 length 0', [254, 0, 1, 1]],
      ['MPTCP MP_CAPABLE (30)', [2, 4, 5, 0xb4, 30, 12, 0, 0x81, 1, 2, 3, 4, 5, 6, 7, 8]],
      ['TCP Fast Open cookie (34)', [2, 4, 5, 0xb4, 34, 10, 1, 2, 3, 4, 5, 6, 7, 8]],
      ['option length beyond header', [8, 200]],
    ];
    for (const [name, tcpOptions] of crafted) {
      for (const src of ['10.0.0.2', '2001:db8::2']) {
        const spec = tcp({ src, dst: src.includes(':') ? '2001:db8::1' : '10.0.0.1', tcpOptions });
        assert.deepEqual(parse('ethernet', buildPacket(spec).bytes), fieldsOf(spec), name);
      }
    }
  });

  test('IPv4 header length: options skipped, bad IHL rejected', () => {
    const withOptions = tcp({ ipv4Options: 40 });
    assert.deepEqual(parse('ethernet', buildPacket(withOptions).bytes), fieldsOf(withOptions));
    const ihlAt = 14;
    for (let ihl = 0; ihl < 5; ihl++) {
      const bytes = buildPacket(tcp()).bytes;
      bytes[ihlAt] = 0x40 | ihl;
      assert.equal(parse('ethernet', bytes), null, `IHL ${ihl}`);
    }
    const bytes = buildPacket(tcp()).bytes;
    bytes[ihlAt] = 0x4f; // 60 bytes of header, but the datagram is 40
    assert.equal(parse('ethernet', bytes), null, 'IHL beyond total length');
    for (const totalLength of [0, 19, 39]) {
      const short = buildPacket(tcp()).bytes;
      short[ihlAt + 2] = 0;
      short[ihlAt + 3] = totalLength;
      assert.equal(parse('ethernet', short), null, `total length ${totalLength}`);
    }
    const wrongVersion = buildPacket(tcp()).bytes;
    wrongVersion[ihlAt] = 0x55;
    assert.equal(parse('ethernet', wrongVersion), null, 'version 5');
  });

  test('TCP data offset is validated against the datagram, not against a snapped capture', () => {
    const offsetAt = 14 + 20 + 12;
    for (let words = 0; words < 5; words++) {
      const bytes = buildPacket(tcp()).bytes;
      bytes[offsetAt] = words << 4;
      assert.equal(parse('ethernet', bytes), null, `data offset ${words * 4}`);
    }
    const beyond = buildPacket(tcp()).bytes;
    beyond[offsetAt] = 15 << 4;
    assert.equal(parse('ethernet', beyond), null, 'data offset past the datagram');
    const spec = tcp({ tcpOptions: new Array(40).fill(1) });
    const snapped = buildPacket(spec);
    assert.deepEqual(parse('ethernet', snapped.bytes, snapped.transportOffset + 20), fieldsOf(spec), 'options cut by the snap length');
  });

  test('fragments: first parsed, later ones skipped (IPv4 and IPv6)', () => {
    const first = buildPacket(tcp()).bytes;
    first[14 + 6] = 0x20; // More Fragments, offset 0
    assert.deepEqual(parse('ethernet', first), fieldsOf(tcp()));
    assert.equal(parse('ethernet', buildPacket(tcp({ fragmentOffset: 185 })).bytes), null);
    const v6 = { src: '2001:db8::2', dst: '2001:db8::1' };
    const firstV6 = tcp({ ...v6, ipv6Extensions: [{ kind: 'frag', offset: 0 }] });
    assert.deepEqual(parse('ethernet', buildPacket(firstV6).bytes), fieldsOf(firstV6));
    assert.equal(parse('ethernet', buildPacket(tcp({ ...v6, ipv6Extensions: [{ kind: 'frag', offset: 100 }] })).bytes), null);
  });

  test('IPv6 extension headers: walked, bounded, bad lengths rejected, ESP and no-next-header stop', () => {
    const v6 = { src: '2001:db8::2', dst: '2001:db8::1' };
    const chain: Ipv6Extension[] = [
      { kind: 'hop', units: 0 },
      { kind: 'dest', units: 2 },
      { kind: 'routing', units: 1 },
      { kind: 'frag', offset: 0 },
      { kind: 'ah', units: 4 },
      { kind: 'dest', units: 0 },
    ];
    const spec = tcp({ ...v6, ipv6Extensions: chain });
    assert.deepEqual(parse('ethernet', buildPacket(spec).bytes), fieldsOf(spec));
    const eight = tcp({ ...v6, ipv6Extensions: Array.from({ length: 8 }, () => ({ kind: 'dest' as const, units: 0 })) });
    assert.deepEqual(parse('ethernet', buildPacket(eight).bytes), fieldsOf(eight), 'eight extension headers');
    const nine = tcp({ ...v6, ipv6Extensions: Array.from({ length: 9 }, () => ({ kind: 'dest' as const, units: 0 })) });
    assert.equal(parse('ethernet', buildPacket(nine).bytes), null, 'more extension headers than the bound');
    const overlong = buildPacket(tcp({ ...v6, ipv6Extensions: [{ kind: 'hop', units: 0 }] })).bytes;
    overlong[14 + 40 + 1] = 255; // hop-by-hop claims 2048 bytes
    assert.equal(parse('ethernet', overlong), null, 'extension header length past the end');
    assert.equal(parse('ethernet', buildPacket({ ...tcp(v6), proto: 'esp' }).bytes), null, 'ESP');
    const noNext = buildPacket(tcp(v6)).bytes;
    noNext[14 + 6] = 59;
    assert.equal(parse('ethernet', noNext), null, 'no next header');
    const jumbo = buildPacket({ ...tcp(v6), proto: 'udp' }).bytes;
    jumbo[14 + 4] = 0;
    jumbo[14 + 5] = 0;
    assert.deepEqual(parse('ethernet', jumbo), fieldsOf({ ...tcp(v6), proto: 'udp' }), 'payload length 0 (jumbogram): bounded by the capture');
  });

  test('VLAN stacks of any depth; non-IP frames skipped', () => {
    const deep = tcp({ vlan: Array.from({ length: 40 }, (_, i) => VLAN_TPIDS[i % 3]) });
    const built = buildPacket(deep);
    assert.deepEqual(parse('ethernet', built.bytes), fieldsOf(deep));
    assert.equal(parse('ethernet', built.bytes, 14 + 4 * 20), null, 'cut inside the tags');
    for (const link of ['sll', 'sll2'] as const) {
      const spec = tcp({ link, vlan: [0x8100], ifindex: 7 });
      assert.deepEqual(parse(link, buildPacket(spec).bytes), fieldsOf(spec));
    }
    const arp = Uint8Array.from([...new Array(12).fill(2), 0x08, 0x06, ...new Array(28).fill(0)]);
    assert.equal(parse('ethernet', arp), null, 'ARP');
    assert.equal(parse('ethernet', buildPacket({ ...tcp(), proto: 'icmp' }).bytes), null, 'ICMP');
  });

  test('PPPoE sessions: IPv4 and IPv6 behind the PPPoE header, also VLAN-tagged and in cooked captures', () => {
    for (const link of ['ethernet', 'sll', 'sll2'] as const) {
      for (const [src, dst] of [['192.0.2.7', '198.51.100.1'], ['2001:db8::7', '2001:db8:1::1']]) {
        for (const spec of [tcp({ link, src, dst, pppoe: true }), { ...tcp({ link, src, dst, pppoe: true, vlan: [0x8100] }), proto: 'udp' as const }]) {
          assert.deepEqual(parse(link, buildPacket(spec).bytes), fieldsOf(spec), `${link} ${JSON.stringify(spec)}`);
        }
      }
    }
    // Ethernet pads short frames to 60 bytes: the PPPoE payload length (and the IP length) end the datagram.
    const udp = { ...tcp({ pppoe: true }), proto: 'udp' as const };
    const padded = Uint8Array.from([...buildPacket(udp).bytes, ...new Array(20).fill(0xee)]);
    assert.deepEqual(parse('ethernet', padded), fieldsOf(udp));
  });

  test('PPPoE: crafted and truncated headers are refused, never misread', () => {
    const built = buildPacket(tcp({ pppoe: true })).bytes;
    const at = 14; // PPPoE header after the Ethernet header
    const changed = (edit: (bytes: Uint8Array) => void): Uint8Array => {
      const bytes = Uint8Array.from(built);
      edit(bytes);
      return bytes;
    };
    assert.deepEqual(parse('ethernet', built), fieldsOf(tcp({ pppoe: true })));
    const cases: Array<[string, Uint8Array, number?]> = [
      ['version 2', changed((b) => (b[at] = 0x21))],
      ['type 2', changed((b) => (b[at] = 0x12))],
      ['discovery code PADI (0x09)', changed((b) => (b[at + 1] = 0x09))],
      ['discovery ethertype 0x8863', changed((b) => (b[13] = 0x63))],
      ['payload length 0', changed((b) => ((b[at + 4] = 0), (b[at + 5] = 0)))],
      ['payload length 1', changed((b) => ((b[at + 4] = 0), (b[at + 5] = 1)))],
      ['payload length cuts the TCP header', changed((b) => ((b[at + 4] = 0), (b[at + 5] = 2 + 20 + 10)))],
      ['LCP (0xc021), not IP', changed((b) => ((b[at + 6] = 0xc0), (b[at + 7] = 0x21)))],
      ['compressed protocol field (one byte 0x21)', Uint8Array.from([...built.subarray(0, at + 6), 0x21, ...built.subarray(at + 8)])],
      ['IPv6 protocol number on an IPv4 datagram', changed((b) => (b[at + 7] = 0x57))],
      ['cut inside the PPPoE header', built, at + 5],
      ['cut after the PPP protocol', built, at + 8],
    ];
    for (const [name, bytes, length] of cases) assert.equal(parse('ethernet', bytes, length ?? bytes.length), null, name);
    // A payload length beyond the captured bytes is a snapped capture: the capture bounds the reads.
    const long = changed((b) => ((b[at + 4] = 0xff), (b[at + 5] = 0xff)));
    assert.deepEqual(parse('ethernet', long), fieldsOf(tcp({ pppoe: true })));
  });

  test('BSD loopback: AF_INET6 as 10, 24, 28 or 30, in host or network byte order', () => {
    for (const link of ['null-le', 'null-be', 'loop'] as const) {
      for (const af6 of AF_INET6_VALUES) {
        const spec = tcp({ link, af6, src: 'fd00::2', dst: 'fd00::1' });
        assert.deepEqual(parse(link, buildPacket(spec).bytes), fieldsOf(spec), `${link} AF ${af6}`);
      }
    }
    const bytes = buildPacket(tcp({ link: 'null-le' })).bytes;
    bytes[0] = 99;
    assert.equal(parse('null-le', bytes), null, 'unknown address family');
    bytes[0] = 2;
    bytes[3] = 2;
    assert.equal(parse('null-le', bytes), null, 'family in both byte orders');
  });

  test('an unsupported link type is an error when the parser is made, naming the type', () => {
    assert.throws(() => packetParser(127), (error: unknown) => error instanceof UnsupportedLinkTypeError && /Wi-Fi monitor mode.*127.*supported: Ethernet/.test(error.message));
    assert.throws(() => packetParser(147), /link type 147 \(147\) is not a link type knocktail can parse/);
    for (const linkType of [0, 1, 12, 14, 101, 108, 113, 228, 229, 276]) assert.equal(typeof packetParser(linkType), 'function');
  });

  test('fuzz: random packets give their exact fields, every truncation is handled, mutations never throw', { timeout: 120_000 }, () => {
    const next = random(SEED);
    const out = emptyPacketFields();
    const samples: Array<{ link: Link; bytes: Uint8Array }> = [];
    for (let i = 0; i < 30_000; i++) {
      const { spec, expected } = randomPacket(next);
      const { bytes, transportOffset } = buildPacket(spec);
      const parser = packetParser(LINK_TYPES[spec.link]);
      const ok = parser(bytes, 0, bytes.length, out);
      assert.equal(ok, expected !== null, `packet ${i}: ${JSON.stringify(spec)}`);
      if (expected !== null) assert.deepEqual(reported(out), expected, `packet ${i}: ${JSON.stringify(spec)}`);
      samples.push({ link: spec.link, bytes });
      if (i % 10 !== 0) continue;
      // Every captured length: the fields appear exactly when the transport header is complete.
      const needed = transportOffset + (spec.proto === 'tcp' ? 20 : 8);
      for (let length = 0; length < bytes.length; length++) {
        const truncatedOk = parser(bytes, 0, length, out);
        assert.equal(truncatedOk, expected !== null && length >= needed, `packet ${i} cut at ${length}: ${JSON.stringify(spec)}`);
        if (truncatedOk) assert.deepEqual(reported(out), expected);
      }
    }
    // Mutations: random bytes overwritten (often the length, offset and next-header fields), random capture lengths.
    const outcomes = { accepted: 0, rejected: 0 };
    for (let i = 0; i < 60_000; i++) {
      const { link, bytes } = samples[Math.floor(next() * samples.length)];
      const mutated = Uint8Array.from(bytes);
      const changes = 1 + Math.floor(next() * 4);
      for (let c = 0; c < changes; c++) mutated[Math.floor(next() * mutated.length)] = Math.floor(next() * 256);
      const length = next() < 0.5 ? mutated.length : Math.floor(next() * (mutated.length + 1));
      const ok = packetParser(LINK_TYPES[link])(mutated, 0, length, out);
      outcomes[ok ? 'accepted' : 'rejected']++;
      if (!ok) continue;
      assert.ok(out.proto === 'tcp' || out.proto === 'udp');
      assert.ok(Number.isInteger(out.sport) && out.sport >= 0 && out.sport <= 65535);
      assert.ok(Number.isInteger(out.dport) && out.dport >= 0 && out.dport <= 65535);
      assert.ok(Number.isInteger(out.flags) && out.flags >= 0 && out.flags <= 255 && (out.proto === 'tcp' || out.flags === 0));
      assert.equal(canonicalIp(out.src), out.src);
      assert.equal(canonicalIp(out.dst), out.dst);
    }
    // The checks above only bite on packets the parser accepts: the mutations must give plenty of both outcomes.
    assert.ok(outcomes.accepted >= 6000 && outcomes.rejected >= 6000, `mutated packets: ${JSON.stringify(outcomes)}`);
  });

  test('reads stay inside [start, end) of a larger buffer', () => {
    const spec = tcp({ src: '2001:db8::2', dst: '2001:db8::1', ipv6Extensions: [{ kind: 'dest', units: 1 }], payload: 10 });
    const { bytes } = buildPacket(spec);
    const padded = new Uint8Array(bytes.length + 200).fill(0xff);
    padded.set(bytes, 100);
    const out = emptyPacketFields();
    assert.equal(packetParser(1)(padded, 100, 100 + bytes.length, out), true);
    assert.deepEqual(reported(out), fieldsOf(spec));
    // Cut one byte short of the transport header: the 0xff bytes after `end` must not be used.
    assert.equal(packetParser(1)(padded, 100, 100 + bytes.length - 1, out), true, 'TCP header still complete');
    assert.equal(packetParser(1)(padded, 100, 100 + 14 + 40 + 16 + 19, out), false);
  });
});
