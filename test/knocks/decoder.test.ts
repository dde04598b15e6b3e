import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeFileSync } from 'node:fs';
import { parseConfigText } from '../../src/config/parse.js';
import { ATTEMPTS_PER_KNOCK, encryptedDoorSpec, KnockDecoder } from '../../src/knocks/decoder.js';
import { checkOf, deriveDoorKeys, encodeMessage, firstCheckState, nextCheckState, slotOf, slotPattern } from '../../src/knocks/format.js';
import { FileUsedKnocks, MemoryUsedKnocks } from '../../src/knocks/used.js';
import { tempDir } from '../helpers.js';
import { random } from '../random.js';
import { decoder, feed, message, opens, reasons, spec, T0 } from './message-support.js';

const CLIENT = '192.0.2.7';

describe('encryptedDoorSpec', () => {
  it('builds the decoder of a parsed door: its key, span, allowed ranges, caps, window and Seq_Timeout', () => {
    const dir = tempDir();
    try {
      const secret = Buffer.from('fedcba9876543210fedcba9876543210');
      writeFileSync(join(dir, 'web.key'), secret, { mode: 0o600 });
      const config = parseConfigText(
        '[web admin]\nKnock_Key = web.key\nPort_Span = 20000-20255:udp, 21000-21255\nAllowed_Ports = 22, 8000-8099\nMax_Duration = 900\nKnock_Window = 30\nSeq_Timeout = 10\nTrust_Knock_IP = yes\n',
        join(dir, 'knocktail.conf'),
      );
      const door = encryptedDoorSpec(config.doors[0]!);
      assert.deepEqual(door.keys, deriveDoorKeys(secret, 'web admin'));
      assert.equal(door.span.bits, 9);
      assert.deepEqual([door.span.valueOf('udp', 20000), door.span.valueOf('tcp', 21000), door.span.valueOf('tcp', 20000)], [0, 256, -1]);
      assert.deepEqual([21, 22, 23, 7999, 8000, 8099, 8100].map(door.allowsPort), [false, true, false, false, true, true, false]);
      assert.deepEqual([door.maxDuration, door.windowMs, door.timeoutMs, door.trustKnockIp, door.name], [900, 30_000, 10_000, true, 'web admin']);
      const values = encodeMessage(deriveDoorKeys(secret, 'web admin'), 9, { request: { port: 8080, duration: 900, address: null }, time: Math.floor(T0 / 1000), nonce: Buffer.from('c0ffee00', 'hex'), source: CLIENT });
      assert.deepEqual(reasons(feed(decoder(door), CLIENT, values)), ['open']);
      assert.throws(() => encryptedDoorSpec(parseConfigText('[plain]\nSequence = 7000\n', join(dir, 'k.conf')).doors[0]!), /has no Knock_Key/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('KnockDecoder: messages that open', () => {
  for (const bits of [8, 10, 12, 15]) {
    for (const address of [null, '192.0.2.7', '2001:db8::7']) {
      it(`decodes a message ${address === null ? 'without an address' : `naming ${address}`} on a span of 2^${bits}`, () => {
        const door = spec({ bits });
        const target = decoder(door);
        const source = address ?? CLIENT;
        const outcomes = feed(target, source, message(door, { request: { port: 443, duration: 900, address }, source }), T0 + 500);
        assert.deepEqual(reasons(outcomes), ['open']);
        const [open] = opens(outcomes);
        assert.deepEqual(open!.request, { port: 443, duration: 900, address });
        assert.equal(open!.openFor, source);
        assert.equal(open!.messageTime, Math.floor(T0 / 1000) * 1000);
        assert.equal(target.size, 0, 'nothing is kept once the message decoded');
      });
    }
  }

  it('opens for the named address with Trust_Knock_IP, and says where the knocks came from', () => {
    const door = spec({ trust: true });
    const [open] = opens(feed(decoder(door), '198.51.100.1', message(door, { request: { address: '203.0.113.9' } })));
    assert.equal(open!.openFor, '203.0.113.9');
    assert.equal(open!.source, '198.51.100.1');
  });

  it('accepts clocks apart by up to Knock_Window, across slot boundaries', () => {
    const door = spec({ window: 60 });
    // The window is measured from the message's whole-second stamp to its last knock, a few ms after T0.
    for (const skew of [-59, -33, -32, -31, -1, 1, 31, 32, 33, 59, 60]) {
      const target = decoder(door);
      const outcomes = feed(target, CLIENT, message(door, { time: T0 + skew * 1000 }), T0);
      assert.deepEqual(reasons(outcomes), ['open'], `message ${skew} s from the knocks`);
    }
  });
});

describe('KnockDecoder: refusals, each with its reason', () => {
  it('auth: a message without an address, knocked from another source (a replay elsewhere, or NAT)', () => {
    const door = spec();
    const target = decoder(door);
    assert.deepEqual(feed(target, '192.0.2.99', message(door, { source: CLIENT })), []);
    const outcomes = target.expire(T0 + 25_000);
    assert.deepEqual(reasons(outcomes), ['auth']);
    assert.match((outcomes[0] as { detail: string }).detail, /failed authentication.*NAT/);
  });

  it('incomplete: the last knock never came', () => {
    const door = spec();
    const target = decoder(door);
    feed(target, CLIENT, message(door).slice(0, -1));
    assert.equal(target.nextDeadline(), T0 + 25_000);
    assert.deepEqual(target.expire(T0 + 24_999), []);
    const outcomes = target.expire(T0 + 25_000);
    assert.deepEqual(reasons(outcomes), ['incomplete']);
    assert.match((outcomes[0] as { detail: string }).detail, /11 of 12 data knocks/);
    assert.equal(target.size, 0);
    assert.equal(target.nextDeadline(), null);
  });

  it('window: stamped further from the knock than Knock_Window (in a slot the window still touches)', () => {
    const door = spec({ window: 60 });
    // T0 is 10 s into its slot: a message stamped 61-70 s earlier lies in a slot that ends within the window.
    const outcomes = feed(decoder(door), CLIENT, message(door, { time: T0 - 61_000 }));
    assert.deepEqual(reasons(outcomes), ['window']);
    assert.match((outcomes[0] as { detail: string }).detail, /61 s before the knock \(Knock_Window 60 s\)/);
  });

  it('a message from a slot the window does not touch is not even recognised: its knocks are noise', () => {
    const door = spec({ window: 60 });
    const target = decoder(door);
    assert.deepEqual(feed(target, CLIENT, message(door, { time: T0 - 3600_000 })), []);
    assert.equal(target.counters.syncs, 0);
    assert.equal(target.size, 0);
  });

  it('port: a port Allowed_Ports does not list', () => {
    const door = spec({ allowed: [22] });
    const outcomes = feed(decoder(door), CLIENT, message(door, { request: { port: 23 } }));
    assert.deepEqual(reasons(outcomes), ['port']);
    assert.deepEqual((outcomes[0] as { request: unknown }).request, { port: 23, duration: 60, address: null });
  });

  it('duration: longer than Max_Duration (refused, not cut down)', () => {
    const door = spec({ maxDuration: 600 });
    assert.deepEqual(reasons(feed(decoder(door), CLIENT, message(door, { request: { duration: 601 } }))), ['duration']);
    assert.deepEqual(reasons(feed(decoder(door), CLIENT, message(door, { request: { duration: 600 } }))), ['open']);
  });

  it('address: names another address than the knocks came from, without Trust_Knock_IP; the message stays unused', () => {
    const door = spec({ trust: false });
    const seen = new MemoryUsedKnocks();
    const values = message(door, { request: { address: '203.0.113.9' } });
    assert.deepEqual(reasons(feed(decoder(door, seen), '198.51.100.1', values)), ['address']);
    assert.deepEqual(reasons(feed(decoder(door, seen), '203.0.113.9', values)), ['open'], 'the genuine knocks still work');
  });

  it('replay: the same knocks again, from the same or another source, with or without an address', () => {
    const door = spec({ trust: true });
    const target = decoder(door);
    const bound = message(door);
    const named = message(door, { request: { address: '203.0.113.9' } });
    assert.deepEqual(reasons(feed(target, CLIENT, bound)), ['open']);
    assert.deepEqual(reasons(feed(target, CLIENT, bound, T0 + 5000)), ['replay']);
    assert.deepEqual(reasons(feed(target, '203.0.113.9', named)), ['open']);
    assert.deepEqual(reasons(feed(target, '198.51.100.1', named, T0 + 5000)), ['replay']);
    assert.deepEqual(reasons(feed(target, '203.0.113.9', named, T0 + 9000)), ['replay']);
    assert.equal(target.counters.opened, 2);
  });

  it('replay: survives a restart through the state file', () => {
    const dir = tempDir();
    try {
      const file = join(dir, 'seen.json');
      const door = spec();
      const values = message(door);
      assert.deepEqual(reasons(feed(decoder(door, new FileUsedKnocks(file, T0, assert.fail)), CLIENT, values)), ['open']);
      assert.deepEqual(reasons(feed(decoder(door, new FileUsedKnocks(file, T0 + 1000, assert.fail)), CLIENT, values, T0 + 1000)), ['replay']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('unrecorded: a message that cannot be recorded as used opens nothing', () => {
    const dir = tempDir();
    try {
      const sub = join(dir, 'state');
      mkdirSync(sub);
      const seen = new FileUsedKnocks(join(sub, 'seen.json'), T0, assert.fail);
      rmSync(sub, { recursive: true });
      const door = spec();
      const outcomes = feed(decoder(door, seen), CLIENT, message(door));
      assert.deepEqual(reasons(outcomes), ['unrecorded']);
      assert.match((outcomes[0] as { detail: string }).detail, /cannot save/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('malformed: authentic, but with a time offset no client writes', async () => {
    const { referenceVector } = await import('./reference.js');
    const door = spec({ bits: 15 });
    const time = Math.floor(T0 / 1000);
    const vector = referenceVector({
      name: 'offset 32',
      keyFile: Buffer.from('a test key of thirty-two bytes!!').toString('hex'),
      door: 'ssh',
      portSpan: '30000-62767',
      time,
      nonce: '0badc0de',
      request: { port: 22, duration: 60, address: null },
      source: CLIENT,
      plaintextOverride: '200016003c',
    });
    assert.deepEqual(reasons(feed(decoder(door), CLIENT, vector.values)), ['malformed']);
  });

  it('evicted: beyond the cap on sources with a message in progress, the oldest goes', () => {
    const door = spec();
    const target = decoder(door, new MemoryUsedKnocks(), 2);
    const outcomes = ['192.0.2.1', '192.0.2.2', '192.0.2.3'].flatMap((source) => feed(target, source, message(door).slice(0, 3)));
    assert.deepEqual(outcomes.map((outcome) => `${outcome.type === 'refused' ? outcome.reason : 'open'} ${outcome.source}`), ['evicted 192.0.2.1']);
    assert.equal(target.size, 2);
  });
});

describe('KnockDecoder: what never decodes', () => {
  it('a message with any one knock changed (a data bit, a check bit, or another value)', () => {
    const door = spec({ bits: 12 });
    const next = random(12);
    let tried = 0;
    for (let position = 0; position < 15; position++) {
      for (const change of ['data', 'check', 'other'] as const) {
        const values = message(door);
        const original = values[position]!;
        values[position] =
          change === 'data' ? original ^ (4 << Math.floor(next() * 10)) : change === 'check' ? original ^ (1 + Math.floor(next() * 3)) : (original + 1 + Math.floor(next() * 4094)) % 4096;
        const target = decoder(door);
        const outcomes = [...feed(target, CLIENT, values), ...target.expire(T0 + 60_000)];
        assert.equal(opens(outcomes).length, 0, `knock ${position}, ${change} changed`);
        tried++;
      }
    }
    assert.equal(tried, 45);
  });

  it('random knock sequences, also ones that start with the right sync knock and carry the right check bits', () => {
    const door = spec({ bits: 10, ranges: [{ proto: 'tcp', first: 40000, last: 40511 }, { proto: 'udp', first: 40000, last: 40511 }] });
    const target = decoder(door, new MemoryUsedKnocks(), 100_000);
    const next = random(7);
    const pattern = slotPattern(door.keys, slotOf(Math.floor(T0 / 1000)), 'source', 10);
    let sequences = 0;
    let knocks = 0;
    for (let i = 0; i < 3000; i++) {
      const source = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      const guided = i % 2 === 1;
      const length = pattern.length + 1 + Math.floor(next() * 20);
      const values = Array.from({ length }, () => Math.floor(next() * 1024));
      if (guided) {
        // What a forger who knows the slot's sync value and check chain sends: random symbols, right check bits.
        values[0] = pattern.sync;
        let chain = firstCheckState(pattern);
        for (let j = 0; j < pattern.length; j++) {
          if (j > 0) chain = nextCheckState(chain, j, values[j]! >> 3);
          values[j + 1] = (values[j + 1]! & ~7) | checkOf(chain);
        }
      }
      const outcomes = feed(target, source, values, T0 + i);
      assert.equal(opens(outcomes).length, 0, `sequence ${i}`);
      sequences++;
      knocks += length;
    }
    const late = target.expire(T0 + 3_600_000);
    assert.equal(opens(late).length, 0);
    assert.equal(sequences, 3000);
    assert.ok(knocks > 3000 * 17, `${knocks} knocks`);
    assert.ok(target.counters.attempts >= 1500, `the guided half reached authentication ${target.counters.attempts} times, and failed there`);
    assert.equal(target.counters.opened, 0);
  });

  for (const bits of [10, 15]) {
    it(`full scans of a 2^${bits} span: in order, backwards, and shuffled`, () => {
      const door = spec({ bits });
      const size = 2 ** bits;
      const next = random(bits);
      const shuffled = Array.from({ length: size }, (_, i) => i);
      for (let i = size - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
      }
      const scans = [Array.from({ length: size }, (_, i) => i), Array.from({ length: size }, (_, i) => size - 1 - i), shuffled];
      for (const [index, scan] of scans.entries()) {
        const target = decoder(door);
        const outcomes = [...scan.flatMap((value, i) => target.knock(CLIENT, value, T0 + i)), ...target.expire(T0 + 3_600_000)];
        assert.equal(opens(outcomes).length, 0, `scan ${index}`);
        assert.ok(target.counters.syncs >= 12, `scan ${index} hit every sync value (${target.counters.syncs}), so messages were in progress`);
        assert.ok(target.counters.attempts <= ATTEMPTS_PER_KNOCK * size);
        assert.equal(target.size, 0, 'nothing left behind');
      }
    });
  }
});

describe('KnockDecoder: interleaving', () => {
  it('decodes a message with random strays on the span interleaved (300 messages, 1-8 strays each)', () => {
    const door = spec({ bits: 12 });
    const next = random(300);
    for (let trial = 0; trial < 300; trial++) {
      const values = message(door, { request: { address: trial % 3 === 0 ? '192.0.2.7' : null } });
      const strays = 1 + Math.floor(next() * 8);
      for (let s = 0; s < strays; s++) values.splice(1 + Math.floor(next() * values.length), 0, Math.floor(next() * 4096));
      const outcomes = feed(decoder(door), CLIENT, values);
      assert.deepEqual(reasons(outcomes), ['open'], `trial ${trial}: ${strays} strays`);
    }
  });

  it('decodes two messages of one source knocked at the same time, knock by knock', () => {
    const door = spec({ bits: 12, trust: true });
    const a = message(door, { request: { port: 22 } });
    const b = message(door, { request: { port: 443, address: '203.0.113.9' } });
    const mixed = Array.from({ length: Math.max(a.length, b.length) }, (_, i) => [a[i], b[i]]).flat().filter((value) => value !== undefined);
    const outcomes = feed(decoder(door), CLIENT, mixed);
    assert.deepEqual(opens(outcomes).map((open) => open.request.port).sort(), [22, 443]);
  });

  it('decodes a message whose every knock arrived twice, once: the duplicate is dropped without a refusal', () => {
    const door = spec();
    const target = decoder(door);
    const doubled = message(door).flatMap((value) => [value, value]);
    assert.deepEqual(reasons(feed(target, CLIENT, doubled)), ['open']);
    assert.equal(target.counters.duplicates, 1);
    assert.deepEqual(reasons(target.expire(T0 + 60_000)), []);
    assert.deepEqual(reasons(feed(target, CLIENT, doubled, T0 + 30_000)), ['replay', 'replay'], 'later, the same knocks are a replay');
  });

  it('decodes every one of five messages knocked back to back, also when slots or kinds share a sync value (300 keys, 2^8 span)', () => {
    const next = random(0x62326221);
    let shared = 0;
    for (let trial = 0; trial < 300; trial++) {
      const door = { ...spec({ bits: 8 }), keys: deriveDoorKeys(Buffer.from(Array.from({ length: 32 }, () => Math.floor(next() * 256))), 'ssh') };
      const time = T0 + trial * 1000;
      const slot = slotOf(Math.floor(time / 1000));
      const syncs = [slot - 2, slot - 1, slot, slot + 1, slot + 2].flatMap((s) => (['source', 'ipv4', 'ipv6'] as const).map((kind) => slotPattern(door.keys, s, kind, 8).sync));
      if (new Set(syncs).size < syncs.length) shared++;
      const genuine = message(door, { time });
      const values = [...genuine, ...genuine, ...[2222, 2223, 2224].flatMap((port) => message(door, { time, request: { port } }))];
      const target = decoder(door);
      const outcomes = [...feed(target, CLIENT, values, time), ...target.expire(time + 3_600_000)];
      // A data knock that equals a sync value may start a message of its own, which ends incomplete: not counted here.
      assert.deepEqual(reasons(outcomes).filter((reason) => reason !== 'incomplete'), ['open', 'replay', 'port', 'port', 'port'], `trial ${trial}: ${reasons(outcomes).join(', ')}`);
    }
    assert.ok(shared > 50, `${shared} of the keys have a sync value shared by several slots or kinds`);
  });

  it('keeps the knocks of one source apart from another source', () => {
    const door = spec();
    const target = decoder(door);
    const a = message(door, { source: '192.0.2.1' });
    const b = message(door, { source: '192.0.2.2' });
    const outcomes = a.flatMap((value, i) => [...target.knock('192.0.2.1', value, T0 + i), ...target.knock('192.0.2.2', b[i]!, T0 + i)]);
    assert.deepEqual(outcomes.map((outcome) => `${outcome.type} ${outcome.source}`), ['open 192.0.2.1', 'open 192.0.2.2']);
  });

  it('ports off the span have no value: knocks there never reach the decoder', () => {
    const door = spec({ ranges: [{ proto: 'tcp', first: 40000, last: 40255 }] });
    const target: KnockDecoder = decoder(door);
    assert.equal(target.valueOf('tcp', 39999), -1);
    assert.equal(target.valueOf('udp', 40000), -1);
    assert.equal(target.valueOf('tcp', 40000), 0);
    assert.equal(target.valueOf('tcp', 40255), 255);
  });
});

describe('KnockDecoder: bounded', () => {
  it('a source flooding the span after a sync knock keeps a bounded ring, and its message in progress ends', () => {
    const door = spec({ bits: 12 });
    const target = decoder(door);
    const next = random(1);
    const [sync] = message(door);
    const outcomes = [...target.knock(CLIENT, sync!, T0), ...Array.from({ length: 2000 }, (_, i) => target.knock(CLIENT, Math.floor(next() * 4096), T0 + 1 + i)).flat()];
    assert.equal(opens(outcomes).length, 0);
    assert.ok(outcomes.some((outcome) => outcome.type === 'refused' && /other knocks came in between|16 attempts/.test(outcome.detail)), JSON.stringify(outcomes.slice(0, 3)));
    assert.ok(target.size <= 1);
  });

  it('at most four messages in progress per source', () => {
    const door = spec();
    const target = decoder(door);
    const syncs = Array.from({ length: 6 }, () => message(door)[0]!);
    const outcomes = feed(target, CLIENT, syncs);
    assert.deepEqual(reasons(outcomes), ['incomplete', 'incomplete']);
    assert.match((outcomes[0] as { detail: string }).detail, /a newer message started/);
  });

  it('the cap on sources holds under a flood of sync knocks from many sources', () => {
    const door = spec();
    const target = decoder(door, new MemoryUsedKnocks(), 100);
    const [sync] = message(door);
    let evicted = 0;
    for (let i = 0; i < 5000; i++) evicted += target.knock(`10.0.${i >> 8}.${i & 255}`, sync!, T0 + i).filter((outcome) => outcome.type === 'refused' && outcome.reason === 'evicted').length;
    assert.equal(target.size, 100);
    assert.equal(evicted, 4900);
  });
});
