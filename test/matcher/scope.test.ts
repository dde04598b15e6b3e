/**
 * Knock_Scope (src/matcher/scope.ts): with hits from several firewalls, `firewall` doors count each firewall's
 * knocks apart and `any` doors take a sequence spread over firewalls, opening with the firewall of the last knock.
 * Hits that name no firewall match exactly as before, and MaxSources still bounds what is kept.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RollingSequences } from '../../src/knocks/rolling.js';
import { A, A6, at, B, door, encryptedDoor, knocksOf, Rig, rollingDoor } from './support.js';

const FW1 = '192.0.2.1';
const FW2 = 'edge-2.example.net';

describe('Knock_Scope = firewall (the default)', () => {
  it('a sequence knocked on one firewall opens with that firewall', () => {
    const rig = new Rig([door('D', '7000,8000,9000')]);
    rig.knock(A, 'tcp/7000', 0, { firewall: FW1 }).knock(A, 'tcp/8000', 1, { firewall: FW1 }).knock(A, 'tcp/9000', 2, { firewall: FW1 });
    assert.deepEqual(rig.trace('stage', 'open'), [`stage D ${A} 1 @0`, `stage D ${A} 2 @1`, `stage D ${A} 3 @2`, `open D ${A} @2 on ${FW1}`]);
    const open = rig.events.find((event) => event.type === 'open');
    assert.equal(open?.type === 'open' && open.firewall, FW1);
  });

  it('knocks split between two firewalls open nothing, and do not disturb each other', () => {
    const rig = new Rig([door('D', '7000,8000,9000', { seqTimeout: 5 })]);
    rig.knock(A, 'tcp/7000', 0, { firewall: FW1 }).knock(A, 'tcp/8000', 1, { firewall: FW2 }).knock(A, 'tcp/9000', 2, { firewall: FW2 });
    assert.deepEqual(rig.opens(), []);
    // FW2 never saw the first step; FW1's attempt is still at stage 1 and goes on with FW1's own knocks.
    rig.knock(A, 'tcp/8000', 3, { firewall: FW1 }).knock(A, 'tcp/9000', 4, { firewall: FW1 });
    assert.deepEqual(rig.trace('open'), [`open D ${A} @4 on ${FW1}`]);
  });

  it('a knock on another firewall does not fail a sequence in progress (each firewall is its own knockd)', () => {
    const rig = new Rig([door('D', '7000,8000,9000')]);
    rig.knock(A, 'tcp/7000', 0, { firewall: FW1 }).knock(A, 'tcp/9000', 0.5, { firewall: FW2 }).knock(A, 'tcp/8000', 1, { firewall: FW1 }).knock(A, 'tcp/9000', 2, { firewall: FW1 });
    assert.deepEqual(rig.opens(), [`D ${A}`]);
  });

  it('the same address on two firewalls is two sources: MaxSources bounds them, evictions name the address', () => {
    const rig = new Rig([door('D', '7000,8000')], { maxSources: 2 });
    rig.knock(A, 'tcp/7000', 0, { firewall: FW1 }).knock(A, 'tcp/7000', 1, { firewall: FW2 });
    assert.equal(rig.matcher.summary().sources, 2);
    rig.knock(A6, 'tcp/7000', 2, { firewall: FW1 });
    assert.equal(rig.matcher.summary().sources, 2);
    assert.deepEqual(rig.trace('evicted'), [`evicted ${A} 1 @2`]);
    // The oldest (A on FW1) went; A on FW2 and A6 on FW1 complete.
    rig.knock(A, 'tcp/8000', 3, { firewall: FW1 }).knock(A, 'tcp/8000', 3, { firewall: FW2 }).knock(A6, 'tcp/8000', 3, { firewall: FW1 });
    assert.deepEqual(rig.trace('open'), [`open D ${A} @3 on ${FW2}`, `open D ${A6} @3 on ${FW1}`]);
    assert.deepEqual(rig.matcher.summary(5).inProgress, []);
  });
});

describe('Knock_Scope = any', () => {
  it('a sequence spread over firewalls opens with the firewall of the last knock', () => {
    const rig = new Rig([door('D', '7000,8000,9000', { knockScope: 'any' })]);
    rig.knock(A, 'tcp/7000', 0, { firewall: FW1 }).knock(A, 'tcp/8000', 1, { firewall: FW2 }).knock(A, 'tcp/9000', 2, { firewall: FW1 });
    assert.deepEqual(rig.trace('stage', 'open'), [`stage D ${A} 1 @0`, `stage D ${A} 2 @1`, `stage D ${A} 3 @2`, `open D ${A} @2 on ${FW1}`]);
  });

  it('a wrong knock on any firewall fails the sequence', () => {
    const rig = new Rig([door('D', '7000,8000,9000', { knockScope: 'any' })]);
    rig.knock(A, 'tcp/7000', 0, { firewall: FW1 }).knock(A, 'tcp/9000', 1, { firewall: FW2 }).knock(A, 'tcp/8000', 2, { firewall: FW1 }).knock(A, 'tcp/9000', 3, { firewall: FW1 });
    assert.deepEqual(rig.opens(), []);
  });
});

describe('both scopes in one config', () => {
  it('each scope is matched as by a matcher of its own', () => {
    const rig = new Rig([door('F', '7000,8000,9000'), door('Y', '7000,8000,9100', { knockScope: 'any' })]);
    rig.knock(A, 'tcp/7000', 0, { firewall: FW1 }).knock(A, 'tcp/8000', 1, { firewall: FW2 }).knock(A, 'tcp/9100', 2, { firewall: FW2 });
    assert.deepEqual(rig.trace('open'), [`open Y ${A} @2 on ${FW2}`]);
    // F's attempt on FW1 saw none of FW2's knocks.
    rig.knock(A, 'tcp/8000', 3, { firewall: FW1 }).knock(A, 'tcp/9000', 4, { firewall: FW1 });
    assert.deepEqual(rig.trace('open'), [`open Y ${A} @2 on ${FW2}`, `open F ${A} @4 on ${FW1}`]);
  });
});

describe('range doors on a collector', () => {
  const R = rollingDoor('R', { ports: '40000-40999', length: 3, period: 30 });
  const rolling = new RollingSequences('R', R.rolling!);
  const sequence = rolling.sequence(rolling.periodAt(at(0))).map((step) => `${step.proto}/${step.port}`);
  const E = encryptedDoor('E', Buffer.from('the key of the scope tests'), [{ proto: 'tcp', first: 30000, last: 30000 + 2 ** 12 - 1 }]);
  const message = knocksOf(E, A, 1, { request: { port: 443, duration: 300 } });

  /** Knocks `whats` from A 10 ms apart from 1 s on, the last `onSecond` of them through FW2, the others through FW1. */
  function split(rig: Rig, whats: readonly string[], onSecond: number, from = 1): Rig {
    whats.forEach((what, i) => rig.knock(A, what, from + i * 0.01, { firewall: i >= whats.length - onSecond ? FW2 : FW1 }));
    return rig;
  }

  it('a rolling sequence split between two firewalls opens nothing under Knock_Scope = firewall; knocked on one, it opens there', () => {
    const rig = split(new Rig([R]), sequence, 1);
    assert.deepEqual(rig.trace('open'), []);
    // The attempts are the address's, not its key's: events and status name 10.88.0.2.
    assert.ok(rig.trace('stage').every((line) => line.startsWith(`stage R ${A} `)), rig.trace().join('\n'));
    assert.equal(rig.matcher.summary(1).inProgress[0]?.ip, A);
    split(rig, sequence, sequence.length, 2);
    assert.deepEqual(rig.trace('open').map((line) => line.replace(/ @[\d.]+/, '')), [`open R ${A} period ${rolling.periodAt(at(0))} on ${FW2}`]);
    rig.matcher.expire(at(60));
    assert.ok(rig.trace('timeout').length > 0 && rig.trace('timeout').every((line) => line.startsWith(`timeout R ${A} `)), rig.trace('timeout').join('\n'));
  });

  it('under Knock_Scope = any, the split rolling sequence opens with the firewall of the last knock', () => {
    const rig = split(new Rig([rollingDoor('R', { ports: '40000-40999', length: 3, period: 30 }, { knockScope: 'any' })]), sequence, 1);
    assert.equal(rig.trace('open')[0]?.endsWith(`on ${FW2}`), true, rig.trace().join('\n'));
  });

  it('an encrypted message split between two firewalls opens nothing under Knock_Scope = firewall; sent through one, it opens there', () => {
    const rig = split(new Rig([E]), message, 8);
    assert.deepEqual(rig.trace('open'), []);
    split(rig, message, message.length, 2);
    assert.deepEqual(rig.trace('open').map((line) => line.replace(/ @[\d.]+/, '')), [`open E ${A} port 443 for 300 from ${A} on ${FW2}`]);
    // The part FW1 saw ends unfinished at Seq_Timeout, reported for the address.
    rig.matcher.expire(at(60));
    assert.deepEqual(rig.trace('refused').map((line) => line.replace(/ @[\d.]+$/, '')), [`refused E ${A} incomplete`]);
  });

  it('under Knock_Scope = any, the split message opens with the firewall of the last knock', () => {
    const any = encryptedDoor('E', Buffer.from('the key of the scope tests'), [{ proto: 'tcp', first: 30000, last: 30000 + 2 ** 12 - 1 }], {}, { knockScope: 'any' });
    const rig = split(new Rig([any]), message, 8);
    assert.deepEqual(rig.trace('open').map((line) => line.replace(/ @[\d.]+/, '')), [`open E ${A} port 443 for 300 from ${A} on ${FW2}`]);
  });
});

describe('hits that name no firewall', () => {
  it('match as they always did, whatever the scope; opens carry no firewall', () => {
    for (const knockScope of ['firewall', 'any'] as const) {
      const rig = new Rig([door('D', '7000,8000', { knockScope })]);
      rig.knock(B, 'tcp/7000', 0).knock(B, 'tcp/8000', 1);
      assert.deepEqual(rig.trace('open'), [`open D ${B} @1`], knockScope);
      assert.equal(Object.hasOwn(rig.events.at(-1)!, 'firewall'), false);
    }
  });
});

describe('reload', () => {
  it('a door whose Knock_Scope changed loses its knocks in progress; an unchanged one keeps them', () => {
    const kept = door('K', '7000,8000');
    const rig = new Rig([kept, door('S', '7100,8100')]);
    rig.knock(A, 'tcp/7000', 0, { firewall: FW1 }).knock(A, 'tcp/7100', 0, { firewall: FW2 });
    rig.matcher.reload([kept, door('S', '7100,8100', { knockScope: 'any' })]);
    rig.knock(A, 'tcp/8000', 1, { firewall: FW1 }).knock(A, 'tcp/8100', 1, { firewall: FW2 });
    assert.deepEqual(rig.opens(), [`K ${A}`]);
  });
});
