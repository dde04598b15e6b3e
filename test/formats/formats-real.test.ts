/**
 * Every shipped format against the real log lines of fixtures/real/: each knock of the MANIFEST ground truth is
 * found, in order, with the right source, destination, protocol, port, flags and interface, at the time it
 * was sent, and nothing else is.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseFormatFile } from '../../src/config/parse.js';
import { FormatRegistry, LineDecoder } from '../../src/formats/registry.js';
import type { KnockHit } from '../../src/hit.js';
import { fixture, timeZoneForEachTest } from '../helpers.js';
import {
  described,
  FIXTURE_BOOT_TIME,
  mistimed,
  observed,
  type Packet,
  PHASE_A,
  PHASE_B,
  PHASE_C4,
  PHASE_C6,
  PHASE_D,
  PHASE_E4,
  PHASE_E6,
  PHASE_F_LOGGED,
  RING_ABC,
} from './groundtruth.js';
import { hitOf, portWatch } from './support.js';

// The fixtures were logged on a UTC machine; their traditional stamps are local time.
timeZoneForEachTest('UTC');

const registry = FormatRegistry.load(null);
const recipes = fixture('formats', 'prefix-recipes.conf');
registry.add(parseFormatFile(readFileSync(recipes, 'utf8'), recipes));

const ctx = { input: 'test', reference: Date.parse('2026-11-21T12:00:00Z'), bootTime: FIXTURE_BOOT_TIME, fallbackTime: 0, arrival: null };

function read(file: string, format: string): { hits: KnockHit[]; decoder: LineDecoder; lines: string[] } {
  const decoder = new LineDecoder([registry.get(format)]);
  const lines = readFileSync(fixture('real', file), 'utf8').split('\n').filter((line) => line !== '');
  const hits = lines.map((line) => hitOf(decoder.decode(line, ctx))).filter((hit) => hit !== null);
  return { hits, decoder, lines };
}

/** The hits of `file` are exactly `packets`, in order and on time; the other lines are `ignored` foreign lines. */
function assertGroundTruth(file: string, format: string, packets: readonly Packet[], ignored: number, early?: number): void {
  const { hits, decoder } = read(file, format);
  assert.deepEqual(hits.map(observed), packets.map(described));
  assert.deepEqual(mistimed(hits, packets, early), []);
  assert.ok(hits.every((hit) => hit.sport !== null && hit.sport > 0), 'every line has its source port');
  assert.equal(decoder.counters.missed, 0);
  assert.equal(decoder.counters.ignored, ignored);
}

const onlyPrefix = (prefix: string) => (packet: Packet) => packet.prefix === prefix;
/** Four "entered promiscuous mode" lines (tcpdump) and the ICMP echo of A23 are in the A–C logs but are not knocks. */
const NOT_KNOCKS_A = 5;

describe('format iptables: rsyslog kern.log, traditional and RFC 3339 stamps', () => {
  for (const file of ['iptables-kernlog.log', 'iptables-kernlog-rfc3339.log']) {
    it(`${file}: phases A and C over IPv4, every TCP/UDP packet any LOG rule logged`, () => {
      assertGroundTruth(file, 'iptables', [...PHASE_A, ...PHASE_C4], NOT_KNOCKS_A);
    });
  }
  for (const file of ['ip6tables-kernlog.log', 'ip6tables-kernlog-rfc3339.log']) {
    it(`${file}: phases B and C over IPv6, addresses canonicalised`, () => {
      assertGroundTruth(file, 'iptables', [...PHASE_B, ...PHASE_C6], 0);
    });
  }

  it('the traditional and the RFC 3339 file give the same hits, to the second', () => {
    const traditional = read('iptables-kernlog.log', 'iptables').hits;
    const rfc3339 = read('iptables-kernlog-rfc3339.log', 'iptables').hits;
    assert.deepEqual(traditional.map((hit) => ({ ...hit, time: 0 })), rfc3339.map((hit) => ({ ...hit, time: 0 })));
    assert.deepEqual(traditional.map((hit) => hit.time), rfc3339.map((hit) => Math.floor(hit.time / 1000) * 1000));
  });
});

describe('the --log-prefix recipe: a format per LOG rule', () => {
  it('"KNOCK " takes the knock rule\'s lines and leaves the FW-IN rule\'s alone', () => {
    assertGroundTruth('iptables-kernlog-rfc3339.log', 'knock', [...PHASE_A, ...PHASE_C4].filter(onlyPrefix('KNOCK')), NOT_KNOCKS_A + 3);
    assertGroundTruth('ip6tables-kernlog.log', 'knock', [...PHASE_B, ...PHASE_C6].filter(onlyPrefix('KNOCK')), 1);
  });
});

