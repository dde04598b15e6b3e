/**
 * Rolling doors in the matcher: the rules of docs/rolling-sequences.md §5, one by one, and how a rolling door
 * lives beside fixed doors (visibility, MaxSources, expiry, reload, restart, the watch).
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { DoorConfig } from '../../src/config/types.js';
import { RollingSequences } from '../../src/knocks/rolling.js';
import { FileUsedKnocks } from '../../src/knocks/used.js';
import { random } from '../random.js';
import { tempDir } from '../helpers.js';
import { A, A6, at, B, C, door, hit, L, Rig, rollingDoor } from './support.js';

const R = rollingDoor('R', { ports: '40000-40999', length: 4, period: 30 });
const sequences = new RollingSequences('R', R.rolling!);
/** The period at the tests' time 0 (which starts a period: T0 is a multiple of 30 s). */
const T = sequences.periodAt(at(0));
/** `tcp/PORT` of each knock of a period's sequence on door `config`. */
function knocksOf(period: number, config: DoorConfig = R): string[] {
  const rolling = config === R ? sequences : new RollingSequences(config.name, config.rolling!);
  return rolling.sequence(period).map((step) => `${step.proto}/${step.port}`);
}

describe('rolling door: accepted periods (§5 rules 2 and 3)', () => {
  it('the sequence of the knock\'s own period opens, stage by stage, and the open names the period', () => {
    const rig = new Rig([R]).sequence(A, knocksOf(T), 1);
    assert.deepEqual(rig.trace('stage', 'open'), [1, 2, 3, 4].map((stage) => `stage R ${A} ${stage} @1`).concat(`open R ${A} period ${T} @1`));
  });

  it('T-1 and T+1 open too (clocks a period apart); T-2 and T+2 start nothing', () => {
    for (const period of [T - 1, T + 1]) {
      const rig = new Rig([R]).sequence(A, knocksOf(period), 15);
      assert.deepEqual(rig.opens(), [`R ${A}`], `period ${period - T}`);
    }
    for (const period of [T - 2, T + 2]) {
      const rig = new Rig([R]).sequence(A, knocksOf(period), 15);
      assert.deepEqual(rig.trace(), [], `period ${period - T}: not even a first stage`);
    }
  });

  it('each hit is judged by its own time: at 29.9 s period T+1 is accepted, at 30 s T+2 is', () => {
    assert.deepEqual(new Rig([R]).sequence(A, knocksOf(T + 2), 29.9).opens(), []);
    assert.deepEqual(new Rig([R]).sequence(A, knocksOf(T + 2), 30).opens(), [`R ${A}`]);
    assert.deepEqual(new Rig([R]).sequence(A, knocksOf(T - 1), 30).opens(), [], 'at 30 s, T-1 is two periods back');
  });

  it('an attempt follows the sequences its first knock chose, even after its period ended', () => {
    const [first, ...rest] = knocksOf(T + 1);
    const rig = new Rig([R]).knock(A, first!, 59.5);
    // At 61 s, T+1 is the previous period, still accepted; the attempt would follow it anyway.
    rig.sequence(A, rest, 61);
    assert.deepEqual(rig.trace('open'), [`open R ${A} period ${T + 1} @61`]);
    const late = new Rig([R]).knock(B, knocksOf(T)[0]!, 59.5).sequence(B, knocksOf(T).slice(1), 61);
    assert.deepEqual(late.trace('open'), [`open R ${B} period ${T} @61`], 'at 61 s, T alone would no longer start an attempt, but this one began at 59.5 s');
  });
});

