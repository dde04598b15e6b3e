import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import { describe, test } from 'node:test';
import { emptyNflogRecord, prefixMatcher, readNflog } from '../../src/packet/nflog.js';
import { emptyPacketFields, LINKTYPE_NFLOG, type NflogFields, nflogParser, packetParser } from '../../src/packet/parse.js';
import { CaptureFileReader } from '../../src/packet/pcap-file.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture, replayEvents, tempDir } from '../helpers.js';
import { buildPacket, type PacketSpec, random } from './gen.js';

const LE = endianness() === 'LE';

function nflogFields(): NflogFields {
  return { ...emptyPacketFields(), time: 0, seq: 0 };
}

/** One TLV in this host's byte order, padded to 4 bytes. */
function tlv(type: number, value: Uint8Array, length = 4 + value.length): Uint8Array {
  const bytes = new Uint8Array((4 + value.length + 3) & ~3);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, length, LE);
  view.setUint16(2, type, LE);
  bytes.set(value, 4);
  return bytes;
}

function timestamp(ms: number): Uint8Array {
  const value = new Uint8Array(16);
  const view = new DataView(value.buffer);
  view.setBigUint64(0, BigInt(Math.floor(ms / 1000)));
  view.setBigUint64(8, BigInt(Math.round((ms % 1000) * 1000)));
  return value;
}

/** An NFLOG message as the kernel builds it: header, packet header, prefix, timestamp, payload (raw IP). */
function message(options: { family?: number; prefix?: string | null; time?: number | null; payload: Uint8Array; extra?: Uint8Array[] }): Uint8Array {
  const parts: Uint8Array[] = [new Uint8Array([options.family ?? 2, 0, 0, 5])];
  parts.push(tlv(1, new Uint8Array([0x08, 0x00, 1, 0])));
  if (options.prefix !== null) parts.push(tlv(10, Buffer.from(`${options.prefix ?? 'knock:'}\0`)));
  parts.push(tlv(4, new Uint8Array([0, 0, 0, 2])));
  if (options.time !== null) parts.push(tlv(3, timestamp(options.time ?? 1_796_469_204_696.25)));
  for (const part of options.extra ?? []) parts.push(part);
  parts.push(tlv(9, options.payload));
  return Buffer.concat(parts);
}

function rawIp(overrides: Partial<PacketSpec> = {}): Uint8Array {
  return buildPacket({ link: 'raw', src: '192.0.2.7', dst: '198.51.100.1', proto: 'tcp', sport: 40001, dport: 7000, flags: 0x02, ...overrides }).bytes;
}

