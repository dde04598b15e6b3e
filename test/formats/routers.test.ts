/**
 * The router and firewall formats (filterlog, mikrotik, openwrt, vyos, firewalld) on the lines of
 * fixtures/formats/routers/ (real lines; the README there says where each comes from), and on variants a forger
 * or a stray line would produce. Lines built here from a vendor's documented layout say so.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { canonicalIp } from '../../src/address.js';
import { CompiledFormat, Outcome } from '../../src/formats/logformat.js';
import { FormatRegistry, LineDecoder } from '../../src/formats/registry.js';
import { type KnockHit, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN } from '../../src/hit.js';
import { fixture, timeZoneForEachTest } from '../helpers.js';
import { hitOf } from './support.js';

timeZoneForEachTest('UTC');

const registry = FormatRegistry.load(null);
const ctx = { input: 'test', reference: Date.parse('2026-12-31T12:00:00Z'), bootTime: 0, fallbackTime: 0, arrival: null };

function lines(...path: string[]): string[] {
  return readFileSync(fixture('formats', 'routers', ...path), 'utf8').split('\n').filter((line) => line !== '');
}

/** Decodes each line with one format; the hit (or null) and the outcome per line. */
function decodeAll(format: string, input: readonly string[]): Array<{ hit: KnockHit | null; outcome: Outcome; reason: string }> {
  const decoder = new LineDecoder([registry.get(format)]);
  return input.map((line) => {
    const decoded = decoder.decode(line, ctx);
    return { hit: hitOf(decoded), outcome: decoded.outcome, reason: decoded.outcome === Outcome.Missed ? decoded.reason : '' };
  });
}

function decodeOne(format: string, line: string): KnockHit | null {
  return decodeAll(format, [line])[0]!.hit;
}

/** The fields of a hit that a log line states (time checked separately). */
function packet(hit: KnockHit | null): Omit<KnockHit, 'time' | 'input'> | null {
  if (hit === null) return null;
  const { time: _time, input: _input, ...rest } = hit;
  return rest;
}

/** SRC=, DST=, PROTO=, SPT=, DPT=, IN= of a kernel netfilter line, read without the formats (to check them). */
function kernelFields(line: string): Omit<KnockHit, 'time' | 'input' | 'flags'> {
  const field = (key: string): string => new RegExp(`[ \\]]${key}=([^ ]*) `).exec(line)![1]!;
  return {
    src: canonicalIp(field('SRC'))!,
    dst: canonicalIp(field('DST'))!,
    proto: field('PROTO').toLowerCase() as 'tcp' | 'udp',
    dport: Number(field('DPT')),
    sport: Number(field('SPT')),
    iface: field('IN'),
  };
}