describe('rolling door: any other knock on the range ends the attempt (§5 rule 4)', () => {
  it('a wrong knock on the range ends it; the right ports after it open nothing', () => {
    const [s0, s1, s2, s3] = knocksOf(T);
    const wrong = `tcp/${40000 + ((Number(s1!.slice(4)) - 40000 + 500) % 1000)}`;
    const rig = new Rig([R]).sequence(A, [s0!, wrong, s1!, s2!, s3!], 1);
    assert.deepEqual(rig.opens(), []);
    assert.deepEqual(rig.trace('stage'), [`stage R ${A} 1 @1`]);
  });

  it('the knock that ended an attempt is judged again: the first port of another accepted sequence starts one', () => {
    const rig = new Rig([R]).knock(A, knocksOf(T)[0]!, 1).sequence(A, knocksOf(T + 1), 2);
    assert.deepEqual(rig.trace('open'), [`open R ${A} period ${T + 1} @2`]);
  });

  it('knocks off the range (another protocol, another port) do not concern the door', () => {
    const udpTwin = knocksOf(T)[1]!.replace('tcp', 'udp');
    const rig = new Rig([R]).knock(A, knocksOf(T)[0]!, 1).sequence(A, ['tcp/22', 'tcp/39999', 'tcp/41000', udpTwin], 1).sequence(A, knocksOf(T).slice(1), 2);
    assert.deepEqual(rig.opens(), [`R ${A}`]);
  });

  it('a full ordered scan of the range, up or down, never opens, in any of 300 periods; no attempt gets past its first knock', () => {
    let attempts = 0;
    for (let i = 0; i < 300; i++) {
      const rig = new Rig([R]);
      const ports = Array.from({ length: 1000 }, (_, p) => 40000 + p);
      if (i % 2 === 1) ports.reverse();
      for (const port of ports) rig.knock(C, `tcp/${port}`, i * 30 + 5);
      assert.deepEqual(rig.opens(), [], `period ${i}`);
      const stages = rig.trace('stage');
      assert.ok(stages.every((stage) => stage.startsWith(`stage R ${C} 1 `)), stages.join('\n'));
      attempts += stages.length;
    }
    // Each scan meets the first ports of three accepted sequences: it did start attempts, and each died at once.
    assert.ok(attempts >= 300 * 3 * 0.9, `${attempts} attempts started`);
  });

  it('200,000 random knocks on the range from 1,000 sources open nothing', () => {
    const next = random(0x726f6c6c);
    const rig = new Rig([R]);
    for (let i = 0; i < 200_000; i++) rig.knock(`10.9.${(i % 1000) >> 8}.${i % 256}`, `tcp/${40000 + Math.floor(next() * 1000)}`, i / 1000);
    assert.deepEqual(rig.opens(), []);
    assert.ok(rig.trace('stage').length > 100, 'the random knocks did start attempts');
  });

  it('Ignore_Repeats: an exact repeat of the previous knock is ignored instead', () => {
    const [s0, s1, s2, s3] = knocksOf(T);
    const repeated = [s0!, s0!, s1!, s1!, s2!, s3!];
    assert.deepEqual(new Rig([R]).sequence(A, repeated, 1).opens(), []);
    const forgiving = rollingDoor('R', { ports: '40000-40999', length: 4 }, { ignoreRepeats: true });
    assert.deepEqual(new Rig([forgiving]).sequence(A, repeated, 1).opens(), [`R ${A}`]);
  });
});

describe('rolling door: single use (§5 rule 6)', () => {
  it('a sequence that opened is spent for everyone: the same source or a sniffer elsewhere gets a replay refusal naming the first use', () => {
    const rig = new Rig([R]).sequence(A, knocksOf(T), 1).sequence(A, knocksOf(T), 3).sequence(B, knocksOf(T), 4).sequence(A6, knocksOf(T), 5);
    assert.deepEqual(rig.trace('open', 'refused'), [
      `open R ${A} period ${T} @1`,
      `refused R ${A} replay @3`,
      `refused R ${B} replay @4`,
      `refused R ${A6} replay @5`,
    ]);
    const refusal = rig.events.find((event) => event.type === 'refused');
    assert.equal(refusal?.type === 'refused' && refusal.detail, `the sequence of period ${T} was used already at ${new Date(at(1)).toISOString()} by ${A}`);
    assert.equal(rig.matcher.summary().counters.refused, 3);
  });

  it('the other accepted periods are not spent: the next one still opens', () => {
    const rig = new Rig([R]).sequence(A, knocksOf(T), 1).sequence(B, knocksOf(T + 1), 2);
    assert.deepEqual(rig.opens(), [`R ${A}`, `R ${B}`]);
  });

  it('a spent period stays spent after a restart (the table in the state directory)', () => {
    const dir = tempDir('knocktail-rolling-');
    const file = join(dir, 'used-knocks.json');
    const fail = (message: string): never => assert.fail(message);
    const before = new Rig([R], { usedKnocks: new FileUsedKnocks(file, at(0), fail) }).sequence(A, knocksOf(T), 1);
    assert.deepEqual(before.opens(), [`R ${A}`]);
    const after = new Rig([R], { usedKnocks: new FileUsedKnocks(file, at(10), fail) }).sequence(B, knocksOf(T), 11).sequence(B, knocksOf(T + 1), 12);
    assert.deepEqual(after.trace('open', 'refused'), [`refused R ${B} replay @11`, `open R ${B} period ${T + 1} @12`]);
  });

  it('a use that cannot be recorded opens nothing (unrecorded), and says why', () => {
    const dir = tempDir('knocktail-rolling-');
    const sub = join(dir, 'state');
    mkdirSync(sub);
    const used = new FileUsedKnocks(join(sub, 'used-knocks.json'), at(0), assert.fail);
    rmSync(sub, { recursive: true });
    const rig = new Rig([R], { usedKnocks: used }).sequence(A, knocksOf(T), 1);
    assert.deepEqual(rig.trace('open', 'refused'), [`refused R ${A} unrecorded @1`]);
    const refusal = rig.events.find((event) => event.type === 'refused');
    assert.match(refusal?.type === 'refused' ? refusal.detail : '', /cannot be recorded: cannot save the table of used one-time knocks/);
  });
});

