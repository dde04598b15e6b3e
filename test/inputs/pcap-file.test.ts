import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { formatFlags, type KnockHit, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG } from '../../src/hit.js';
import { PcapFileInput } from '../../src/inputs/pcap-file.js';
import { fixture, tempDir } from '../helpers.js';
import { STEP_TIMES } from '../steps.js';
import { buildPacket, type NgBlock, writePcap, writePcapng } from '../packet/gen.js';
import { portWatch } from '../formats/support.js';

/** One expected packet of a step: a knock (dport/proto, flags) or the server's RST/ACK reply to the knock before it. */
type Expected = { port: number; proto: 'tcp' | 'udp'; flags: number } | { replyFrom: number };

const SYN = TCP_SYN;
const tcp = (flags: number, ...ports: number[]): Expected[] => ports.map((port) => ({ port, proto: 'tcp', flags }));
const udp = (...ports: number[]): Expected[] => ports.map((port) => ({ port, proto: 'udp', flags: 0 }));
const S1 = tcp(SYN, 7000, 8000, 9000);
const S2 = udp(7000, 8000, 9000);
const S3: Expected[] = [...udp(2222), ...tcp(SYN, 3333), ...udp(4444)];
const REVERSED = tcp(SYN, 9000, 8000, 7000);
/** hping3/raw6tcp sends one packet per port, each its own step (`A12.7000`, …). */
const perPort = (id: string, flags: number): Array<[string, Expected[]]> => [7000, 8000, 9000].map((port) => [`${id}.${port}`, tcp(flags, port)]);
/** A loopback knock answered with RST/ACK (phase C). */
const answered = (...ports: number[]): Expected[] => ports.flatMap((port): Expected[] => [...tcp(SYN, port), { replyFrom: port }]);

/** The MANIFEST's phase tables: every TCP/UDP packet a step sent (ARP and ICMP are not hits). */
const GROUND_TRUTH: ReadonlyMap<string, Expected[]> = new Map([
  ['A01', S1],
  ['A02', S2],
  ['A03', S3],
  ['A04', S1],
  ['A05', REVERSED],
  ['A06', tcp(SYN, 7000, 9000, 8000)],
  ['A07', tcp(SYN, 7000, 8000)],
  ['A08', tcp(SYN, 7000, 5555, 8000, 9000)],
  ['A09', [...tcp(SYN, 2222, 3333), ...udp(4444)]],
  ['A10', udp(2222, 3333, 4444)],
  ['A11', tcp(SYN, 7000, 7000, 8000, 9000)],
  ...perPort('A12', TCP_FIN),
  ...perPort('A13', TCP_ACK),
  ...perPort('A14', TCP_SYN | TCP_ACK),
  ...perPort('A15', TCP_RST),
  ...perPort('A16', TCP_PSH),
  ...perPort('A17', TCP_URG),
  ...perPort('A18', TCP_FIN | TCP_PSH | TCP_URG),
  ...perPort('A19', 0),
  ...perPort('A20', SYN),
  ['A21', tcp(SYN, 22, 80)],
  ['A22', udp(53)],
  ['A23', []],
  ['A24', [...tcp(SYN, 5555), ...udp(6666), ...tcp(SYN, 7001)]],
  ['A25', S1],
  ['B01', S1],
  ['B02', S2],
  ['B03', S3],
  ['B04', REVERSED],
  ['B05', tcp(SYN, 22)],
  ['B06', tcp(SYN, 7000, 5555, 8000, 9000)],
  ...perPort('B07', TCP_FIN),
  ...perPort('B08', TCP_ACK),
  ...perPort('B09', TCP_SYN | TCP_ACK),
  ...perPort('B10', TCP_RST),
  ['B11', S1],
  ['C01', answered(7000, 8000, 9000)],
  ['C02', S2],
  ['C03', answered(7000, 8000, 9000)],
  ['C04', answered(9000, 8000, 7000)],
  ['D01', S1],
  ['D02', S2],
  ['D03', S3],
  ['D04', REVERSED],
  ...perPort('D05', TCP_FIN),
  ...perPort('D06', TCP_SYN | TCP_ACK),
  ['D07', tcp(SYN, 22)],
  ['D08', S1],
  ['D09', S2],
  ['D10', tcp(SYN, 7000)],
  ['D11', S1],
  ['F01', S1],
  ['F02', S2],
  ['F03', S3],
  ['F04', REVERSED],
  ...perPort('F05', TCP_FIN),
  ['F06', S1],
  ['F07', S2],
  ['F08', S1],
]);

