import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SystemClock, VirtualClock } from '../../src/actions/clock.js';

describe('VirtualClock', () => {
  it('fires due timers in (due, creation) order with the clock at each due time', async () => {
    const clock = new VirtualClock(1000);
    const fired: string[] = [];
    clock.at(3000, () => fired.push(`c@${clock.now()}`));
    clock.at(2000, () => fired.push(`a@${clock.now()}`));
    clock.at(2000, () => fired.push(`b@${clock.now()}`));
    const cancelled = clock.at(2500, () => fired.push('x'));
    clock.cancel(cancelled);
    await clock.advanceTo(2999, async () => undefined);
    assert.deepEqual(fired, ['a@2000', 'b@2000']);
    assert.equal(clock.now(), 2999);
    assert.equal(clock.nextDue(), 3000);
    await clock.advanceTo(5000, async () => undefined);
    assert.deepEqual(fired, ['a@2000', 'b@2000', 'c@3000']);
    assert.equal(clock.nextDue(), null);
  });

  it('fires timers created while advancing when they fall inside the window', async () => {
    const clock = new VirtualClock(0);
    const fired: number[] = [];
    clock.at(10, () => {
      fired.push(clock.now());
      clock.at(clock.now() + 10, () => fired.push(clock.now()));
    });
    await clock.advanceTo(100, async () => undefined);
    assert.deepEqual(fired, [10, 20]);
  });

  it('awaits the settle hook after each timer', async () => {
    const clock = new VirtualClock(0);
    const order: string[] = [];
    clock.at(1, () => order.push('t1'));
    clock.at(2, () => order.push('t2'));
    await clock.advanceTo(5, async () => {
      await new Promise((r) => setTimeout(r, 5));
      order.push('settled');
    });
    assert.deepEqual(order, ['t1', 'settled', 't2', 'settled']);
  });

  it('never moves backwards', async () => {
    const clock = new VirtualClock(100);
    await clock.advanceTo(50, async () => undefined);
    assert.equal(clock.now(), 100);
  });

  it('keeps its heap ordered under many random timers', async () => {
    const clock = new VirtualClock(0);
    const fired: number[] = [];
    let seed = 7;
    for (let i = 0; i < 2000; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const due = seed % 10_000;
      const timer = clock.at(due, () => fired.push(due));
      if (i % 7 === 0) clock.cancel(timer);
    }
    await clock.advanceTo(10_000, async () => undefined);
    assert.equal(fired.length, 2000 - Math.ceil(2000 / 7));
    assert.deepEqual(fired, [...fired].sort((a, b) => a - b));
  });
});

describe('SystemClock', () => {
  it('calls back at the due time, and not when cancelled', async () => {
    const clock = new SystemClock();
    const start = clock.now();
    const fired = await new Promise<number>((resolve) => clock.at(start + 30, () => resolve(clock.now())));
    assert.ok(fired >= start + 25, `fired after ${fired - start} ms`);
    let called = false;
    clock.cancel(clock.at(clock.now() + 10, () => (called = true)));
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(called, false);
  });
});