describe('rolling door: time, visibility, bounds', () => {
  it('Seq_Timeout counts from the first knock: a sequence taking longer times out at its deadline, which the matcher reports', () => {
    const slow = rollingDoor('R', { ports: '40000-40999', length: 4 }, { seqTimeout: 5 });
    const rig = new Rig([slow]);
    const [s0, s1, s2, s3] = knocksOf(T);
    rig.knock(A, s0!, 1).knock(A, s1!, 2);
    assert.equal(rig.matcher.nextDeadline(), at(6));
    rig.matcher.expire(at(6) - 1);
    assert.deepEqual(rig.trace('timeout'), []);
    rig.knock(A, s2!, 6.5).knock(A, s3!, 6.6);
    assert.deepEqual(rig.trace('timeout', 'open'), [`timeout R ${A} 2 @6`]);
    assert.equal(rig.matcher.nextDeadline(), null);
  });

  it('timeouts of fixed and rolling doors come out in deadline order', () => {
    const rolling = rollingDoor('R', { ports: '40000-40999', length: 4 }, { seqTimeout: 3 });
    const rig = new Rig([door('F', '7000,8000', { seqTimeout: 2 }), rolling, door('G', '7001,8001', { seqTimeout: 4 })]);
    rig.knock(A, 'tcp/7000', 0).knock(B, knocksOf(T)[0]!, 0).knock(C, 'tcp/7001', 0);
    rig.matcher.expire(at(10));
    assert.deepEqual(rig.trace('timeout'), [`timeout F ${A} 1 @2`, `timeout R ${B} 1 @3`, `timeout G ${C} 1 @4`]);
  });

  it('the door sees only what Door.admits lets through: TCPFlags, Target, Allow_From', () => {
    const picky = rollingDoor('R', { ports: '40000-40999', length: 4 }, { flags: 'syn,!ack', target: '10.88.0.50', allow: ['10.88.0.0/24'] });
    const [s0, s1, s2, s3] = knocksOf(T, picky);
    const to = { dst: '10.88.0.50' };
    const rig = new Rig([picky]);
    // An ACK, a knock to another address and a knock from outside Allow_From are invisible: they do not end A's attempt.
    rig.knock(A, s0!, 1, to).knock(A, s3!, 1, { ...to, flags: 'A' }).knock(A, s3!, 1, { dst: L }).knock(A, s1!, 1, to).knock(A, s2!, 1, to).knock(A, s3!, 1, to);
    rig.sequence('192.0.2.9', knocksOf(T + 1, picky), 2, to);
    assert.deepEqual(rig.opens(), [`R ${A}`]);
    assert.equal(rig.matcher.summary().counters.visible, 4);
  });

  it('a UDP range takes UDP knocks only; a one-knock door opens on its single knock', () => {
    const udp = rollingDoor('U', { ports: '50000-50063:udp', length: 1 });
    const [knock] = knocksOf(T, udp);
    assert.match(knock!, /^udp\//);
    const rig = new Rig([udp]).knock(A, knock!.replace('udp', 'tcp'), 1).knock(A, knock!, 2);
    assert.deepEqual(rig.trace('stage', 'open'), [`stage U ${A} 1 @2`, `open U ${A} period ${T} @2`]);
  });

  it('interleaved: two sources knocking two accepted sequences at once both open', () => {
    const a = knocksOf(T);
    const b = knocksOf(T + 1);
    const rig = new Rig([R]);
    for (let i = 0; i < 4; i++) rig.knock(A, a[i]!, 1 + i / 10).knock(B, b[i]!, 1 + i / 10);
    assert.deepEqual(rig.opens(), [`R ${A}`, `R ${B}`]);
  });

  it('MaxSources bounds its attempts: the oldest still at its first knock goes first', () => {
    const rig = new Rig([R], { maxSources: 2 });
    const [s0, s1, s2, s3] = knocksOf(T);
    rig.knock(A, s0!, 1).knock(A, s1!, 1.1).knock(B, s0!, 1.2).knock(C, s0!, 1.3);
    assert.deepEqual(rig.trace('evicted'), [`evicted ${B} 1 @1.3`], 'A got further, so B, the older fresh one, goes');
    assert.equal(rig.matcher.summary().counters.evicted, 1);
    rig.sequence(A, [s2!, s3!], 1.4);
    assert.deepEqual(rig.opens(), [`R ${A}`]);
    assert.deepEqual(rig.matcher.summary(Infinity).inProgress.map((attempt) => `${attempt.door} ${attempt.ip} ${attempt.stage}/${attempt.of}`), [`R ${C} 1/4`]);
  });

  it('abandonAll() drops its attempts too', () => {
    const rig = new Rig([R]).knock(A, knocksOf(T)[0]!, 1);
    assert.equal(rig.matcher.abandonAll(), 1);
    rig.sequence(A, knocksOf(T).slice(1), 2);
    assert.deepEqual(rig.opens(), []);
    assert.equal(rig.matcher.nextDeadline(), null);
  });
});

describe('rolling door beside fixed doors', () => {
  it('range knocks neither continue nor fail a fixed attempt, and a fixed knock does not end a rolling one', () => {
    const rig = new Rig([door('F', '7000,8000'), R]);
    const [s0, s1, s2, s3] = knocksOf(T);
    rig.knock(A, 'tcp/7000', 1).knock(A, s0!, 1).knock(A, s1!, 1).knock(A, 'tcp/8000', 1).knock(A, s2!, 1).knock(A, s3!, 1);
    assert.deepEqual(rig.opens(), [`F ${A}`, `R ${A}`]);
  });

  it('a port both watch goes to both', () => {
    const s0 = knocksOf(T)[0]!;
    const rig = new Rig([door('F', `${s0.slice(4)},7000`), R]).knock(A, s0, 1).knock(A, 'tcp/7000', 1).sequence(A, knocksOf(T).slice(1), 1);
    assert.deepEqual(rig.opens(), [`F ${A}`, `R ${A}`]);
    assert.equal(rig.matcher.summary().counters.visible, 5, 'the shared knock counts once');
  });

  it('watch(): the range for inputs, not a sequence', () => {
    const watch = new Rig([door('F', '7000'), R]).matcher.watch();
    assert.deepEqual(watch.sequences.map((sequence) => sequence.door.name), ['F']);
    assert.deepEqual(watch.ranges, [{ door: R, ranges: [{ first: 40000, last: 40999, proto: 'tcp' }] }]);
    assert.deepEqual([watch.watches('tcp', 40000), watch.watches('tcp', 40999), watch.watches('udp', 40500), watch.watches('tcp', 41000)], [true, true, false, false]);
  });

  it('reload keeps attempts on an unchanged door, and drops them when range, length, period or secret change', () => {
    const [s0, ...rest] = knocksOf(T);
    const unchanged = new Rig([R]).knock(A, s0!, 1);
    unchanged.matcher.reload([rollingDoor('R', { ports: '40000-40999', length: 4, period: 30 }, { startCommand: 'other' })]);
    unchanged.sequence(A, rest, 2);
    assert.deepEqual(unchanged.opens(), [`R ${A}`], 'only the commands changed');
    for (const changed of [
      rollingDoor('R', { ports: '40000-41000', length: 4 }),
      rollingDoor('R', { ports: '40000-40999', length: 5 }),
      rollingDoor('R', { ports: '40000-40999', length: 4, period: 60 }),
      rollingDoor('R', { ports: '40000-40999', length: 4, secret: Buffer.from('another secret of the matcher tests') }),
    ]) {
      const rig = new Rig([R]).knock(A, s0!, 1);
      rig.matcher.reload([changed]);
      assert.equal(rig.matcher.summary().attempts, 0, JSON.stringify(changed.rolling));
    }
  });

  it('hit() carries its own time: replayed hits from long ago are judged by their periods', () => {
    const old = sequences.periodAt(at(-86_400));
    const rig = new Rig([R]);
    for (const what of knocksOf(old)) rig.matcher.handle(hit(A, what, -86_400));
    assert.deepEqual(rig.trace('open'), [`open R ${A} period ${old} @-86400`]);
  });
});
