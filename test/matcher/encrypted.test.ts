/**
 * Encrypted doors in the matcher (docs/encrypted-knocks.md): knocks on the span reach the door's decoder as hits,
 * an accepted message becomes an open carrying its request, every refusal an event with its reason; and the door
 * lives beside fixed doors (visibility, interleaving, MaxSources, expiry, reload, restart, the watch).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { PortRange } from '../../src/config/types.js';
import { FileUsedKnocks } from '../../src/knocks/used.js';
import { tempDir } from '../helpers.js';
import { random } from '../random.js';
import { A, at, B, C, door, encryptedDoor, knocksOf, Rig } from './support.js';

const KEY = Buffer.from('the key of the encrypted matcher tests');
const SPAN: PortRange[] = [{ proto: 'tcp', first: 30000, last: 30000 + 2 ** 12 - 1 }];
const E = encryptedDoor('E', KEY, SPAN);

/** Knocks `whats` from `src`, 5 ms apart from `seconds` on. */
function knock(rig: Rig, src: string, whats: readonly string[], seconds: number): Rig {
  whats.forEach((what, i) => rig.knock(src, what, seconds + i * 0.005));
  return rig;
}

const refusals = (rig: Rig): string[] => rig.trace('refused').map((line) => line.replace(/ @[-\d.]+$/, ''));

describe('encrypted door: a message opens what it asks for', () => {
  it('the open carries the request: port, duration, and the address the knocks came from', () => {
    const knocks = knocksOf(E, A, 1, { request: { port: 443, duration: 300 } });
    assert.equal(knocks.length, 17, 'a sync knock and 16 data knocks on a span of 2^12');
    const rig = knock(new Rig([E]), A, knocks, 1);
    assert.deepEqual(rig.trace('open').map((line) => line.replace(/ @[\d.]+$/, '')), [`open E ${A} port 443 for 300 from ${A}`]);
    const open = rig.events.find((event) => event.type === 'open');
    assert.equal(open?.time, at(1) + 16 * 5, 'at the last knock');
    assert.equal(rig.matcher.summary().counters.opens, 1);
  });

  it('NAT: a message naming its public address opens for it only with Trust_Knock_IP, and says where the knocks came from', () => {
    const named = knocksOf(E, A, 1, { request: { address: '203.0.113.9' } });
    assert.deepEqual(refusals(knock(new Rig([E]), A, named, 1)), [`refused E ${A} address`]);
    const trusting = encryptedDoor('E', KEY, SPAN, { trustKnockIp: true });
    const rig = knock(new Rig([trusting]), A, named, 1);
    assert.deepEqual(rig.trace('open').map((line) => line.replace(/ @[\d.]+$/, '')), [`open E 203.0.113.9 port 22 for 60 from ${A}`]);
    knock(rig, B, named, 3);
    assert.deepEqual(refusals(rig), [`refused E ${B} replay`], 'a replay from elsewhere opens nothing, not even for the named address');
  });
});

describe('encrypted door: refusals are events with their reason', () => {
  it('replay: the same knocks again from the same source; from another source they do not even authenticate', () => {
    const knocks = knocksOf(E, A, 1);
    const rig = knock(new Rig([E]), A, knocks, 1);
    knock(rig, A, knocks, 5);
    knock(rig, B, knocks, 6);
    rig.matcher.expire(at(60));
    assert.deepEqual(rig.opens(), [`E ${A}`]);
    assert.deepEqual(refusals(rig), [`refused E ${A} replay`, `refused E ${B} auth`]);
    const replay = rig.events.find((event) => event.type === 'refused');
    assert.match(replay?.type === 'refused' ? replay.detail : '', new RegExp(`was used already at ${new Date(at(1) + 80).toISOString()} from ${A.replaceAll('.', '\\.')}`));
    assert.equal(rig.matcher.summary().counters.refused, 2);
  });

  it('port, duration (refused, not cut down), window', () => {
    const cases: Array<[string, string[]]> = [
      ['port', knocksOf(E, A, 1, { request: { port: 2222 } })],
      ['duration', knocksOf(E, A, 1, { request: { duration: 3601 } })],
      ['window', knocksOf(E, A, -61)],
    ];
    for (const [reason, knocks] of cases) assert.deepEqual(refusals(knock(new Rig([E]), A, knocks, 1)), [`refused E ${A} ${reason}`], reason);
    assert.deepEqual(knock(new Rig([E]), A, knocksOf(E, A, 1, { request: { duration: 3600 } }), 1).opens(), [`E ${A}`], 'Max_Duration itself is allowed');
  });

  it('a tampered knock (one port changed) opens nothing: the message fails authentication or never completes', () => {
    const next = random(0x7461);
    let tried = 0;
    for (let position = 0; position < 17; position++) {
      const knocks = knocksOf(E, A, 1);
      const port = Number(knocks[position]!.slice(4));
      knocks[position] = `tcp/${30000 + ((port - 30000 + 1 + Math.floor(next() * 4095)) % 4096)}`;
      const rig = knock(new Rig([E]), A, knocks, 1);
      rig.matcher.expire(at(120));
      assert.deepEqual(rig.opens(), [], `knock ${position}`);
      tried++;
    }
    assert.equal(tried, 17);
  });

  it('a message that never completes ends at Seq_Timeout, reported at its deadline by the matcher', () => {
    const short = encryptedDoor('E', KEY, SPAN, {}, { seqTimeout: 5 });
    const rig = knock(new Rig([short]), A, knocksOf(short, A, 1).slice(0, 6), 1);
    assert.equal(rig.matcher.nextDeadline(), at(6));
    rig.matcher.expire(at(6));
    assert.deepEqual(rig.trace('refused'), [`refused E ${A} incomplete @6`]);
    assert.equal(rig.matcher.nextDeadline(), null);
  });
});

