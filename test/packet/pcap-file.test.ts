import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG } from '../../src/hit.js';
import { CaptureFileError, CaptureFileReader, type CaptureInterface, type ReadSummary } from '../../src/packet/pcap-file.js';
import { emptyPacketFields, packetParser } from '../../src/packet/parse.js';
import { fixture, tempDir } from '../helpers.js';
import { type NgBlock, type NgSection, writePcap, writePcapng } from './gen.js';

interface Packet {
  time: number;
  data: Uint8Array;
  originalLength: number;
  iface: CaptureInterface;
  recordOffset: number;
}

async function readAll(path: string, signal?: AbortSignal): Promise<{ packets: Packet[]; summary: ReadSummary; format: string }> {
  const reader = await CaptureFileReader.open(path);
  const packets: Packet[] = [];
  const summary = await reader.read((p) => {
    packets.push({
      time: p.time,
      data: p.buffer.slice(p.offset, p.offset + p.capturedLength),
      originalLength: p.originalLength,
      iface: { index: p.interface.index, linkType: p.interface.linkType, name: p.interface.name },
      recordOffset: p.recordOffset,
    });
  }, signal);
  return { packets, summary, format: reader.format };
}

async function readError(path: string): Promise<{ error: unknown; delivered: number }> {
  let delivered = 0;
  try {
    const reader = await CaptureFileReader.open(path);
    await reader.read(() => delivered++);
  } catch (error) {
    return { error, delivered };
  }
  return { error: null, delivered };
}

const FLAG_LETTERS: Record<string, number> = { F: TCP_FIN, S: TCP_SYN, R: TCP_RST, P: TCP_PSH, '.': TCP_ACK, U: TCP_URG, E: TCP_ECE, W: TCP_CWR };

interface Decoded {
  /** µs since the epoch. */
  micros: number;
  knock: { src: string; dst: string; proto: 'tcp' | 'udp'; sport: number; dport: number; flags: number } | null;
  ifindex: number | null;
}

/** Packets as tcpdump decoded them (`tcpdump -nn -e -tttt -v -r`, run in UTC): the oracle for our reader and parser. */
function tcpdumpDecode(name: string): Decoded[] {
  const text = readFileSync(fixture('real', 'pcap-decodes', `${name}.txt`), 'utf8');
  const records = text.split(/\n(?=\d{4}-\d\d-\d\d )/).filter((r) => r.trim() !== '');
  return records.map((record) => {
    const stamp = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6})/.exec(record)!;
    const [, y, mo, d, h, mi, s, us] = stamp.map(Number);
    const micros = Date.UTC(y, mo - 1, d, h, mi, s) * 1000 + us;
    const ifindex = /ifindex (\d+)/.exec(record);
    const proto = /(?:proto|next-header) (\w+) \(\d+\)/.exec(record)?.[1];
    let knock: Decoded['knock'] = null;
    if (proto === 'TCP' || proto === 'UDP') {
      const ends = /(\S+)\.(\d+) > (\S+)\.(\d+):/.exec(record)!;
      const flagText = proto === 'TCP' ? /Flags \[([^\]]*)\]/.exec(record)![1] : 'none';
      const flags = flagText === 'none' ? 0 : [...flagText].reduce((bits, letter) => bits | FLAG_LETTERS[letter], 0);
      knock = { src: ends[1], dst: ends[3], proto: proto === 'TCP' ? 'tcp' : 'udp', sport: Number(ends[2]), dport: Number(ends[4]), flags };
    }
    return { micros, knock, ifindex: ifindex ? Number(ifindex[1]) : null };
  });
}

const FIXTURES: Array<{ name: string; format: string; linkType: number; packets: number }> = [
  { name: 'knocks', format: 'pcap', linkType: 1, packets: 80 },
  { name: 'knocks6', format: 'pcap', linkType: 1, packets: 32 },
  { name: 'knocks-any', format: 'pcap', linkType: 276, packets: 136 },
  { name: 'knocks-any-sll', format: 'pcap', linkType: 113, packets: 33 },
  { name: 'loopback', format: 'pcap', linkType: 1, packets: 24 },
  { name: 'ufw-knocks', format: 'pcap', linkType: 1, packets: 26 },
];

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