/** Client and server of each step: fxb → fxa, except phase C (fxa knocking on itself); IPv6 in B, C03, D08, D09, F06, F07. */
function endpoints(step: string): { src: string; dst: string } {
  const v6 = step.startsWith('B') || ['C03', 'D08', 'D09', 'F06', 'F07'].includes(step);
  if (step.startsWith('C')) return v6 ? { src: 'fd66::1', dst: 'fd66::1' } : { src: '10.66.0.1', dst: '10.66.0.1' };
  return v6 ? { src: 'fd66::2', dst: 'fd66::1' } : { src: '10.66.0.2', dst: '10.66.0.1' };
}

/** Step windows from groundtruth.tsv, for the steps of the table above. */
function stepWindows(): Array<{ id: string; start: number; end: number }> {
  return [...STEP_TIMES].filter(([id]) => GROUND_TRUTH.has(id)).map(([id, { start, end }]) => ({ id, start, end }));
}

async function replay(path: string): Promise<{ hits: KnockHit[]; input: PcapFileInput }> {
  const input = new PcapFileInput(path);
  const hits: KnockHit[] = [];
  for await (const batch of input.batches()) hits.push(...batch);
  return { hits, input };
}

const describeHit = (h: KnockHit): string => `${h.src} > ${h.dst} ${h.proto}/${h.dport} [${formatFlags(h.flags ?? 0)}]`;

const FILES: Array<{ name: string; phases: string; packets: number; hits: number }> = [
  { name: 'knocks', phases: 'A', packets: 80, hits: 70 },
  { name: 'knocks6', phases: 'B', packets: 32, hits: 32 },
  { name: 'knocks-any', phases: 'ABC', packets: 136, hits: 123 },
  { name: 'knocks-any-sll', phases: 'D', packets: 33, hits: 29 },
  { name: 'loopback', phases: 'C', packets: 24, hits: 21 },
  { name: 'ufw-knocks', phases: 'F', packets: 26, hits: 24 },
];