describe('filterlog (pfSense, OPNsense)', () => {
  it('reads the public pfSense lines: TCP SYN (flags S), IPv4 and IPv6 UDP; ICMP is not a knock', () => {
    const results = decodeAll('filterlog', lines('filterlog.log'));
    assert.deepEqual(results.map((r) => r.outcome), [Outcome.NotKnock, Outcome.Matched, Outcome.Matched, Outcome.Matched, Outcome.Matched, Outcome.Matched, Outcome.Matched]);
    assert.deepEqual(packet(results[1]!.hit), { src: '192.168.4.158', dst: '192.168.3.201', proto: 'tcp', dport: 5963, sport: 35682, flags: TCP_SYN, iface: 'vtnet1' });
    assert.deepEqual(packet(results[4]!.hit), { src: '10.0.1.10', dst: '10.0.1.1', proto: 'udp', dport: 53, sport: 53515, flags: 0, iface: 'igb1' });
    assert.deepEqual(packet(results[6]!.hit), { src: 'fe80::de7f:a4ff:fe04:bac9', dst: 'fe80::208:a2ff:fe0b:76ac', proto: 'udp', dport: 546, sport: 41442, flags: 0, iface: 'igb0' });
    // pfSense's own file (year-less, local time) and a collector's RFC 3339 stamp with its zone.
    assert.equal(new Date(results[1]!.hit!.time).toISOString(), '2026-12-05T10:29:11.000Z');
    assert.equal(new Date(results[6]!.hit!.time).toISOString(), '2017-07-05T01:40:38.000Z');
  });

  it('reads pfSense remote syslog lines (no hostname sent) as a collector files them', () => {
    // github.com/pfelk/pfelk issue 258: `<134>Jan 21 12:34:28 filterlog: …`; rsyslog writes FROMHOST in the host field.
    const sent = [
      '<134>Jan 21 12:34:28 filterlog: 5,,,1000000003,vtnet1,match,block,in,6,0x00,0xb87ba,1,UDP,17,664,fe80::dc83:fcc1:6883:b2e1,ff02::c,65155,3702,664',
      '<134>Jan 21 12:33:53 filterlog: 5,,,1000000003,vtnet0,match,block,in,6,0x00,0x00000,255,ICMPv6,58,144,fe80::201:5cff:fe63:2446,ff02::1,',
    ];
    const filed = sent.map((line) => line.replace(/^<\d+>(\w{3} [ \d]\d \d\d:\d\d:\d\d) /, '$1 192.0.2.1 '));
    const results = decodeAll('filterlog', filed);
    assert.deepEqual(packet(results[0]!.hit), { src: 'fe80::dc83:fcc1:6883:b2e1', dst: 'ff02::c', proto: 'udp', dport: 3702, sport: 65155, flags: 0, iface: 'vtnet1' });
    assert.equal(results[1]!.outcome, Outcome.NotKnock);
    // The raw datagram itself is not a file line.
    assert.equal(decodeAll('filterlog', [sent[0]!])[0]!.outcome, Outcome.Ignored);
  });

  it('IPv6 TCP and other flag letters, built from the documented layout (no public line found)', () => {
    // Layout: Netgate's raw filter log format; OPNsense print-ip6.c (`hlim,proto,nh,plen,src,dst,`) and print-tcp.c
    // (`sport,dport,datalen,FLAGS,seq,ack,win,urg,options`, flags as F S R P A U E C). OPNsense's label is a hash.
    const v6 = 'Jan 21 12:00:00 fw filterlog[59012]: 82,,,02f4bab031b57d1e30553ce08e0ec131,igb0,match,block,in,6,0x00,0x8a2f1,57,tcp,6,40,2001:db8::7,2001:db8:1::1,51234,7000,0,S,3100410563,,64800,,mss;sackOK;TS;nop;wscale';
    assert.deepEqual(packet(decodeOne('filterlog', v6)), { src: '2001:db8::7', dst: '2001:db8:1::1', proto: 'tcp', dport: 7000, sport: 51234, flags: TCP_SYN, iface: 'igb0' });
    const v4 = (flags: string) => `Jan 21 12:00:00 fw filterlog: 5,,,1000000103,em0,match,block,in,4,0x0,,64,0,0,DF,6,tcp,52,198.51.100.7,192.0.2.1,40000,8000,0,${flags},1,2,1024,,`;
    assert.equal(decodeOne('filterlog', v4('SA'))!.flags, TCP_SYN | TCP_ACK);
    assert.equal(decodeOne('filterlog', v4('FPA'))!.flags, TCP_FIN | TCP_PSH | TCP_ACK);
    assert.equal(decodeOne('filterlog', v4(''))!.flags, 0);
    assert.equal(decodeAll('filterlog', [v4('SS')])[0]!.outcome, Outcome.Missed);
  });

  it('takes only `match` lines of packets coming in, tagged filterlog, whole: nothing else reads as a knock', () => {
    const good = lines('filterlog.log')[1]!;
    assert.notEqual(decodeOne('filterlog', good), null);
    const variants = [
      good.replace(',block,in,', ',block,out,'), // the same packet logged leaving on another interface
      good.replace(',match,', ',state-mismatch,'),
      good.replace(' filterlog: ', ' logger: '),
      good.replace(' filterlog: ', ' filterlogX: '),
      good.replace(',192.168.4.158,', ',192.168.4.158,6.6.6.6,'),
      good.replace(',6,tcp,', ',6,tcp,60,'),
      `${good},extra`,
      good.replace('35682,5963,', '35682,$(reboot),'),
    ];
    for (const line of variants) assert.equal(decodeOne('filterlog', line), null, line);
  });

  it('an address field holding something else is refused, not turned into a hit', () => {
    const good = lines('filterlog.log')[1]!;
    const results = decodeAll('filterlog', [good.replace('192.168.4.158', '192.168.4.999'), good.replace('5963,0,S', '70000,0,S')]);
    assert.deepEqual(results.map((r) => [r.outcome, r.reason]), [
      [Outcome.Missed, 'ipclient "192.168.4.999" is not an IP address'],
      [Outcome.Missed, 'port "70000" is not a number 0-65535'],
    ]);
  });
});

