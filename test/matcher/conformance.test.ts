/**
 * spec/knockd-behaviour.md §11 conformance cases, as far as they concern the matcher, with synthetic hits.
 * Where knocktail keeps knockd's behaviour the test asserts it; where it deliberately differs the test
 * name says "deliberate difference" and asserts ours (knockd's result is quoted in the test).
 * One-time cases 25–29 are in one-time.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { A, A6, at, B, C, door, L, Rig } from './support.js';

const openSSH = () => door('openSSH', '7000,8000,9000', { seqTimeout: 5, flags: 'syn' });
const doorD = () => door('D', '7000,8000,9000', { seqTimeout: 2 });
const doorA = (seqTimeout = 25) => door('A', '1000,2000,3000', { seqTimeout });

describe('§11 conformance (matcher)', () => {
  it('case 1: basic — three SYNs in order open the door, one stage event per step', () => {
    const rig = new Rig([openSSH()]).sequence(A, ['tcp/7000', 'tcp/8000', 'tcp/9000']);
    assert.deepEqual(rig.trace(), ['stage openSSH 10.88.0.2 1 @0', 'stage openSSH 10.88.0.2 2 @0', 'stage openSSH 10.88.0.2 3 @0', 'open openSSH 10.88.0.2 @0']);
    assert.equal(rig.matcher.summary(Infinity).inProgress.length, 0, 'a completed attempt is removed at once');
  });

  it('case 2: a wrong monitored port invalidates the attempt', () => {
    const rig = new Rig([openSSH()]).sequence(A, ['tcp/7000', 'tcp/8000', 'tcp/8000', 'tcp/9000']);
    assert.deepEqual(rig.opens(), []);
    assert.deepEqual(rig.trace('stage'), ['stage openSSH 10.88.0.2 1 @0', 'stage openSSH 10.88.0.2 2 @0']);
    assert.equal(rig.matcher.summary(Infinity).inProgress.length, 0, 'the failed attempt is gone, and 9000 started nothing');
  });

  it('case 3: ports and protocols no door uses are invisible', () => {
    const rig = new Rig([openSSH(), door('other', '1234')]).sequence(A, ['tcp/7000', 'tcp/5555', 'udp/8000', 'tcp/8000', 'tcp/9000']);
    assert.deepEqual(rig.opens(), ['openSSH 10.88.0.2']);
    assert.equal(rig.matcher.summary().counters.visible, 3);
  });

  it('case 4: a TCP-flag mismatch is ignored, and does not start another door', () => {
    const rig = new Rig([door('A', '7000,8000,9000', { flags: 'syn,!ack' }), door('B', '8000,1')]);
    rig.knock(A, 'tcp/7000', 0, { flags: 'S' });
    rig.knock(A, 'tcp/8000', 0, { flags: 'SA' });
    rig.knock(A, 'tcp/9000', 0, { flags: 'A' });
    rig.knock(A, 'tcp/8000', 0, { flags: 'S' });
    rig.knock(A, 'tcp/9000', 0, { flags: 'S' });
    assert.deepEqual(rig.opens(), ['A 10.88.0.2']);
    assert.ok(!rig.trace().some((line) => line.includes(' B ')), 'door B never started');
  });

  it('case 5: without TCPFlags any segment counts; a wrong order still fails', () => {
    const any = new Rig([door('C', '7000,8000,9000')]);
    any.knock(A, 'tcp/7000', 0, { flags: 'A' }).knock(A, 'tcp/8000', 0, { flags: 'R' }).knock(A, 'tcp/9000', 0, { flags: 'FPU' });
    assert.deepEqual(any.opens(), ['C 10.88.0.2']);
    const variant = new Rig([door('C', '7000,8000,9000')]);
    variant.knock(A, 'tcp/7000', 0).knock(A, 'tcp/9000', 0, { flags: 'A' }).knock(A, 'tcp/8000', 0).knock(A, 'tcp/9000', 0);
    assert.deepEqual(variant.opens(), []);
  });

  it('case 6: late knock — deliberate difference: the timeout is reported at the moment it happened (2.0 s), not at the late packet (2.5 s)', () => {
    const rig = new Rig([doorD()]).knock(A, 'tcp/7000', 0).knock(A, 'tcp/8000', 2.5).knock(A, 'tcp/9000', 2.5);
    assert.deepEqual(rig.opens(), []);
    assert.deepEqual(rig.trace('timeout'), ['timeout D 10.88.0.2 1 @2']);
  });

  it('case 6: deliberate difference (knockd issue #71): expire() reports the timeout without waiting for a packet', () => {
    const rig = new Rig([doorD()]).knock(A, 'tcp/7000', 0);
    rig.matcher.expire(at(1.999));
    assert.deepEqual(rig.trace('timeout'), []);
    rig.matcher.expire(at(2));
    assert.deepEqual(rig.trace('timeout'), ['timeout D 10.88.0.2 1 @2']);
  });

  it('case 7: deliberate difference — exact milliseconds: 1.15 s after the first knock is within a 2 s timeout (knockd: expired, the seconds differ by 2)', () => {
    const rig = new Rig([doorD()]).knock(A, 'tcp/7000', 0.92).knock(A, 'tcp/8000', 2.07).knock(A, 'tcp/9000', 2.08);
    assert.deepEqual(rig.opens(), ['D 10.88.0.2']);
  });

  it('case 8: whole-second boundary ok — 1.85 s after the first knock opens, as in knockd', () => {
    const rig = new Rig([doorD()]).knock(A, 'tcp/7000', 0.05).knock(A, 'tcp/8000', 1.05).knock(A, 'tcp/9000', 1.9);
    assert.deepEqual(rig.opens(), ['D 10.88.0.2']);
  });

  it('case 8: deliberate difference — the boundary is exact: 1999 ms opens, 2000 ms has expired', () => {
    const inTime = new Rig([doorD()]).knock(A, 'tcp/7000', 0.05).knock(A, 'tcp/8000', 1.05).knock(A, 'tcp/9000', 2.049);
    assert.deepEqual(inTime.opens(), ['D 10.88.0.2']);
    const late = new Rig([doorD()]).knock(A, 'tcp/7000', 0.05).knock(A, 'tcp/8000', 1.05).knock(A, 'tcp/9000', 2.05);
    assert.deepEqual(late.opens(), []);
    assert.deepEqual(late.trace('timeout'), ['timeout D 10.88.0.2 2 @2.05']);
  });

  it('case 9: the timeout counts from the first knock — deliberate difference: reported at 2.05 s (knockd: at the 2.15 s packet)', () => {
    const rig = new Rig([doorD()]).knock(A, 'tcp/7000', 0.05).knock(A, 'tcp/8000', 1.55).knock(A, 'tcp/9000', 2.15);
    assert.deepEqual(rig.opens(), []);
    assert.deepEqual(rig.trace('timeout'), ['timeout D 10.88.0.2 2 @2.05']);
  });

  it('case 10: shared prefix (#13) — each door has its own attempt; the deviating packet fails one and advances the other', () => {
    const rig = new Rig([door('A', '1000,2000,3000'), door('B', '1000,2000,4000')]).sequence(A, ['tcp/1000', 'tcp/2000', 'tcp/4000']);
    assert.deepEqual(rig.trace(), [
      'stage A 10.88.0.2 1 @0',
      'stage B 10.88.0.2 1 @0',
      'stage A 10.88.0.2 2 @0',
      'stage B 10.88.0.2 2 @0',
      'stage B 10.88.0.2 3 @0',
      'open B 10.88.0.2 @0',
    ]);
  });

  it("case 11: another door's first port mid-attempt fails the attempt and starts nothing", () => {
    const rig = new Rig([door('A', '1000,2000,3000'), door('B', '1000,2000,4000'), door('E', '5000,6000')]);
    rig.sequence(A, ['tcp/1000', 'tcp/5000', 'tcp/6000', 'tcp/5000', 'tcp/6000']);
    assert.deepEqual(rig.opens(), ['E 10.88.0.2']);
  });

  it('case 12: a repeated first port fails the attempt; the third repeat starts afresh', () => {
    const rig = new Rig([doorA()]);
    rig.sequence(A, ['tcp/1000', 'tcp/1000', 'tcp/2000', 'tcp/3000']);
    rig.sequence(B, ['tcp/1000', 'tcp/1000', 'tcp/1000', 'tcp/2000', 'tcp/3000']);
    assert.deepEqual(rig.opens(), ['A 10.88.0.3']);
  });

  it("case 13: deliberate difference (head wipe fixed) — B's completion or progress never erases A's attempt (knockd: only START A A)", () => {
    const rig = new Rig([doorA()]);
    rig.knock(A, 'tcp/1000', 0).knock(B, 'tcp/1000', 0).knock(A, 'tcp/2000', 0).knock(A, 'tcp/3000', 0).knock(B, 'tcp/2000', 0).knock(B, 'tcp/3000', 0);
    assert.deepEqual(rig.opens(), ['A 10.88.0.2', 'A 10.88.0.3']);
  });

  it('case 13 (order swapped): both open, as in knockd', () => {
    const rig = new Rig([doorA()]);
    rig.knock(B, 'tcp/1000', 0).sequence(A, ['tcp/1000', 'tcp/2000', 'tcp/3000']).knock(B, 'tcp/2000', 0).knock(B, 'tcp/3000', 0);
    assert.deepEqual(rig.opens(), ['A 10.88.0.2', 'A 10.88.0.3']);
  });

  it("case 14: deliberate difference (head wipe fixed) — a stranger's expiry does not erase B's attempt (knockd: none opens)", () => {
    const rig = new Rig([doorA(3)]);
    rig.knock(C, 'tcp/1000', 0.05).knock(B, 'tcp/1000', 1.55).knock(B, 'tcp/2000', 3.05).knock(B, 'tcp/3000', 3.1);
    assert.deepEqual(rig.opens(), ['A 10.88.0.3']);
    assert.deepEqual(rig.trace('timeout'), ['timeout A 10.88.0.4 1 @3.05']);
    const withoutC = new Rig([doorA(3)]).knock(B, 'tcp/1000', 1.55).knock(B, 'tcp/2000', 3.05).knock(B, 'tcp/3000', 3.1);
    assert.deepEqual(withoutC.opens(), ['A 10.88.0.3']);
  });

  it('case 15: a one-step door opens on every matching packet; the other protocol is invisible', () => {
    const rig = new Rig([door('single', '5555:udp')]).sequence(A, ['udp/5555', 'udp/5555', 'tcp/5555']);
    assert.deepEqual(rig.opens(), ['single 10.88.0.2', 'single 10.88.0.2']);
    assert.equal(rig.matcher.summary().counters.visible, 2);
  });

  it('case 16: the protocol is per step; a visible packet with the wrong protocol fails the attempt', () => {
    const rig = new Rig([door('mixed', '2222:udp,3333:tcp,4444:udp'), door('X', '3333:udp,2')]);
    rig.sequence(A, ['udp/2222', 'udp/3333', 'udp/4444']);
    rig.knock(B, 'udp/2222', 0).knock(B, 'tcp/3333', 0, { flags: 'A' }).knock(B, 'udp/4444', 0);
    assert.deepEqual(rig.opens(), ['mixed 10.88.0.3']);
  });

  it('case 17: overlapping doors — a continuing attempt captures the next door’s first port', () => {
    const rig = new Rig([door('A', '1000,2000'), door('B', '2000,3000')]);
    rig.sequence(A, ['tcp/1000', 'tcp/2000', 'tcp/3000']);
    assert.deepEqual(rig.opens(), ['A 10.88.0.2']);
    rig.sequence(A, ['tcp/2000', 'tcp/3000'], 1);
    assert.deepEqual(rig.opens(), ['A 10.88.0.2', 'B 10.88.0.2']);
  });

  it('case 18: identical doors both open, in file order', () => {
    const d1 = door('D1', '4000,5000');
    const d2 = door('D2', '4000,5000');
    const rig = new Rig([d1, d2]).sequence(A, ['tcp/4000', 'tcp/5000']);
    assert.deepEqual(rig.opens(), ['D1 10.88.0.2', 'D2 10.88.0.2']);
    const opened = rig.events.filter((event) => event.type === 'open').map((event) => event.door);
    assert.ok(opened[0] === d1 && opened[1] === d2, 'events carry the DoorConfig objects themselves');
  });

  it('case 19: Seq_Timeout 0 — a multi-step door expires before its second knock (even in the same ms); a one-step door opens', () => {
    const rig = new Rig([door('Z', '1000,2000', { seqTimeout: 0 }), door('Z1', '3000', { seqTimeout: 0 })]);
    rig.sequence(A, ['tcp/1000', 'tcp/2000', 'tcp/3000']);
    assert.deepEqual(rig.opens(), ['Z1 10.88.0.2']);
    assert.deepEqual(rig.trace('timeout'), ['timeout Z 10.88.0.2 1 @0']);
  });

  it('case 20 (matcher part): a one-step door opens on its knock', () => {
    const rig = new Rig([door('oc', '7000', { cmdTimeout: 2 })]).knock(A, 'tcp/7000', 0);
    assert.deepEqual(rig.trace(), ['stage oc 10.88.0.2 1 @0', 'open oc 10.88.0.2 @0']);
  });

  it('case 22 (matcher part): the open event names the IPv6 source in canonical text; IPv4 opens the same doors', () => {
    const doors = [
      door('v6a', '7000,8000:udp', { startCommand6: 'echo START6 v6a %IP%' }),
      door('v6b', '9000', { flags: 'syn,!ack' }),
      door('v6c', '9100', { startCommand6: '' }),
    ];
    const rig = new Rig(doors);
    rig.sequence(A6, ['tcp/7000', 'udp/8000', 'tcp/9000', 'tcp/9100']);
    rig.sequence(A, ['tcp/7000', 'udp/8000', 'tcp/9000', 'tcp/9100']);
    assert.deepEqual(rig.opens(), [`v6a ${A6}`, `v6b ${A6}`, `v6c ${A6}`, 'v6a 10.88.0.2', 'v6b 10.88.0.2', 'v6c 10.88.0.2']);
  });

  it('case 23 (matcher part): a door without start command still opens (the matcher does not look at commands)', () => {
    const rig = new Rig([door('s6', '7000', { stopCommand: 'echo STOP', stopCommand6: '' }), door('nostart', '7100', { startCommand: null, stopCommand: 'echo STOP' })]);
    rig.sequence(A6, ['tcp/7000', 'tcp/7100']);
    assert.deepEqual(rig.opens(), [`s6 ${A6}`, `nostart ${A6}`]);
  });

  it("case 24: Target — only hits to the target count, and hits elsewhere neither advance nor fail a target door's attempt", () => {
    const rig = new Rig([door('T', '1000,2000', { target: '10.88.0.50' }), door('L', '1000,2000')]);
    rig.knock(A, 'tcp/1000', 0, { dst: '10.88.0.50' }).knock(A, 'tcp/2000', 0, { dst: '10.88.0.50' });
    assert.deepEqual(rig.opens(), ['T 10.88.0.2']);
    rig.knock(B, 'tcp/1000', 1, { dst: '10.88.0.50' }).knock(B, 'tcp/2000', 1, { dst: L });
    assert.deepEqual(rig.opens(), ['T 10.88.0.2'], 'B opens nothing');
    assert.deepEqual(
      rig.matcher.summary(Infinity).inProgress.map((attempt) => `${attempt.door} ${attempt.ip} ${attempt.stage}/${attempt.of}`),
      ['T 10.88.0.3 1/2'],
      "B's T attempt was neither advanced nor invalidated",
    );
    rig.knock(C, 'tcp/1000', 2, { dst: L }).knock(C, 'tcp/2000', 2, { dst: L });
    assert.deepEqual(rig.opens(), ['T 10.88.0.2', 'L 10.88.0.4']);
    rig.knock(B, 'tcp/2000', 3, { dst: '10.88.0.50' });
    assert.deepEqual(rig.opens(), ['T 10.88.0.2', 'L 10.88.0.4', 'T 10.88.0.3'], "B's untouched attempt still completes");
  });

  it("case 30 (matcher part): deliberate difference — a reload keeps an unchanged door's progress (knockd forgets it: only START B A)", () => {
    const doorA1 = door('A', '1000,2000,3000');
    const rig = new Rig([doorA1]).knock(A, 'tcp/1000', 0).knock(A, 'tcp/2000', 0);
    const reloadedA = door('A', '1000,2000,3000');
    rig.matcher.reload([reloadedA, door('B', '4000')]);
    rig.knock(A, 'tcp/3000', 1).knock(A, 'tcp/4000', 1);
    assert.deepEqual(rig.opens(), ['A 10.88.0.2', 'B 10.88.0.2']);
    const openA = rig.events.find((event) => event.type === 'open');
    assert.ok(openA?.type === 'open');
    assert.equal(openA.door, reloadedA, 'events after a reload carry the new DoorConfig');
  });

  it('case 32 (matcher part): knocks from the host to itself on loopback count when isLocal accepts 127.0.0.1 and ::1', () => {
    const rig = new Rig([door('L', '1000,2000')], { isLocal: (dst) => dst === '127.0.0.1' || dst === '::1' });
    rig.sequence('127.0.0.1', ['tcp/1000', 'tcp/2000'], 0, { dst: '127.0.0.1' });
    rig.sequence('::1', ['tcp/1000', 'tcp/2000'], 0, { dst: '::1' });
    rig.sequence(A, ['tcp/1000', 'tcp/2000'], 0, { dst: L });
    assert.deepEqual(rig.opens(), ['L 127.0.0.1', 'L ::1']);
  });

  it('case 33 (matcher part): deliberate difference — isLocal is asked on every hit, so an address added later counts (knockd never sees it)', () => {
    const local = new Set([L]);
    const rig = new Rig([door('L', '1000,2000')], { isLocal: (dst) => local.has(dst) });
    rig.sequence(A, ['tcp/1000', 'tcp/2000'], 0, { dst: '10.88.0.9' });
    assert.deepEqual(rig.opens(), []);
    local.add('10.88.0.9');
    rig.sequence(A, ['tcp/1000', 'tcp/2000'], 1, { dst: '10.88.0.9' });
    assert.deepEqual(rig.opens(), ['L 10.88.0.2']);
  });

  it('case 35: no doors — nothing is watched and nothing opens', () => {
    const rig = new Rig([]).sequence(A, ['tcp/1000', 'udp/1000', 'tcp/22']);
    assert.deepEqual(rig.events, []);
    assert.equal(rig.matcher.watch().watches('tcp', 1000), false);
    assert.deepEqual(rig.matcher.watch().sequences, []);
    assert.equal(rig.matcher.nextDeadline(), null);
    assert.equal(rig.matcher.summary().counters.visible, 0);
  });
});
