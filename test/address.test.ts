import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalIp, canonicalIpv4, canonicalIpv6, cidrContains, cidrSetMatcher, ipv6FromBytes, parseCidr } from '../src/address.js';
import { random } from './random.js';

describe('canonicalIpv4', () => {
  it('accepts dotted quads', () => {
    for (const ip of ['0.0.0.0', '10.66.0.2', '255.255.255.255', '192.0.2.1']) assert.equal(canonicalIpv4(ip), ip);
  });
  it('rejects leading zeros, out-of-range octets and junk', () => {
    for (const bad of ['010.0.0.1', '256.1.1.1', '1.2.3', '1.2.3.4.5', '1..2.3', '1.2.3.4 ', ' 1.2.3.4', 'a.b.c.d', '1.2.3.-4', '', '1.2.3.4;rm']) {
      assert.equal(canonicalIpv4(bad), null, bad);
    }
  });
});

describe('canonicalIpv6 (RFC 5952)', () => {
  const cases: Array<[string, string]> = [
    ['fd66:0000:0000:0000:0000:0000:0000:0002', 'fd66::2'],
    ['2001:0db8:6730:c18f:0000:0000:0000:f6cc', '2001:db8:6730:c18f::f6cc'],
    ['2001:DB8::1', '2001:db8::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['::', '::'],
    ['1::', '1::'],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:1:1:1:1:0:1', '2001:db8:1:1:1:1:0:1'],
    ['fe80::3491:8ff:fe52:dc1e%vks0', 'fe80::3491:8ff:fe52:dc1e'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['::ffff:c000:0201', '::ffff:192.0.2.1'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
  ];
  for (const [input, expected] of cases) {
    it(`${input} → ${expected}`, () => assert.equal(canonicalIpv6(input), expected));
  }
  it('rejects malformed addresses', () => {
    for (const bad of ['1:2:3:4:5:6:7:8:9', '1::2::3', 'g::1', '12345::1', ':1', '1:', '1:2:3:4:5:6:7', '::1.2.3', '$(id)::1', '1:2:3:4:5:6:7::8']) {
      assert.equal(canonicalIpv6(bad), null, bad);
    }
  });
  it("reads the kernel's fully expanded form exactly as the general parser reads the same address", () => {
    const next = random(6);
    for (let n = 0; n < 2000; n++) {
      // Zero groups are common, so runs of them (and the choice of which run to compress) get exercised.
      const groups = Array.from({ length: 8 }, () => (next() < 0.4 ? 0 : Math.floor(next() * 65536)));
      const bytes = new Uint8Array(groups.flatMap((g) => [g >> 8, g & 255]));
      const expanded = groups.map((g) => g.toString(16).padStart(4, '0')).join(':');
      const shouted = next() < 0.5 ? expanded.toUpperCase() : expanded;
      assert.equal(canonicalIpv6(shouted), ipv6FromBytes(bytes, 0), shouted);
      assert.equal(canonicalIpv6(groups.map((g) => g.toString(16)).join(':')), ipv6FromBytes(bytes, 0), expanded);
      const at = Math.floor(next() * 39);
      const broken = expanded.slice(0, at) + (expanded[at] === ':' ? '0' : 'g') + expanded.slice(at + 1);
      assert.equal(canonicalIpv6(broken), null, broken);
    }
    assert.equal(canonicalIpv6('fe80:0000:0000:0000:0000:0000:0000:0001'), 'fe80::1');
    assert.equal(canonicalIpv6('fe80::3491:8ff:fe52:dc1e%vks01234567890'), 'fe80::3491:8ff:fe52:dc1e'); // 39 characters, not expanded
  });
  it('agrees with bytes', () => {
    const bytes = new Uint8Array(16);
    bytes[0] = 0xfd;
    bytes[1] = 0x66;
    bytes[15] = 2;
    assert.equal(ipv6FromBytes(bytes, 0), 'fd66::2');
  });
});

describe('canonicalIp', () => {
  it('routes by family', () => {
    assert.equal(canonicalIp('10.66.0.2'), '10.66.0.2');
    assert.equal(canonicalIp('FD66::0002'), 'fd66::2');
    assert.equal(canonicalIp('example.com'), null);
  });
});

describe('CIDR', () => {
  it('parses and normalises networks', () => {
    assert.equal(parseCidr('192.0.2.77/24').text, '192.0.2.0/24');
    assert.equal(parseCidr('10.0.0.1').text, '10.0.0.1/32');
    assert.equal(parseCidr('2001:db8::1/32').text, '2001:db8::/32');
    assert.equal(parseCidr('0.0.0.0/0').text, '0.0.0.0/0');
  });
  it('rejects bad prefixes and addresses', () => {
    assert.throws(() => parseCidr('10.0.0.0/33'), /prefix/);
    assert.throws(() => parseCidr('2001:db8::/129'), /prefix/);
    assert.throws(() => parseCidr('10.0.0/8'), /not an IPv4 or IPv6/);
    assert.throws(() => parseCidr('10.0.0.0/x'), /prefix/);
  });
  it('matches addresses of its own family only', () => {
    const v4 = parseCidr('192.0.2.0/25');
    assert.equal(cidrContains(v4, '192.0.2.127'), true);
    assert.equal(cidrContains(v4, '192.0.2.128'), false);
    assert.equal(cidrContains(v4, '::ffff:192.0.2.1'), false);
    const v6 = parseCidr('fd66::/16');
    assert.equal(cidrContains(v6, 'fd66::2'), true);
    assert.equal(cidrContains(v6, 'fd67::2'), false);
    assert.equal(cidrContains(v6, '10.0.0.1'), false);
    assert.equal(cidrContains(parseCidr('0.0.0.0/0'), '203.0.113.9'), true);
    assert.equal(cidrContains(parseCidr('2001:db8:8000::/33'), '2001:db8:8000::1'), true);
    assert.equal(cidrContains(parseCidr('2001:db8:8000::/33'), '2001:db8:7fff::1'), false);
  });
  it('matches a set of ranges of both families, also when the same address is asked again', () => {
    const allowed = cidrSetMatcher(['192.0.2.0/24', '10.0.0.0/8', '2001:db8::/32'].map(parseCidr));
    const cases: Array<[string, boolean]> = [
      ['192.0.2.9', true], ['192.0.2.9', true], ['192.0.3.9', false], ['10.255.0.1', true], ['2001:db8:1::7', true],
      ['2001:db9::7', false], ['2001:db9::7', false], ['192.0.2.9', true], ['::ffff:192.0.2.9', false],
    ];
    for (const [ip, expected] of cases) assert.equal(allowed(ip), expected, ip);
    assert.equal(cidrSetMatcher([])('192.0.2.9'), false);
  });
});