describe('nftables log, plain and flags all (every packet is logged twice, once per rule)', () => {
  const knocks = PHASE_D.filter(onlyPrefix('knock'));
  for (const file of ['nftables-log.log', 'nftables-log-rfc3339.log']) {
    it(`${file}: the default format sees both lines of each packet`, () => {
      const twice = PHASE_D.flatMap((packet) => (packet.prefix === 'knock' ? [packet, packet] : [packet]));
      assertGroundTruth(file, 'iptables', twice, 0);
      const { hits } = read(file, 'iptables');
      let at = 0;
      for (const packet of PHASE_D) {
        if (packet.prefix !== 'knock') {
          at++;
          continue;
        }
        assert.equal(hits[at]!.sport, hits[at + 1]!.sport, `${packet.step}: the two lines of one packet are adjacent`);
        at += 2;
      }
    });
    it(`${file}: a format with the prefix counts each packet once, from either rule`, () => {
      assertGroundTruth(file, 'nft-knock', knocks, 29);
      assertGroundTruth(file, 'nft-knock-all', knocks, 29);
      // The same packets: same source ports, whichever rule's line was read.
      assert.deepEqual(read(file, 'nft-knock').hits.map((hit) => hit.sport), read(file, 'nft-knock-all').hits.map((hit) => hit.sport));
    });
  }
});

describe('format ulogd: NFLOG through ulogd2 LOGEMU', () => {
  it('ulogd-logemu.log (IPv4)', () => assertGroundTruth('ulogd-logemu.log', 'ulogd', PHASE_E4, 0));
  it('ulogd-logemu6.log (IPv6, compressed addresses)', () => assertGroundTruth('ulogd-logemu6.log', 'ulogd', PHASE_E6, 0));
});

describe('kernel ring buffer readers (phases A–C; uptime stamps placed with the boot time)', () => {
  const cases: Array<[file: string, format: string, early?: number]> = [
    ['dmesg.log', 'dmesg'],
    ['dmesg-raw.log', 'dmesg-raw'],
    // dmesg's own uptime conversion is 0.365 s early (fixtures README).
    ['dmesg-iso.log', 'dmesg-iso', 1400],
    ['kmsg.log', 'kmsg'],
  ];
  for (const [file, format, early] of cases) {
    it(`${file} with format ${format}`, () => assertGroundTruth(file, format, RING_ABC, NOT_KNOCKS_A, early));
  }
});

describe('journalctl -k text (format iptables: the same kernel lines without the printk stamp)', () => {
  for (const file of ['journalctl-k-short.log', 'journalctl-k-short-iso.log', 'journalctl-k-short-iso-precise.log']) {
    it(file, () => assertGroundTruth(file, 'iptables', RING_ABC, NOT_KNOCKS_A));
  }
});

describe('format ufw', () => {
  it('ufw.log: exactly the packets ufw\'s rate limit let through', () => assertGroundTruth('ufw.log', 'ufw', PHASE_F_LOGGED, 0));
  it('takes [UFW BLOCK] lines only', () => {
    const real = readFileSync(fixture('real', 'ufw.log'), 'utf8').split('\n')[0]!;
    const decoder = new LineDecoder([registry.get('ufw')]);
    assert.notEqual(hitOf(decoder.decode(real, ctx)), null);
    assert.equal(hitOf(decoder.decode(real.replace('[UFW BLOCK]', '[UFW AUDIT]'), ctx)), null);
    assert.equal(hitOf(decoder.decode(real.replace('[UFW BLOCK]', '[UFW ALLOW]'), ctx)), null);
    assert.equal(hitOf(decoder.decode(real.replace('[UFW BLOCK] ', ''), ctx)), null);
  });
});