describe('mikrotik (RouterOS)', () => {
  it('reads the public collector lines: (SYN) TCP and UDP, with and without src-mac and log-prefix', () => {
    const results = decodeAll('mikrotik', lines('mikrotik.log'));
    assert.deepEqual(results.map((r) => r.outcome), [0, 0, 0, Outcome.Ignored, 0, 0, 0, 0, 0].map((o) => (o === 0 ? Outcome.Matched : o)));
    assert.deepEqual(packet(results[0]!.hit), { src: '36.97.161.219', dst: '80.82.202.145', proto: 'tcp', dport: 37, sport: 59388, flags: TCP_SYN, iface: 'ether1-WAN' });
    assert.deepEqual(packet(results[4]!.hit), { src: '142.250.69.74', dst: '222.222.222.222', proto: 'udp', dport: 43186, sport: 443, flags: 0, iface: 'PPPoE' });
    assert.deepEqual(packet(results[5]!.hit), { src: '150.107.38.251', dst: '222.222.222.222', proto: 'tcp', dport: 8058, sport: 56625, flags: TCP_SYN, iface: 'PPPoE' });
    assert.equal(new Date(results[5]!.hit!.time).toISOString(), '2025-11-24T03:19:55.187Z');
  });

  it('reads BSD-syslog lines (no topics), flag lists, NAT rewrites; ICMP is not a knock', () => {
    // Public lines (fixtures README) with the <PRI> the collector strips; the flag-list line is built from them.
    const results = decodeAll('mikrotik', [
      'Sep 25 01:37:18 MikroTik drop !LAN input: in:pppoe out:(unknown 0), proto TCP (SYN), 137.124.88.7:43836->137.124.88.8:51104, len 44',
      'May 30 19:41:39 MikroTik LOGDROP LogDrop: in:2.1-Net out:(none), proto ICMP (type 8, code 0), 175.1.1.1->216.1.1.1, len 28',
      'Sep 25 01:37:19 MikroTik forward: in:ether1 out:bridge, src-mac 2c:c8:1b:ca:7b:2d, proto TCP (ACK,FIN,PSH), 192.0.2.9:34923->198.51.100.3:80, NAT (192.0.2.9:34923->203.0.113.5:34923)->198.51.100.3:80, len 52',
    ]);
    assert.deepEqual(packet(results[0]!.hit), { src: '137.124.88.7', dst: '137.124.88.8', proto: 'tcp', dport: 51104, sport: 43836, flags: TCP_SYN, iface: 'pppoe' });
    assert.equal(results[1]!.outcome, Outcome.NotKnock);
    assert.deepEqual(packet(results[2]!.hit), { src: '192.0.2.9', dst: '198.51.100.3', proto: 'tcp', dport: 80, sport: 34923, flags: TCP_ACK | TCP_FIN | TCP_PSH, iface: 'ether1' });
  });

  it('the log-prefix recipe takes only that rule\'s lines', () => {
    const recipe = new CompiledFormat({ name: 'knock', at: { file: 'test', line: 1 }, fields: { required: { pattern: '{{mikrotik}}drop-tcp {{routeros}}', at: { file: 'test', line: 2 } } } });
    const decoder = new LineDecoder([recipe]);
    const hits = lines('mikrotik.log').map((line) => hitOf(decoder.decode(line, ctx))).filter((hit) => hit !== null);
    assert.deepEqual(hits.map((hit) => hit.dport), [37, 24, 26]);
  });

  it('refuses extra text, a second address, unknown flags and other programs\' lines', () => {
    const good = lines('mikrotik.log')[5]!;
    assert.notEqual(decodeOne('mikrotik', good), null);
    for (const line of [
      `${good} extra`,
      good.replace('150.107.38.251:56625->', '150.107.38.251:56625->6.6.6.6:1->'),
      good.replace('(SYN)', '(SYN,XYZ)'),
      good.replace(' proto TCP', ' proto TCP proto UDP'),
      good.replace('firewall,info [drop-input] input: in:', 'script,info input: in:'),
    ]) {
      const result = decodeAll('mikrotik', [line])[0]!;
      assert.equal(result.hit, null, line);
    }
  });
});