describe('capture file reader', () => {
  for (const { name, format, linkType, packets: count } of FIXTURES) {
    test(`${name}.pcap: every packet matches tcpdump's own decode (time, addresses, ports, flags; non-TCP/UDP skipped)`, async () => {
      const { packets, summary, format: seen } = await readAll(fixture('real', `${name}.pcap`));
      assert.equal(seen, format);
      assert.equal(summary.packets, count);
      assert.equal(packets.length, count);
      const decoded = tcpdumpDecode(name);
      assert.equal(decoded.length, count, 'tcpdump decode lists the same number of packets');
      const parse = packetParser(linkType);
      const fields = emptyPacketFields();
      packets.forEach((packet, i) => {
        assert.equal(packet.iface.linkType, linkType);
        assert.equal(Math.round(packet.time * 1000), decoded[i].micros, `packet ${i} time`);
        const ok = parse(packet.data, 0, packet.data.length, fields);
        assert.equal(ok, decoded[i].knock !== null, `packet ${i}: TCP/UDP or not`);
        if (ok) {
          const { src, dst, proto, sport, dport, flags } = fields;
          assert.deepEqual({ src, dst, proto, sport, dport, flags }, decoded[i].knock, `packet ${i}`);
        }
        if (decoded[i].ifindex !== null) assert.equal(ok ? fields.ifindex : decoded[i].ifindex, decoded[i].ifindex, `packet ${i} ifindex`);
      });
    });
  }

  test('classic variants: nanosecond magic, big-endian, snapped records give the same packets', async () => {
    const dir = tempDir();
    const { packets } = await readAll(fixture('real', 'knocks.pcap'));
    const source = packets.map((p) => ({ time: p.time, data: p.data }));
    for (const variant of [{ nanoseconds: true }, { bigEndian: true }, { nanoseconds: true, bigEndian: true }]) {
      const path = join(dir, `variant-${JSON.stringify(variant).replace(/\W/g, '')}.pcap`);
      writeFileSync(path, writePcap({ linkType: 1, packets: source, ...variant }));
      const { packets: again } = await readAll(path);
      assert.equal(again.length, packets.length);
      again.forEach((p, i) => {
        assert.ok(sameBytes(p.data, packets[i].data), `${path} packet ${i} bytes`);
        assert.equal(Math.round(p.time * 1000), Math.round(packets[i].time * 1000), `${path} packet ${i} time`);
      });
    }
    const snappedPath = join(dir, 'snapped.pcap');
    writeFileSync(snappedPath, writePcap({ linkType: 1, packets: source, snapLength: 54 }));
    const { packets: snapped } = await readAll(snappedPath);
    snapped.forEach((p, i) => {
      assert.equal(p.data.length, Math.min(54, packets[i].data.length));
      assert.equal(p.originalLength, packets[i].data.length, 'original length kept');
    });
  });

  test('sub-millisecond time is kept as a fraction (µs and ns files)', async () => {
    const dir = tempDir();
    const time = 1_795_000_000_123.456;
    for (const nanoseconds of [false, true]) {
      const path = join(dir, `t${nanoseconds}.pcap`);
      writeFileSync(path, writePcap({ linkType: 1, packets: [{ time, data: new Uint8Array(20) }], nanoseconds }));
      const { packets } = await readAll(path);
      assert.ok(Math.abs(packets[0].time - time) < 1e-3, `${packets[0].time}`);
    }
  });

  test('pcapng: sections in both byte orders, interfaces with their own link type, name and timestamp resolution', async () => {
    const dir = tempDir();
    const ethernet = (await readAll(fixture('real', 'knocks.pcap'))).packets;
    const cooked = (await readAll(fixture('real', 'knocks-any-sll.pcap'))).packets;
    const sections: NgSection[] = [
      {
        interfaces: [{ linkType: 1, name: 'vfx0' }, { linkType: 113, name: 'any', tsresol: 9 }],
        blocks: [
          ...ethernet.slice(0, 30).map((p): NgBlock => ({ kind: 'epb', iface: 0, time: p.time, data: p.data })),
          { kind: 'other', type: 5, body: new Uint8Array(24) }, // interface statistics: skipped
          ...cooked.slice(0, 10).map((p): NgBlock => ({ kind: 'epb', iface: 1, time: p.time, data: p.data })),
        ],
      },
      {
        bigEndian: true,
        // 2^-20 s units and a 1000 s offset (if_tsoffset), then the obsolete Packet Block.
        interfaces: [{ linkType: 1, name: 'eth9', tsresol: 0x94, tsoffset: 1000 }],
        blocks: [
          ...ethernet.slice(30, 60).map((p): NgBlock => ({ kind: 'epb', iface: 0, time: p.time, data: p.data })),
          ...ethernet.slice(60, 70).map((p): NgBlock => ({ kind: 'pb', iface: 0, time: p.time, data: p.data })),
        ],
      },
      {
        interfaces: [{ linkType: 1, snapLength: 60 }],
        blocks: ethernet.slice(70).map((p): NgBlock => ({ kind: 'spb', data: p.data.subarray(0, 60), originalLength: p.data.length })),
      },
    ];
    const path = join(dir, 'mixed.pcapng');
    writeFileSync(path, writePcapng(sections));
    const { packets, format } = await readAll(path);
    assert.equal(format, 'pcapng');
    const expected = [
      ...ethernet.slice(0, 30).map((p) => ({ ...p, name: 'vfx0', linkType: 1, index: 0, step: 1e-3 })),
      ...cooked.slice(0, 10).map((p) => ({ ...p, name: 'any', linkType: 113, index: 1, step: 1e-6 })),
      ...ethernet.slice(30, 70).map((p) => ({ ...p, name: 'eth9', linkType: 1, index: 0, step: 1000 / 2 ** 20 })),
    ];
    assert.equal(packets.length, expected.length + 10);
    expected.forEach((e, i) => {
      const p = packets[i];
      assert.ok(sameBytes(p.data, e.data), `packet ${i} bytes`);
      assert.deepEqual(p.iface, { index: e.index, linkType: e.linkType, name: e.name }, `packet ${i} interface`);
      // A double holds ms since the epoch to about 0.25 µs, so finer units cannot be compared more closely.
      assert.ok(Math.abs(p.time - e.time) <= Math.max(e.step, 1e-3), `packet ${i} time ${p.time} vs ${e.time}`);
    });
    // Simple Packet Blocks carry no time: each gets the time of the packet before it.
    const lastTimed = packets[expected.length - 1].time;
    for (const [i, p] of packets.slice(expected.length).entries()) {
      assert.equal(p.data.length, Math.min(60, ethernet[70 + i].data.length));
      assert.equal(p.originalLength, ethernet[70 + i].data.length);
      assert.equal(p.time, lastTimed);
      assert.deepEqual(p.iface, { index: 0, linkType: 1, name: null });
    }
  });

  test('every truncation of a pcap and a pcapng file ends in an error at the cut record, or cleanly on a record boundary', async () => {
    const dir = tempDir();
    const source = (await readAll(fixture('real', 'knocks.pcap'))).packets.slice(0, 6);
    const files = {
      pcap: writePcap({ linkType: 1, packets: source }),
      pcapng: writePcapng([{ interfaces: [{ linkType: 1, name: 'vfx0' }], blocks: source.map((p): NgBlock => ({ kind: 'epb', iface: 0, time: p.time, data: p.data })) }]),
    };
    for (const [format, full] of Object.entries(files)) {
      const records = (await readAll(writeTemp(dir, `${format}-full`, full))).packets.map((p) => p.recordOffset);
      // Where a record (or the file header, or pcapng's section header) starts or the file ends.
      const headerEnd = format === 'pcap' ? 24 : full.readUInt32LE(4);
      const boundaries = [0, headerEnd, ...records.filter((r) => r > headerEnd), full.length];
      for (let length = 1; length < full.length; length++) {
        const { error, delivered } = await readError(writeTemp(dir, `${format}-cut`, full.subarray(0, length)));
        const complete = records.filter((r) => boundaries[boundaries.indexOf(r) + 1] <= length).length;
        if (boundaries.includes(length)) {
          assert.equal(error, null, `${format} cut at ${length} (a record boundary)`);
        } else {
          assert.ok(error instanceof Error, `${format} cut at ${length}: expected an error`);
          assert.match(error.message, /truncated|too short/, `${format} cut at ${length}: ${error.message}`);
          const cutRecord = boundaries.filter((b) => b < length).at(-1);
          assert.ok(error instanceof CaptureFileError && error.offset === cutRecord, `${format} cut at ${length}: offset of ${error.message}, expected ${cutRecord}`);
        }
        assert.equal(delivered, complete, `${format} cut at ${length}: packets before the cut`);
      }
    }
  });

  test('corrupt files: a readable error with the byte offset', async () => {
    const dir = tempDir();
    const packet = { time: 1_795_000_000_000, data: new Uint8Array(60) };
    const classic = writePcap({ linkType: 1, packets: [packet, packet] });
    const hugeRecord = Buffer.from(classic);
    hugeRecord.writeUInt32LE(0x7fffffff, 24 + 16 + 60 + 8);
    const cases: Array<[string, Buffer, RegExp]> = [
      ['huge captured length', hugeRecord, /corrupt packet record: captured length 2147483647 exceeds 262144 at byte offset 100$/],
      ['not a capture', Buffer.from('Nov 21 04:16:16 vm kernel: KNOCK IN=vfx0\n'), /not a pcap or pcapng file \(magic 0x4e6f7620\).* at byte offset 0$/],
      ['empty', Buffer.alloc(0), /file too short to be a pcap or pcapng capture at byte offset 0$/],
    ];
    const ng = writePcapng([{ interfaces: [{ linkType: 1 }], blocks: [{ kind: 'epb', iface: 0, time: packet.time, data: packet.data }] }]);
    const idbAt = ng.readUInt32LE(4);
    const epbAt = idbAt + ng.readUInt32LE(idbAt + 4);
    const corruptNg = (name: string, change: (b: Buffer) => void, message: RegExp): void => {
      const copy = Buffer.from(ng);
      change(copy);
      cases.push([name, copy, message]);
    };
    corruptNg('block length not a multiple of 4', (b) => b.writeUInt32LE(107, epbAt + 4), new RegExp(`corrupt block \\(type 0x6\\): total length 107 at byte offset ${epbAt}$`));
    corruptNg('trailing length differs', (b) => b.writeUInt32LE(12, b.length - 4), new RegExp(`trailing length differs from leading length \\d+ at byte offset ${epbAt}$`));
    corruptNg('unknown interface', (b) => b.writeUInt32LE(3, epbAt + 8), new RegExp(`packet block for interface 3, but only 1 interface\\(s\\) are described at byte offset ${epbAt}$`));
    corruptNg('captured length past the block', (b) => b.writeUInt32LE(500, epbAt + 20), /captured length 500 does not fit in block/);
    corruptNg('byte-order magic', (b) => b.writeUInt32LE(0x12345678, 8), /bad byte-order magic at byte offset 0$/);
    corruptNg('block length 0', (b) => b.writeUInt32LE(0, epbAt + 4), /total length 0 at byte offset/);
    for (const [name, bytes, message] of cases) {
      const { error } = await readError(writeTemp(dir, name.replace(/\W/g, '-'), bytes));
      assert.ok(error instanceof Error, name);
      assert.match(error.message, message, name);
      assert.ok(error.message.startsWith(dir), `${name}: names the file`);
    }
    await assert.rejects(CaptureFileReader.open(join(dir, 'missing.pcap')), /ENOENT/);
  });

  test('an aborted read stops early and says so', async () => {
    const dir = tempDir();
    const packets = Array.from({ length: 20_000 }, (_, i) => ({ time: 1_795_000_000_000 + i, data: new Uint8Array(200) }));
    const path = writeTemp(dir, 'big', writePcap({ linkType: 1, packets }));
    const controller = new AbortController();
    const reader = await CaptureFileReader.open(path);
    let seen = 0;
    const summary = await reader.read(() => {
      if (++seen === 100) controller.abort();
    }, controller.signal);
    assert.equal(summary.aborted, true);
    assert.ok(summary.packets < packets.length, `${summary.packets} packets read`);
    const all = await readAll(path);
    assert.equal(all.summary.packets, packets.length, 'the whole file when not aborted (several chunks)');
    assert.equal(all.summary.aborted, false);
  });
});

function writeTemp(dir: string, name: string, bytes: Uint8Array): string {
  const path = join(dir, `${name}.cap`);
  writeFileSync(path, bytes);
  return path;
}