describe('pcap file input', () => {
  const windows = stepWindows();

  for (const file of FILES) {
    test(`${file.name}.pcap: the exact TCP/UDP hits of every step of phase ${file.phases}, in file order`, async () => {
      const path = fixture('real', `${file.name}.pcap`);
      const { hits, input } = await replay(path);
      assert.deepEqual(input.summary(), { packets: file.packets, hits: file.hits, skipped: file.packets - file.hits });
      assert.equal(hits.length, file.hits);
      for (let i = 1; i < hits.length; i++) assert.ok(hits[i].time >= hits[i - 1].time, 'file order is time order here');
      const steps = windows.filter((w) => file.phases.includes(w.id[0]));
      let assigned = 0;
      for (const step of steps) {
        const inStep = hits.filter((h) => h.time >= step.start && h.time <= step.end);
        assigned += inStep.length;
        const expected = GROUND_TRUTH.get(step.id)!;
        const { src, dst } = endpoints(step.id);
        assert.equal(inStep.length, expected.length, `${step.id}: ${inStep.map(describeHit).join(', ')}`);
        inStep.forEach((hit, i) => {
          const want = expected[i];
          if ('replyFrom' in want) {
            const knock = inStep[i - 1];
            assert.deepEqual(
              { src: hit.src, dst: hit.dst, proto: hit.proto, sport: hit.sport, dport: hit.dport, flags: hit.flags },
              { src: dst, dst: src, proto: 'tcp', sport: want.replyFrom, dport: knock.sport, flags: TCP_RST | TCP_ACK },
              `${step.id} packet ${i}: reply`,
            );
          } else {
            assert.deepEqual({ src: hit.src, dst: hit.dst, proto: hit.proto, dport: hit.dport, flags: hit.flags }, { src, dst, proto: want.proto, dport: want.port, flags: want.flags }, `${step.id} packet ${i}`);
          }
          assert.equal(hit.input, path);
          assert.ok(Number.isInteger(hit.sport));
          // SLL2 names the interface by index: vfx0 = 2, lo = 1 inside the capturing namespace.
          assert.equal(hit.iface, file.name === 'knocks-any' ? (step.id.startsWith('C') ? 'ifindex:1' : 'ifindex:2') : null, `${step.id} interface`);
        });
      }
      assert.equal(assigned, hits.length, 'every hit belongs to a step of the ground truth');
    });
  }

  test('the first phase-A knock carries the capture time 04:16:16.716852Z, to the microsecond', async () => {
    const { hits } = await replay(fixture('real', 'knocks.pcap'));
    assert.equal(Math.round(hits[0].time * 1000), Date.parse('2026-11-21T04:16:16.716Z') * 1000 + 852);
  });

  test('pcapng: interface names from the IDB, SLL2 interface index when the IDB says any', async () => {
    const dir = tempDir();
    const path = join(dir, 'named.pcapng');
    const eth = buildPacket({ link: 'ethernet', src: '192.0.2.2', dst: '192.0.2.1', proto: 'tcp', dport: 7000, flags: SYN }).bytes;
    const cooked = buildPacket({ link: 'sll2', src: '192.0.2.2', dst: '192.0.2.1', proto: 'udp', dport: 8000, ifindex: 5 }).bytes;
    const blocks: NgBlock[] = [
      { kind: 'epb', iface: 0, time: 1_795_000_000_000, data: eth },
      { kind: 'epb', iface: 1, time: 1_795_000_000_001.5, data: cooked },
      { kind: 'epb', iface: 2, time: 1_795_000_000_002, data: eth },
    ];
    writeFileSync(path, writePcapng([{ interfaces: [{ linkType: 1, name: 'eth0' }, { linkType: 276, name: 'any' }, { linkType: 1 }], blocks }]));
    const { hits, input } = await replay(path);
    assert.deepEqual(
      hits.map((h) => [h.iface, h.proto, h.dport, h.time]),
      [
        ['eth0', 'tcp', 7000, 1_795_000_000_000],
        ['ifindex:5', 'udp', 8000, 1_795_000_000_001.5],
        [null, 'tcp', 7000, 1_795_000_000_002],
      ],
    );
    assert.deepEqual(input.summary(), { packets: 3, hits: 3, skipped: 0 });
  });

  test('with a port check, batches() delivers only packets to watched ports, addresses and all', async () => {
    const all = (await replay(fixture('real', 'knocks.pcap'))).hits.filter((h) => h.dport === 8000 && h.proto === 'tcp');
    const input = new PcapFileInput(fixture('real', 'knocks.pcap'), portWatch((proto, port) => proto === 'tcp' && port === 8000));
    const watched: KnockHit[] = [];
    for await (const batch of input.batches()) watched.push(...batch);
    assert.ok(all.length > 0);
    assert.deepEqual(watched, all);
    assert.equal(input.summary().hits, all.length);
  });

  test('a corrupt file: the hits before the damage, then the reader throws naming the byte offset', async () => {
    const dir = tempDir();
    const frame = buildPacket({ link: 'ethernet', src: '192.0.2.2', dst: '192.0.2.1', proto: 'tcp', dport: 7000, flags: SYN }).bytes;
    const file = writePcap({ linkType: 1, packets: [0, 1, 2].map((i) => ({ time: 1_795_000_000_000 + i, data: frame })) });
    const path = join(dir, 'cut.pcap');
    writeFileSync(path, file.subarray(0, file.length - 10));
    const hits: KnockHit[] = [];
    const recordSize = 16 + frame.length;
    await assert.rejects(collectInto(new PcapFileInput(path), hits), {
      name: 'CaptureFileError',
      message: `${path}: truncated packet record: ${frame.length} captured bytes announced, ${frame.length - 10} present at byte offset ${24 + 2 * recordSize}`,
    });
    assert.equal(hits.length, 2);
  });

  test('an unsupported link type is reported once, when its first packet comes', async () => {
    const dir = tempDir();
    const path = join(dir, 'wifi.pcap');
    writeFileSync(path, writePcap({ linkType: 127, packets: [1, 2, 3].map((i) => ({ time: i, data: new Uint8Array(80) })) }));
    const hits: KnockHit[] = [];
    await assert.rejects(collectInto(new PcapFileInput(path), hits), (error: Error) => error.message.startsWith(`${path}: the capture: IEEE802_11_RADIOTAP (Wi-Fi monitor mode) (127) is not a link type`));
  });

  test('batches() rejects for a file that is missing or not a capture; a consumer that stops early stops the reading', async () => {
    const dir = tempDir();
    await assert.rejects(collectInto(new PcapFileInput(join(dir, 'missing.pcap')), []), /ENOENT/);
    const text = join(dir, 'kern.log');
    writeFileSync(text, readFileSync(fixture('real', 'iptables-kernlog.log')));
    await assert.rejects(collectInto(new PcapFileInput(text), []), /not a pcap or pcapng file/);

    const frame = buildPacket({ link: 'ethernet', src: '192.0.2.2', dst: '192.0.2.1', proto: 'udp', dport: 7000 }).bytes;
    const path = join(dir, 'long.pcap');
    writeFileSync(path, writePcap({ linkType: 1, packets: Array.from({ length: 200_000 }, (_, i) => ({ time: 1_795_000_000_000 + i, data: frame })) }));
    const input = new PcapFileInput(path);
    for await (const batch of input.batches()) {
      assert.ok(batch.length > 0);
      break;
    }
    const { hits } = input.summary();
    assert.ok(hits < 200_000 && hits > 0, `${hits} hits read before the consumer stopped`);
  });
});

/** Reads every batch into `hits`; rejects with the reader's error. */
async function collectInto(input: PcapFileInput, hits: KnockHit[]): Promise<void> {
  for await (const batch of input.batches()) hits.push(...batch);
}
