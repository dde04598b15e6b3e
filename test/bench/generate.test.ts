/**
 * The benchmark's inputs: deterministic, with the mix the issue asks for, and readable by knocktail itself
 * (every generated log line parses with the shipped iptables format; the pcap holds the same packets).
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CORPUS_DEFAULTS, CORPUS_MTIME_MS, corpusLine, KNOCK_PORTS, packets, writeCorpus, writeCorpusPcap } from '../../bench/generate.js';
import { FormatRegistry, LineDecoder } from '../../src/formats/registry.js';
import { CaptureFileReader } from '../../src/packet/pcap-file.js';
import { emptyPacketFields, packetParser } from '../../src/packet/parse.js';
import { tempDir } from '../helpers.js';
import { hitOf } from '../formats/support.js';

const COUNT = 20_000;

function firstPackets(count: number, seed = CORPUS_DEFAULTS.seed) {
  const out = [];
  for (const p of packets({ ...CORPUS_DEFAULTS, seed })) {
    if (out.length === count) break;
    out.push(p);
  }
  return out;
}

describe('benchmark corpus', () => {
  it('is the same for the same seed and differs for another', () => {
    const dir = tempDir();
    writeCorpus(join(dir, 'a.log'), 2000);
    writeCorpus(join(dir, 'b.log'), 2000);
    writeCorpus(join(dir, 'c.log'), 2000, { ...CORPUS_DEFAULTS, seed: 2 });
    const [a, b, c] = ['a', 'b', 'c'].map((name) => readFileSync(join(dir, `${name}.log`), 'utf8'));
    assert.equal(a, b);
    assert.notEqual(a, c);
    assert.equal(a.split('\n').length, 2001);
  });

  it('has the mix of the reference generator: 25 % knock lines, 10 % UDP, 5 % IPv6', () => {
    const sample = firstPackets(COUNT);
    const share = (test: (p: (typeof sample)[number]) => boolean): number => sample.filter(test).length / sample.length;
    assert.ok(Math.abs(share((p) => p.knock) - 0.25) < 0.01);
    assert.ok(Math.abs(share((p) => p.udp) - 0.1) < 0.01);
    assert.ok(Math.abs(share((p) => p.v6) - 0.05) < 0.01);
    assert.ok(sample.every((p) => !p.knock || (KNOCK_PORTS as readonly number[]).includes(p.dport)));
    assert.ok(sample.every((p, i) => i === 0 || p.time >= sample[i - 1]!.time), 'time only moves forward');
  });

  it('writes lines the shipped iptables format reads back field for field', () => {
    const decoder = new LineDecoder([FormatRegistry.load(null).get('iptables')]);
    const ctx = { input: 'corpus', reference: CORPUS_MTIME_MS, bootTime: 0, fallbackTime: 0, arrival: null };
    let previous = -Infinity;
    for (const p of firstPackets(COUNT)) {
      const line = corpusLine(p);
      const hit = hitOf(decoder.decode(line, ctx));
      assert.ok(hit !== null, `not parsed: ${line}`);
      assert.equal(hit.proto, p.udp ? 'udp' : 'tcp');
      assert.equal(hit.dport, p.dport);
      assert.equal(hit.sport, p.sport);
      assert.equal(hit.src.includes(':'), p.v6);
      assert.ok(hit.time >= previous && hit.time <= CORPUS_MTIME_MS, 'stamps in order and before the file time');
      previous = hit.time;
    }
  });

  it('stamps the log file so its year-less stamps fall in one year', () => {
    const file = join(tempDir(), 'corpus.log');
    writeCorpus(file, 10);
    assert.equal(statSync(file).mtimeMs, CORPUS_MTIME_MS);
  });

  it('writes a pcap file with the same packets', async () => {
    const file = join(tempDir(), 'corpus.pcap');
    const expected = firstPackets(COUNT);
    assert.equal(writeCorpusPcap(file, COUNT), statSync(file).size);
    const reader = await CaptureFileReader.open(file);
    const fields = emptyPacketFields();
    const seen: Array<{ src: string; dport: number; proto: string; flags: number; time: number }> = [];
    const summary = await reader.read((packet) => {
      assert.ok(packetParser(packet.interface.linkType)(packet.buffer, packet.offset, packet.offset + packet.capturedLength, fields));
      seen.push({ src: fields.src, dport: fields.dport, proto: fields.proto, flags: fields.flags, time: packet.time });
    });
    assert.equal(summary.packets, COUNT);
    for (let i = 0; i < COUNT; i++) {
      const p = expected[i]!;
      assert.equal(seen[i]!.dport, p.dport);
      assert.equal(seen[i]!.proto, p.udp ? 'udp' : 'tcp');
      assert.equal(seen[i]!.flags, p.udp ? 0 : 0x02);
      // The pcap carries canonical addresses: compare IPv4 text directly, IPv6 by family.
      if (!p.v6) assert.equal(seen[i]!.src, p.src);
      else assert.ok(seen[i]!.src.startsWith('2001:db8:'));
    }
  });
});