describe('NFLOG link type', () => {
  test('the real capture: every packet with its fields, the kernel time and the prefix filter', async () => {
    const reader = await CaptureFileReader.open(fixture('nflog', 'group5.pcap'));
    const hits: Array<{ src: string; dport: number; proto: string; time: number; captured: number }> = [];
    const knockOnly: number[] = [];
    const parse = packetParser(LINKTYPE_NFLOG);
    const knock = nflogParser(prefixMatcher('knock:'));
    await reader.read((p) => {
      assert.equal(p.interface.linkType, LINKTYPE_NFLOG);
      const out = nflogFields();
      assert.ok(parse(p.buffer, p.offset, p.offset + p.capturedLength, out), `packet at ${p.recordOffset}`);
      const withTime = nflogFields();
      assert.ok(nflogParser(null)(p.buffer, p.offset, p.offset + p.capturedLength, withTime));
      hits.push({ src: out.src, dport: out.dport, proto: out.proto, time: withTime.time, captured: p.time });
      if (knock(p.buffer, p.offset, p.offset + p.capturedLength, nflogFields())) knockOnly.push(out.dport);
    });
    assert.deepEqual(
      hits.map(({ src, dport, proto }) => `${proto} ${src} ${dport}`),
      ['tcp 10.231.7.2 7000', 'tcp 10.231.7.2 7001', 'tcp 10.231.7.2 7002', 'tcp fd77:0:0:7::2 7000', 'tcp fd77:0:0:7::2 7001', 'tcp fd77:0:0:7::2 7002', 'udp 10.231.7.2 7003', 'tcp 10.231.7.2 7004'],
    );
    assert.deepEqual(knockOnly, [7000, 7001, 7002, 7000, 7001, 7002], 'only the `knock:` rule');
    // The kernel's own stamps are in sending order and up to the 1 s flush earlier than libpcap's read time.
    for (let i = 1; i < hits.length; i++) assert.ok(hits[i].time >= hits[i - 1].time, `time order at ${i}`);
    for (const hit of hits) assert.ok(hit.time <= hit.captured && hit.captured - hit.time < 2000, `${hit.time} vs ${hit.captured}`);
    assert.ok(hits[0].captured - hits[0].time > 100, 'the batch was flushed well after the first packet was logged');
  });

  test('replay of the real capture opens at the kernel\'s log times, not at the batch\'s read time', async () => {
    const conf = join(tempDir(), 'replay.conf');
    writeFileSync(conf, '[door]\n  sequence = 7000,7001,7002\n  seq_timeout = 5\n  start_command = true\n');
    const opens = (await replayEvents(['-c', conf, fixture('nflog', 'group5.pcap')])).filter((event) => event.event === 'open');
    assert.deepEqual(opens.map((event) => [event.ip, event.time]), [
      ['10.231.7.2', '2026-12-05T11:16:22.004Z'],
      ['fd77:0:0:7::2', '2026-12-05T11:16:22.021Z'],
    ]);
  });

  test('IPv4 and IPv6 payloads, with and without prefix and timestamp', () => {
    const parse = nflogParser(null);
    const v4 = nflogFields();
    assert.ok(parse(message({ payload: rawIp(), time: 1_796_469_204_696.25 }), 0, Infinity, v4) === false, 'end beyond the buffer is refused');
    const bytes = message({ payload: rawIp(), time: 1_796_469_204_696.25 });
    assert.ok(parse(bytes, 0, bytes.length, v4));
    assert.deepEqual([v4.src, v4.dst, v4.proto, v4.sport, v4.dport, v4.flags, v4.time], ['192.0.2.7', '198.51.100.1', 'tcp', 40001, 7000, 2, 1_796_469_204_696.25]);
    const six = message({ family: 10, prefix: null, time: null, payload: rawIp({ src: '2001:db8::7', dst: '2001:db8::1', proto: 'udp', dport: 8000 }) });
    const v6 = nflogFields();
    assert.ok(parse(six, 0, six.length, v6));
    assert.deepEqual([v6.src, v6.dst, v6.proto, v6.dport, v6.flags], ['2001:db8::7', '2001:db8::1', 'udp', 8000, 0]);
    assert.ok(Number.isNaN(v6.time), 'no timestamp TLV: NaN (the capture time is used)');
    // Offsets inside a larger buffer.
    const padded = Buffer.concat([Buffer.alloc(7, 0xff), bytes, Buffer.alloc(5, 0xff)]);
    const inside = nflogFields();
    assert.ok(parse(padded, 7, 7 + bytes.length, inside));
    assert.equal(inside.dport, 7000);
  });

  test('prefix: exact match, trailing blanks ignored, anything else refused', () => {
    const cases: Array<[rule: string | null, wanted: string, matches: boolean]> = [
      ['knock:', 'knock:', true],
      ['KNOCK ', 'KNOCK', true],
      ['KNOCK', 'KNOCK  ', true],
      ['knock:', 'knock', false],
      ['knock:x', 'knock:', false],
      ['Knock:', 'knock:', false],
      [null, 'knock:', false],
      ['', 'knock:', false],
      ['knöck', 'knöck', true],
    ];
    for (const [rule, wanted, matches] of cases) {
      const bytes = message({ prefix: rule, payload: rawIp() });
      assert.equal(nflogParser(prefixMatcher(wanted))(bytes, 0, bytes.length, nflogFields()), matches, `rule ${JSON.stringify(rule)}, wanted ${JSON.stringify(wanted)}`);
    }
    // A prefix TLV without its NUL ends at the TLV's end.
    const unterminated = message({ prefix: null, payload: rawIp(), extra: [tlv(10, Buffer.from('knock:'))] });
    assert.equal(nflogParser(prefixMatcher('knock:'))(unterminated, 0, unterminated.length, nflogFields()), true);
  });

  test('crafted TLVs: zero, short and overlong lengths, wrong family or version, no payload', () => {
    const parse = nflogParser(null);
    const good = message({ payload: rawIp() });
    const cases: Array<[string, Uint8Array]> = [
      ['family 0', Buffer.concat([Buffer.from([0, 0, 0, 5]), good.subarray(4)])],
      ['family 7', Buffer.concat([Buffer.from([7, 0, 0, 5]), good.subarray(4)])],
      ['version 1', Buffer.concat([Buffer.from([2, 1, 0, 5]), good.subarray(4)])],
      ['no payload', message({ payload: rawIp() }).subarray(0, good.length - ((4 + rawIp().length + 3) & ~3))],
      ['TLV length 0 (would loop forever)', Buffer.concat([good.subarray(0, 4), tlv(1, new Uint8Array(4), 0), good.subarray(4)])],
      ['TLV length 3', Buffer.concat([good.subarray(0, 4), tlv(1, new Uint8Array(4), 3), good.subarray(4)])],
      ['prefix TLV longer than the message', Buffer.concat([good.subarray(0, 4), tlv(10, Buffer.from('knock:\0'), 4000)])],
      ['header only', good.subarray(0, 4)],
      ['empty', new Uint8Array(0)],
      ['payload not IP', message({ payload: new Uint8Array([0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]) })],
    ];
    for (const [name, bytes] of cases) assert.equal(parse(bytes, 0, bytes.length, nflogFields()), false, name);
    // A bad timestamp (microseconds of a second or more) is not a time.
    const badTime = message({ time: null, payload: rawIp(), extra: [tlv(3, Buffer.from('000000006b13f1d400000000000f4240', 'hex'))] });
    const out = nflogFields();
    assert.ok(parse(badTime, 0, badTime.length, out));
    assert.ok(Number.isNaN(out.time));
    // The sequence number (NFULA_SEQ, when the group asks for it) is reported also for a message that is then refused.
    const numbered = message({ prefix: 'other', payload: rawIp(), extra: [tlv(12, Buffer.from('0000abcd', 'hex'))] });
    const refused = nflogFields();
    assert.equal(nflogParser(prefixMatcher('knock:'))(numbered, 0, numbered.length, refused), false);
    assert.equal(refused.seq, 0xabcd);
    const unnumbered = nflogFields();
    assert.ok(parse(good, 0, good.length, unnumbered));
    assert.ok(Number.isNaN(unnumbered.seq));
    // Unknown TLV types (and the kernel's flag bits on known ones) are stepped over.
    const flagged = message({ payload: rawIp(), extra: [tlv(0x7fff, new Uint8Array(9)), tlv(0x8000 | 4, new Uint8Array(4))] });
    assert.ok(parse(flagged, 0, flagged.length, nflogFields()));
  });

  test('a payload cut short by the snap length keeps what it has', () => {
    const bytes = message({ payload: rawIp({ tcpOptions: [2, 4, 5, 0xb4, 1, 1, 1, 1] }) });
    const record = emptyNflogRecord();
    assert.ok(readNflog(bytes, 0, bytes.length, LE, record));
    const payloadStart = record.payloadAt;
    // The IP and TCP headers (40 bytes) are enough; the options are never needed.
    for (let end = payloadStart; end <= bytes.length; end++) {
      const ok = nflogParser(null)(bytes, 0, end, nflogFields());
      assert.equal(ok, end >= payloadStart + 40, `cut at ${end - payloadStart} bytes of payload`);
    }
  });

  test('fuzz: every truncation and random mutations never throw, and a valid result is always a real TCP/UDP packet', { timeout: 60_000 }, () => {
    const next = random(0x6e666c67);
    const parse = nflogParser(null);
    const withPrefix = nflogParser(prefixMatcher('knock:'));
    for (let i = 0; i < 3000; i++) {
      const v6 = next() < 0.5;
      const spec: Partial<PacketSpec> = v6 ? { src: '2001:db8::7', dst: '2001:db8::1' } : {};
      if (next() < 0.3) spec.proto = 'udp';
      const bytes = message({ family: v6 ? 10 : 2, prefix: next() < 0.7 ? 'knock:' : null, time: next() < 0.8 ? 1_796_469_204_696 : null, payload: rawIp(spec) });
      for (let end = 0; end < bytes.length; end += 1 + Math.floor(next() * 8)) {
        parse(bytes, 0, end, nflogFields());
        withPrefix(bytes, 0, end, nflogFields());
      }
      const mutated = Uint8Array.from(bytes);
      for (let m = 0; m < 1 + Math.floor(next() * 6); m++) mutated[Math.floor(next() * mutated.length)] = Math.floor(next() * 256);
      const out = nflogFields();
      if (parse(mutated, 0, mutated.length, out)) {
        assert.ok(out.proto === 'tcp' || out.proto === 'udp');
        assert.ok(out.dport >= 0 && out.dport < 65536 && out.sport >= 0 && out.sport < 65536);
      }
    }
  });
});