describe('kernel-based routers (real kernel lines with the vendors\' prefixes)', () => {
  const all = lines('kernel', 'kern-rfc3339.log');
  const knocks = all.filter((line) => / PROTO=(TCP|UDP) /.test(line));

  it('openwrt reads every knock of logread\'s lines with its fields and its ctime stamp; ICMP is not a knock', () => {
    const logread = lines('kernel', 'logread.log');
    const results = decodeAll('openwrt', logread);
    assert.equal(results.filter((r) => r.outcome === Outcome.Matched).length, 22);
    logread.forEach((line, i) => {
      if (!/ PROTO=(TCP|UDP) /.test(line)) return assert.equal(results[i]!.hit, null);
      const { flags: _flags, ...fields } = packet(results[i]!.hit)!;
      assert.deepEqual(fields, kernelFields(line));
      // The same record as in the RFC 3339 file: the same second (logread prints whole seconds).
      const rsyslogTime = Date.parse(all[i]!.slice(0, all[i]!.indexOf(' ')));
      assert.equal(results[i]!.hit!.time, Math.floor(rsyslogTime / 1000) * 1000);
    });
    assert.equal(results.find((r) => r.hit?.sport !== undefined && r.hit.flags === (TCP_SYN | TCP_ACK))?.hit?.dport, 7001);
  });

  it('openwrt takes kernel-facility lines only: a record written into /dev/kmsg or a program\'s message is refused', () => {
    const line = lines('kernel', 'logread.log')[0]!;
    assert.notEqual(decodeOne('openwrt', line), null);
    assert.equal(decodeOne('openwrt', line.replace(' kern.warn kernel: ', ' user.warn kernel: ')), null);
    assert.equal(decodeOne('openwrt', line.replace(' kern.warn kernel: ', ' daemon.warn dropbear[12]: ')), null);
  });

  it('vyos reads the EdgeOS and VyOS 1.4 prefixes and nothing else; firewalld its two prefixes and nothing else', () => {
    const expectPrefixes = (format: string, prefixes: RegExp) => {
      const results = decodeAll(format, knocks);
      knocks.forEach((line, i) => {
        if (prefixes.test(line)) assert.deepEqual({ ...packet(results[i]!.hit), flags: undefined }, { ...kernelFields(line), flags: undefined }, line);
        else assert.equal(results[i]!.outcome, Outcome.Ignored, line);
      });
      return results.filter((r) => r.hit !== null).length;
    };
    assert.equal(expectPrefixes('vyos', /\] \[(WAN_LOCAL-default|ipv4-WAN_LOCAL-default|ipv4-inp-filter-10)-D\]IN=/), 9);
    assert.equal(expectPrefixes('firewalld', /\] (FINAL_REJECT|filter_IN_public_REJECT): IN=/), 6);
    // The per-router files hold exactly those lines.
    assert.equal(decodeAll('vyos', lines('kernel', 'vyos.log')).filter((r) => r.hit !== null).length, 9);
    assert.equal(decodeAll('firewalld', lines('kernel', 'firewalld.log')).filter((r) => r.hit !== null).length, 6);
  });

  it('vyos and firewalld take `kernel:` lines only, and a look-alike prefix is not theirs', () => {
    const vyos = lines('kernel', 'vyos.log')[0]!;
    const firewalld = lines('kernel', 'firewalld.log')[0]!;
    assert.equal(decodeOne('vyos', vyos.replace(' kernel: ', ' logger: ')), null);
    assert.equal(decodeOne('vyos', vyos.replace(/\[[^\]]+\]IN=/, '[WAN_LOCAL]IN=')), null);
    assert.equal(decodeOne('vyos', vyos.replace(/\[[^\]]+\]IN=/, '[WAN LOCAL-default-D]IN=')), null);
    assert.equal(decodeOne('firewalld', firewalld.replace(' kernel: ', ' firewalld[812]: ')), null);
    assert.equal(decodeOne('firewalld', firewalld.replace(/(FINAL_REJECT|filter_IN_public_REJECT): /, 'STATE_INVALID_DROP: ')), null);
  });
});