describe('encrypted door: what never opens', () => {
  it('random knocks on the span from many sources, and full scans of it in order, backwards and shuffled', () => {
    const next = random(0x7370616e);
    const rig = new Rig([E], { maxSources: 100_000 });
    let sequences = 0;
    let knocks = 0;
    for (let i = 0; i < 2000; i++) {
      const source = `10.7.${i >> 8}.${i & 255}`;
      const length = 10 + Math.floor(next() * 20);
      for (let j = 0; j < length; j++) rig.knock(source, `tcp/${30000 + Math.floor(next() * 4096)}`, i * 0.05 + j * 0.001);
      sequences++;
      knocks += length;
    }
    const ordered = Array.from({ length: 4096 }, (_, p) => 30000 + p);
    const shuffled = [...ordered].sort(() => next() - 0.5);
    for (const [n, scan] of [ordered, [...ordered].reverse(), shuffled].entries()) {
      scan.forEach((port, j) => rig.knock(`192.0.2.${200 + n}`, `tcp/${port}`, 100 + n * 10 + j * 0.001));
      sequences++;
    }
    rig.matcher.expire(at(3600));
    assert.deepEqual(rig.opens(), []);
    assert.equal(sequences, 2003);
    assert.ok(knocks > 2000 * 10);
    // Random knocks hit a sync value now and then: the messages they start are tried and end refused, never opened.
    assert.ok(rig.matcher.summary().counters.refused > 0, 'some random knocks were taken for messages, and refused');
  });
});

describe('encrypted door beside other traffic and other doors', () => {
  it('interleaved: two sources at once, a source\'s own strays on the span, and its knocks on a fixed door', () => {
    const rig = new Rig([door('F', '7000,8000'), E]);
    const a = knocksOf(E, A, 1);
    const b = knocksOf(E, B, 1, { request: { port: 443 } });
    const next = random(0x696e74);
    a.forEach((what, i) => {
      rig.knock(A, what, 1 + i * 0.01).knock(B, b[i]!, 1 + i * 0.01);
      if (i === 3) rig.knock(A, 'tcp/7000', 1.035);
      if (i === 7) rig.knock(A, 'tcp/8000', 1.075);
      if (i % 4 === 1) rig.knock(A, `tcp/${30000 + Math.floor(next() * 4096)}`, 1 + i * 0.01 + 0.005);
    });
    assert.deepEqual(rig.opens().sort(), [`E ${A}`, `E ${B}`, `F ${A}`]);
  });

  it('Door.admits applies: TCPFlags and Allow_From hide knocks from the door', () => {
    const picky = encryptedDoor('E', KEY, SPAN, {}, { flags: 'syn,!ack', allow: ['10.88.0.2/32'] });
    const knocks = knocksOf(picky, A, 1);
    const rig = new Rig([picky]);
    knocks.forEach((what, i) => rig.knock(A, what, 1 + i * 0.01).knock(A, what, 1 + i * 0.01 + 0.001, { flags: 'SA' }));
    knock(rig, B, knocksOf(picky, B, 1), 2);
    rig.matcher.expire(at(60));
    assert.deepEqual(rig.opens(), [`E ${A}`], 'the ACKs were invisible; B may not knock at all');
    assert.deepEqual(rig.trace('refused'), []);
  });

  it('MaxSources bounds the sources with a message in progress', () => {
    const rig = new Rig([E], { maxSources: 2 });
    for (const [i, source] of [A, B, C].entries()) knock(rig, source, knocksOf(E, source, 1).slice(0, 3), 1 + i);
    assert.deepEqual(rig.trace('evicted'), [`evicted ${A} 1 @3`]);
    assert.equal(rig.matcher.summary().sources, 2);
  });

  it('a used message stays used after a restart (the table in the state directory)', () => {
    const file = join(tempDir('knocktail-encrypted-'), 'used-knocks.json');
    const knocks = knocksOf(E, A, 1);
    assert.deepEqual(knock(new Rig([E], { usedKnocks: new FileUsedKnocks(file, at(0), assert.fail) }), A, knocks, 1).opens(), [`E ${A}`]);
    const after = knock(new Rig([E], { usedKnocks: new FileUsedKnocks(file, at(5), assert.fail) }), A, knocks, 6);
    assert.deepEqual(refusals(after), [`refused E ${A} replay`]);
  });

  it('reload keeps a message in progress on an unchanged door, and drops it when the key changes', () => {
    const knocks = knocksOf(E, A, 1);
    const kept = knock(new Rig([E]), A, knocks.slice(0, 5), 1);
    kept.matcher.reload([encryptedDoor('E', KEY, SPAN, {}, { startCommand: 'other' })]);
    knock(kept, A, knocks.slice(5), 1.025);
    assert.deepEqual(kept.opens(), [`E ${A}`]);
    const dropped = knock(new Rig([E]), A, knocks.slice(0, 5), 1);
    dropped.matcher.reload([encryptedDoor('E', Buffer.from('another key of the encrypted tests'), SPAN)]);
    assert.equal(dropped.matcher.summary().sources, 0);
  });

  it('watch(): the span for inputs', () => {
    const split = encryptedDoor('S', KEY, [{ proto: 'tcp', first: 20000, last: 20127 }, { proto: 'udp', first: 20000, last: 20127 }]);
    const watch = new Rig([split]).matcher.watch();
    assert.deepEqual(watch.sequences, []);
    assert.deepEqual(watch.ranges.map((range) => range.ranges), [split.encrypted!.span]);
    assert.deepEqual([watch.watches('tcp', 20127), watch.watches('udp', 20000), watch.watches('tcp', 20128)], [true, true, false]);
  });
});
