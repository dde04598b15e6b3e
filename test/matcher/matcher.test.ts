/**
 * Matcher behaviour beyond the spec's conformance cases: visibility, extras (Allow_From, Ignore_Repeats),
 * bounded state under a flood, expiry order and out-of-order times, reload, and the query methods.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KnockHit } from '../../src/hit.js';
import { Matcher, type MatchEvent } from '../../src/matcher/matcher.js';
import { A, A6, at, B, C, door, L, Rig, T0 } from './support.js';
import { DiskOneTimeFiles } from '../../src/matcher/one-time-files.js';
import { MemoryUsedKnocks } from '../../src/knocks/used.js';

describe('visibility', () => {
  it('a hit to a destination isLocal rejects is invisible: it neither advances nor fails an attempt', () => {
    const rig = new Rig([door('L', '1000,2000,3000')]);
    rig.knock(A, 'tcp/1000', 0).knock(A, 'tcp/3000', 0, { dst: '192.0.2.99' }).knock(A, 'tcp/2000', 0).knock(A, 'tcp/3000', 0);
    assert.deepEqual(rig.opens(), ['L 10.88.0.2']);
    assert.equal(rig.matcher.summary().counters.visible, 3);
  });

  it('isLocal null (file mode) accepts every destination', () => {
    const rig = new Rig([door('L', '1000,2000')], { isLocal: null });
    rig.knock(A, 'tcp/1000', 0, { dst: '192.0.2.1' }).knock(A, 'tcp/2000', 0, { dst: '198.51.100.7' });
    assert.deepEqual(rig.opens(), ['L 10.88.0.2']);
  });

  it('a door with Target accepts exactly its target, even in file mode', () => {
    const rig = new Rig([door('T', '1000,2000', { target: '10.88.0.50' })], { isLocal: null });
    rig.sequence(A, ['tcp/1000', 'tcp/2000'], 0, { dst: L });
    rig.sequence(B, ['tcp/1000', 'tcp/2000'], 0, { dst: '10.88.0.50' });
    assert.deepEqual(rig.opens(), ['T 10.88.0.3']);
  });

  it('Allow_From: the door is invisible to other sources, so their hits on its ports change nothing', () => {
    const rig = new Rig([door('P', '1000,2000', { allow: ['10.88.0.2/32', '2001:db8::/32'] }), door('Q', '3000,4000')]);
    rig.sequence(C, ['tcp/1000', 'tcp/2000']);
    assert.deepEqual(rig.opens(), [], 'C is not allowed on P');
    rig.sequence(C, ['tcp/3000', 'tcp/1000', 'tcp/4000']);
    assert.deepEqual(rig.opens(), ['Q 10.88.0.4'], "C's 1000 is invisible, so it does not fail C's Q attempt");
    rig.sequence(A, ['tcp/3000', 'tcp/1000', 'tcp/4000']);
    assert.deepEqual(rig.opens(), ['Q 10.88.0.4'], "A's 1000 is visible through P and fails A's Q attempt");
    rig.sequence(A, ['tcp/1000', 'tcp/2000']);
    rig.sequence('2001:db8::5', ['tcp/1000', 'tcp/2000']);
    rig.sequence('2001:db9::5', ['tcp/1000', 'tcp/2000']);
    assert.deepEqual(rig.opens(), ['Q 10.88.0.4', 'P 10.88.0.2', 'P 2001:db8::5']);
  });

  it('flags null (the input cannot tell) matches any TCPFlags rule', () => {
    const rig = new Rig([door('S', '7000,8000', { flags: 'syn,!ack' })]);
    rig.sequence(A, ['tcp/7000', 'tcp/8000'], 0, { flags: null });
    assert.deepEqual(rig.opens(), ['S 10.88.0.2']);
  });

  it('UDP hits ignore TCPFlags', () => {
    const rig = new Rig([door('U', '7000:udp,8000', { flags: 'syn' })]);
    rig.knock(A, 'udp/7000', 0).knock(A, 'tcp/8000', 0, { flags: 'S' });
    assert.deepEqual(rig.opens(), ['U 10.88.0.2']);
  });

  it('a TCP flag mismatch on a port only a flag-constrained door watches is invisible (does not fail other attempts)', () => {
    const rig = new Rig([door('F', '9000', { flags: 'syn' }), door('G', '1000,2000')]);
    rig.knock(A, 'tcp/1000', 0).knock(A, 'tcp/9000', 0, { flags: 'A' }).knock(A, 'tcp/2000', 0);
    assert.deepEqual(rig.opens(), ['G 10.88.0.2']);
  });
});

describe('Ignore_Repeats', () => {
  it('case 12 with Ignore_Repeats: 1000,1000,2000,3000 opens', () => {
    const rig = new Rig([door('A', '1000,2000,3000', { ignoreRepeats: true })]).sequence(A, ['tcp/1000', 'tcp/1000', 'tcp/2000', 'tcp/3000']);
    assert.deepEqual(rig.opens(), ['A 10.88.0.2']);
    assert.equal(rig.trace('stage').length, 3, 'the repeat is ignored, not counted');
  });

  it('a retransmitted SYN in the middle does not kill the knock', () => {
    const rig = new Rig([door('R', '7000,8000,9000', { ignoreRepeats: true })]);
    rig.knock(A, 'tcp/7000', 0).knock(A, 'tcp/8000', 0.1).knock(A, 'tcp/8000', 1.1).knock(A, 'tcp/9000', 1.2);
    assert.deepEqual(rig.opens(), ['R 10.88.0.2']);
  });

  it('the next expected step is checked first: 1000,1000,2000 advances on the second 1000', () => {
    const rig = new Rig([door('D', '1000,1000,2000', { ignoreRepeats: true })]).sequence(A, ['tcp/1000', 'tcp/1000', 'tcp/2000']);
    assert.deepEqual(rig.opens(), ['D 10.88.0.2']);
  });

  it('only the step matched last is tolerated: an earlier step still fails the attempt', () => {
    const rig = new Rig([door('R', '7000,8000,9000', { ignoreRepeats: true })]).sequence(A, ['tcp/7000', 'tcp/8000', 'tcp/7000', 'tcp/9000']);
    assert.deepEqual(rig.opens(), []);
  });

  it('without Ignore_Repeats a repeat fails the attempt (knockd)', () => {
    const rig = new Rig([door('R', '7000,8000,9000')]).sequence(A, ['tcp/7000', 'tcp/8000', 'tcp/8000', 'tcp/9000']);
    assert.deepEqual(rig.opens(), []);
  });

  it('a repeat with the other protocol is not a repeat', () => {
    const rig = new Rig([door('R', '7000,8000,9000', { ignoreRepeats: true }), door('U', '8000:udp,1')]);
    rig.sequence(A, ['tcp/7000', 'tcp/8000', 'udp/8000', 'tcp/9000']);
    assert.deepEqual(rig.opens(), []);
  });
});

describe('IPv4 and IPv6', () => {
  it('attempts are keyed by address text, so the same host over IPv4 and IPv6 knocks independently (§3.7)', () => {
    const rig = new Rig([door('D', '7000,8000,9000')]);
    rig.knock(A, 'tcp/7000', 0).knock(A6, 'tcp/7000', 0).knock(A6, 'tcp/9000', 0).knock(A, 'tcp/8000', 0).knock(A, 'tcp/9000', 0);
    assert.deepEqual(rig.opens(), ['D 10.88.0.2'], "the IPv6 mistake did not touch the IPv4 attempt");
    rig.sequence(A6, ['tcp/7000', 'tcp/8000', 'tcp/9000'], 1);
    assert.deepEqual(rig.opens(), ['D 10.88.0.2', `D ${A6}`]);
  });
});

describe('bounded state (MaxSources)', () => {
  const flood = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

  it('1,000,000 spoofed first knocks with the cap at 1000: a legitimate 3-step knock interleaved still opens', () => {
    const legit = '192.0.2.7';
    let opens = 0;
    let evictedEvents = 0;
    let timeouts = 0;
    const matcher = new Matcher([door('D', '7000,8000,9000')], { maxSources: 1000, isLocal: null, oneTimeFiles: new DiskOneTimeFiles(null, () => {}), usedKnocks: new MemoryUsedKnocks() }, (event) => {
      if (event.type === 'open' && event.ip === legit) opens++;
      if (event.type === 'evicted') evictedEvents++;
      if (event.type === 'timeout') timeouts++;
    });
    const hit: KnockHit = { time: T0, src: '', dst: L, proto: 'tcp', dport: 7000, sport: 1, flags: 2, input: 'flood', iface: null };
    const legitKnocks = new Map([
      [400_000, 7000],
      [400_500, 8000], // fewer than 1000 new sources since its first knock: still there
      [999_999, 9000], // at stage 2 it is no longer "fresh": the flood evicts around it
    ]);
    for (let i = 0; i < 1_000_000; i++) {
      hit.time = T0 + i / 100; // the whole flood within 10 s, inside the 25 s timeout
      const port = legitKnocks.get(i);
      if (port !== undefined) matcher.handle({ ...hit, src: legit, dport: port });
      hit.src = flood(i);
      matcher.handle(hit);
    }
    assert.equal(opens, 1);
    const summary = matcher.summary();
    assert.equal(summary.sources, 1000);
    // 1,000,001 sources were created; 1000 remain and the legitimate one completed (freeing its slot).
    assert.equal(summary.counters.evicted, 999_000);
    assert.equal(evictedEvents, summary.counters.evicted, 'one evicted event per handle() at most');
    assert.equal(timeouts, 0, 'evicted attempts vanish without timeout events');
    matcher.expire(Infinity);
    assert.equal(matcher.summary().counters.timeouts, 1000, 'only the attempts still held expire');
  });

  it('evicts the oldest fresh source first, and the oldest progressed one only when no fresh source is left', () => {
    const rig = new Rig([door('D', '7000,8000,9000')], { maxSources: 3 });
    rig.sequence('192.0.2.1', ['tcp/7000', 'tcp/8000'], 0); // progressed, oldest
    rig.knock('192.0.2.2', 'tcp/7000', 1); // fresh
    rig.knock('192.0.2.3', 'tcp/7000', 2); // fresh
    rig.knock('192.0.2.4', 'tcp/7000', 3); // evicts .2
    rig.knock('192.0.2.5', 'tcp/7000', 4); // evicts .3
    assert.deepEqual(rig.trace('evicted'), ['evicted 192.0.2.2 1 @3', 'evicted 192.0.2.3 1 @4']);
    rig.sequence('192.0.2.4', ['tcp/8000'], 5); // .4 progresses; .5 is the only fresh one
    rig.knock('192.0.2.6', 'tcp/7000', 6); // evicts .5
    rig.sequence('192.0.2.6', ['tcp/8000'], 7); // now all three progressed
    rig.knock('192.0.2.7', 'tcp/7000', 8); // evicts the oldest progressed: .1
    assert.deepEqual(rig.trace('evicted'), ['evicted 192.0.2.2 1 @3', 'evicted 192.0.2.3 1 @4', 'evicted 192.0.2.5 1 @6', 'evicted 192.0.2.1 1 @8']);
    assert.deepEqual(rig.matcher.summary(Infinity).inProgress.map((attempt) => attempt.ip), ['192.0.2.4', '192.0.2.6', '192.0.2.7']);
    rig.knock('192.0.2.1', 'tcp/9000', 9);
    assert.deepEqual(rig.opens(), [], 'the evicted source lost its progress');
    rig.matcher.expire(Infinity);
    assert.deepEqual(rig.trace('timeout').map((line) => line.split(' ')[2]), ['192.0.2.4', '192.0.2.6', '192.0.2.7'], 'no timeout for evicted attempts');
  });

  it('a source knocking again (more attempts, other destination) does not count as a new source', () => {
    const rig = new Rig([door('T', '1000,2000', { target: '10.88.0.50' }), door('L', '1000,2000')], { maxSources: 1 });
    rig.knock(A, 'tcp/1000', 0, { dst: '10.88.0.50' }).knock(A, 'tcp/1000', 0, { dst: L });
    assert.deepEqual(rig.trace('evicted'), []);
    assert.equal(rig.matcher.summary(Infinity).inProgress.length, 2);
    rig.knock(A, 'tcp/2000', 0, { dst: L }).knock(A, 'tcp/2000', 0, { dst: '10.88.0.50' });
    assert.deepEqual(rig.opens(), ['L 10.88.0.2', 'T 10.88.0.2']);
  });

  it('one-step doors keep no state, so they never evict anyone', () => {
    const rig = new Rig([door('one', '5000'), door('D', '7000,8000')], { maxSources: 1 });
    rig.knock(A, 'tcp/7000', 0).knock(B, 'tcp/5000', 0).knock(C, 'tcp/5000', 0).knock(A, 'tcp/8000', 0);
    assert.deepEqual(rig.opens(), ['one 10.88.0.3', 'one 10.88.0.4', 'D 10.88.0.2']);
    assert.deepEqual(rig.trace('evicted'), []);
  });
});

describe('expiry', () => {
  it('timeouts across doors with different Seq_Timeouts come in deadline order', () => {
    const rig = new Rig([door('X', '1000,2000', { seqTimeout: 10 }), door('Y', '3000,4000', { seqTimeout: 3 })]);
    rig.knock(A, 'tcp/1000', 0).knock(B, 'tcp/3000', 1).knock(C, 'tcp/3000', 2);
    assert.equal(rig.matcher.nextDeadline(), at(4));
    rig.matcher.expire(at(20));
    assert.deepEqual(rig.trace('timeout'), ['timeout Y 10.88.0.3 1 @4', 'timeout Y 10.88.0.4 1 @5', 'timeout X 10.88.0.2 1 @10']);
    assert.equal(rig.matcher.nextDeadline(), null);
  });

  it('handle() expires what is due before applying the hit, in deadline order, so a late first step starts afresh', () => {
    const rig = new Rig([door('X', '1000,2000', { seqTimeout: 10 }), door('Y', '3000,4000', { seqTimeout: 3 })]);
    rig.knock(A, 'tcp/1000', 0).knock(B, 'tcp/3000', 1).knock(A, 'tcp/1000', 12);
    assert.deepEqual(rig.trace(), [
      'stage X 10.88.0.2 1 @0',
      'stage Y 10.88.0.3 1 @1',
      'timeout Y 10.88.0.3 1 @4',
      'timeout X 10.88.0.2 1 @10',
      'stage X 10.88.0.2 1 @12',
    ]);
  });

  it('out-of-order hit times keep deadlines exact (queues stay sorted)', () => {
    const rig = new Rig([door('D', '1000,2000,3000', { seqTimeout: 10 })]);
    rig.knock(A, 'tcp/1000', 5).knock(B, 'tcp/1000', 2).knock(C, 'tcp/1000', 8);
    assert.equal(rig.matcher.nextDeadline(), at(12));
    rig.knock(A, 'tcp/2000', 4); // earlier than A's first knock: still inside its window
    rig.matcher.expire(at(15));
    assert.deepEqual(rig.trace('timeout'), ['timeout D 10.88.0.3 1 @12', 'timeout D 10.88.0.2 2 @15']);
    assert.equal(rig.matcher.nextDeadline(), at(18));
    rig.knock(C, 'tcp/2000', 17.999).knock(C, 'tcp/3000', 17.5);
    assert.deepEqual(rig.opens(), ['D 10.88.0.4']);
  });

  it('completed and failed attempts leave no pending deadline behind', () => {
    const rig = new Rig([door('D', '1000,2000', { seqTimeout: 10 })]);
    rig.knock(A, 'tcp/1000', 0).knock(B, 'tcp/1000', 1);
    assert.equal(rig.matcher.nextDeadline(), at(10));
    rig.knock(A, 'tcp/2000', 2);
    assert.equal(rig.matcher.nextDeadline(), at(11));
    rig.knock(B, 'tcp/1000', 3); // fails B's attempt
    assert.equal(rig.matcher.nextDeadline(), null);
    rig.matcher.expire(Infinity);
    assert.deepEqual(rig.trace('timeout'), []);
  });
});

describe('reload', () => {
  it('an unchanged door keeps its attempts; a changed one loses them without timeout events', () => {
    const rig = new Rig([door('keep', '1000,2000,3000'), door('change', '4000,5000,6000')]);
    rig.sequence(A, ['tcp/1000', 'tcp/2000'], 0);
    rig.knock(B, 'tcp/4000', 0).knock(B, 'tcp/5000', 0);
    rig.matcher.reload([door('keep', '1000,2000,3000', { startCommand: 'echo other command' }), door('change', '4000,5000,6000', { seqTimeout: 30 })]);
    assert.deepEqual(rig.matcher.summary(Infinity).inProgress.map((attempt) => `${attempt.door} ${attempt.ip} ${attempt.stage}`), ['keep 10.88.0.2 2']);
    rig.knock(A, 'tcp/3000', 1).knock(B, 'tcp/6000', 1);
    assert.deepEqual(rig.opens(), ['keep 10.88.0.2']);
    rig.matcher.expire(Infinity);
    assert.deepEqual(rig.trace('timeout'), []);
  });

  it('every matching-relevant setting counts as a change', () => {
    const base = door('D', '1000,2000');
    const changes = [
      door('D', '1000,3000'),
      door('E', '1000,2000'),
      door('D', '1000,2000:udp'),
      door('D', '1000,2000', { flags: 'syn' }),
      door('D', '1000,2000', { target: L }),
      door('D', '1000,2000', { allow: ['10.88.0.0/24'] }),
      door('D', '1000,2000', { seqTimeout: 24 }),
      door('D', '1000,2000', { ignoreRepeats: true }),
    ];
    for (const changed of changes) {
      const rig = new Rig([base]).knock(A, 'tcp/1000', 0);
      rig.matcher.reload([changed]);
      assert.deepEqual(rig.matcher.summary(Infinity).inProgress, [], JSON.stringify(changed));
    }
    const unchanged = new Rig([base]).knock(A, 'tcp/1000', 0);
    unchanged.matcher.reload([door('D', '1000,2000', { stopCommand: 'x', cmdTimeout: 99, onReopen: 'rerun', at: { file: 'other.conf', line: 7 } })]);
    assert.equal(unchanged.matcher.summary(Infinity).inProgress.length, 1);
  });

  it('identical doors are paired in order, and a removed door takes its attempts (and deadlines) along', () => {
    const rig = new Rig([door('D', '1000,2000'), door('D', '1000,2000'), door('gone', '7000,8000', { seqTimeout: 5 })]);
    rig.knock(A, 'tcp/1000', 0).knock(B, 'tcp/7000', 0);
    assert.equal(rig.matcher.nextDeadline(), at(5));
    rig.matcher.reload([door('D', '1000,2000')]);
    assert.equal(rig.matcher.nextDeadline(), at(25));
    rig.knock(A, 'tcp/2000', 1);
    assert.deepEqual(rig.opens(), ['D 10.88.0.2']);
    assert.equal(rig.matcher.watch().watches('tcp', 7000), false);
  });
});

describe('queries', () => {
  it('watch(): the (protocol, port) pairs of enabled doors only', () => {
    const matcher = new Rig([door('D', '7000,8000:udp'), door('E', '9000')]).matcher;
    assert.equal(matcher.watch().watches('tcp', 7000), true);
    assert.equal(matcher.watch().watches('udp', 8000), true);
    assert.equal(matcher.watch().watches('tcp', 9000), true);
    assert.equal(matcher.watch().watches('udp', 7000), false);
    assert.equal(matcher.watch().watches('tcp', 8000), false);
    assert.equal(matcher.watch().watches('tcp', 22), false);
  });

  it('watch(): every door in file order with its sequence', () => {
    const d = door('D', '7000,8000:udp');
    const e = door('E', '9000');
    assert.deepEqual(new Rig([d, e]).matcher.watch().sequences, [
      { door: d, sequence: d.sequence },
      { door: e, sequence: e.sequence },
    ]);
  });

  it('summary(Infinity): every attempt oldest first with progress and deadline, source count and counters', () => {
    const rig = new Rig([door('D', '7000,8000,9000', { seqTimeout: 10 }), door('E', '7000,6000', { seqTimeout: 3 })]);
    rig.knock(B, 'tcp/7000', 1).knock(B, 'tcp/8000', 1.5).knock(A, 'tcp/7000', 0.5).knock(C, 'tcp/22', 2).knock(A, 'tcp/6000', 2);
    // B: D at stage 2, E failed on 8000; A: E completed on 6000, D failed on it; C: invisible.
    assert.deepEqual(rig.matcher.summary(Infinity), {
      attempts: 1,
      inProgress: [{ door: 'D', ip: B, stage: 2, of: 3, started: at(1), deadline: at(11) }],
      sources: 1,
      counters: { hits: 5, visible: 4, stages: 6, opens: 1, timeouts: 0, evicted: 0, refused: 0 },
    });
    rig.matcher.expire(at(11));
    assert.deepEqual(rig.matcher.summary(Infinity), { attempts: 0, inProgress: [], sources: 0, counters: { hits: 5, visible: 4, stages: 6, opens: 1, timeouts: 1, evicted: 0, refused: 0 } });
  });

  it('summary(n): counts and the n oldest attempts, without listing the others', () => {
    const rig = new Rig([door('D', '7000,8000,9000'), door('E', '7000,6000')]);
    rig.knock(B, 'tcp/7000', 1).knock(A, 'tcp/7000', 0.5).knock(C, 'tcp/7000', 2);
    const { inProgress, ...counts } = rig.matcher.summary(2);
    assert.deepEqual(counts, { attempts: 6, sources: 3, counters: rig.matcher.summary().counters });
    assert.deepEqual(inProgress.map((attempt) => `${attempt.door} ${attempt.ip} ${attempt.started - at(0)}`), [`D ${A} 500`, `E ${A} 500`]);
    assert.deepEqual(rig.matcher.summary().inProgress, [{ door: 'D', ip: A, stage: 1, of: 3, started: at(0.5), deadline: at(25.5) }]);
    assert.deepEqual(rig.matcher.summary(Infinity).inProgress.slice(0, 2), inProgress);
  });
});

describe('events', () => {
  it('are emitted synchronously, in order, during handle()', () => {
    const seen: MatchEvent['type'][] = [];
    const matcher = new Matcher([door('D', '7000')], { maxSources: 10, isLocal: null, oneTimeFiles: new DiskOneTimeFiles(null, () => {}), usedKnocks: new MemoryUsedKnocks() }, (event) => seen.push(event.type));
    matcher.handle({ time: T0, src: A, dst: L, proto: 'tcp', dport: 7000, sport: null, flags: null, input: 'x', iface: null });
    assert.deepEqual(seen, ['stage', 'open']);
  });
});