describe('the formats are anchored: no field can carry text into another', () => {
  /** One real line per format, and ways an attacker-shaped variant of it must fail. */
  const samples: Array<[format: string, file: string]> = [
    ['iptables', 'iptables-kernlog-rfc3339.log'],
    ['ufw', 'ufw.log'],
    ['ulogd', 'ulogd-logemu.log'],
    ['dmesg', 'dmesg.log'],
    ['dmesg-raw', 'dmesg-raw.log'],
    ['dmesg-iso', 'dmesg-iso.log'],
    ['kmsg', 'kmsg.log'],
  ];
  const hostile: Array<[what: string, change: (line: string) => string]> = [
    ['a second SRC=', (line) => line.replace('SRC=10.66.0.2', 'SRC=10.66.0.2 SRC=6.6.6.6')],
    ['text in place of an address', (line) => line.replace('SRC=10.66.0.2', 'SRC=$(reboot)')],
    ['a port out of range', (line) => line.replace('DPT=7000', 'DPT=70000')],
    ['text after the last field', (line) => `${line.trimEnd()} ; rm -rf /`],
    ['a whole second packet appended', (line) => `${line}${line.slice(line.indexOf('IN='))}`],
    ['a line break smuggled as \\r', (line) => line.replace(' DST=', '\r DST=')],
    ['an unknown flag word', (line) => line.replace(' SYN URGP', ' SYN EVIL URGP')],
  ];
  for (const [format, file] of samples) {
    it(format, () => {
      const real = readFileSync(fixture('real', file), 'utf8').split('\n').find((line) => line.includes('DPT=7000 ') && line.includes(' SYN '))!;
      const decoder = new LineDecoder([registry.get(format)]);
      assert.equal(hitOf(decoder.decode(real, ctx))?.src, '10.66.0.2');
      for (const [what, change] of hostile) assert.equal(hitOf(decoder.decode(change(real), ctx)), null, what);
    });
  }

  it('kernel-line formats take only lines the kernel tagged', () => {
    const real = readFileSync(fixture('real', 'iptables-kernlog.log'), 'utf8').split('\n')[2]!;
    const decoder = new LineDecoder([registry.get('iptables')]);
    assert.notEqual(hitOf(decoder.decode(real, ctx)), null);
    assert.equal(hitOf(decoder.decode(real.replace(' kernel: ', ' kernel[123]: '), ctx)), null, 'a program called kernel');
    assert.equal(hitOf(decoder.decode(real.replace(' kernel: ', ' logger: '), ctx)), null);
    assert.equal(hitOf(decoder.decode(real.replace(' vm kernel: ', ' vm vm kernel: '), ctx)), null, 'logger --rfc3164 (forged/README.md G04)');
    assert.equal(hitOf(decoder.decode(`x ${real}`, ctx)), null, 'anchored at the start');
  });

  it('ring buffer formats take kernel-facility records only (/dev/kmsg injections have a user facility)', () => {
    const kmsg = readFileSync(fixture('real', 'forged', 'kmsg.log'), 'utf8').split('\n').filter((line) => line !== '');
    const decoder = new LineDecoder([registry.get('kmsg')]);
    assert.deepEqual(kmsg.map((line) => hitOf(decoder.decode(line, ctx))?.src ?? null), ['10.66.0.2', null]);
    const raw = new LineDecoder([registry.get('dmesg-raw')]);
    const real = readFileSync(fixture('real', 'dmesg-raw.log'), 'utf8').split('\n')[2]!;
    assert.equal(hitOf(raw.decode(real, ctx))?.src, '10.66.0.2');
    assert.equal(hitOf(raw.decode(real.replace(/^<4>/, '<12>'), ctx)), null);
  });
});

describe('the port prefilter works through the sub-patterns', () => {
  it('every shipped format of kernel lines knows its port marker; CSV and RouterOS lines have none and are decoded whole', () => {
    const csvOrRouterOs = new Set(['filterlog', 'mikrotik']);
    for (const name of registry.names()) assert.equal(registry.get(name).portMarker, csvOrRouterOs.has(name) ? null : 'DPT=', name);
  });

  it('skipping unwatched ports gives the same hits for watched ones', () => {
    const watched = (proto: string, port: number) => proto === 'tcp' && port === 8000;
    for (const [file, format] of [['kmsg.log', 'kmsg'], ['nftables-log.log', 'nft-knock'], ['ulogd-logemu.log', 'ulogd']] as const) {
      const all = read(file, format).hits.filter((hit) => watched(hit.proto, hit.dport));
      const decoder = new LineDecoder([registry.get(format)], portWatch(watched));
      const lines = readFileSync(fixture('real', file), 'utf8').split('\n').filter((line) => line !== '');
      const hits = lines.map((line) => hitOf(decoder.decode(line, ctx))).filter((hit) => hit !== null);
      assert.ok(all.length > 0);
      assert.deepEqual(hits, all, file);
      assert.ok(decoder.counters.skipped > 0);
    }
  });
});
