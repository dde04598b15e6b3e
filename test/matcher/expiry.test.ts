import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExpiryQueue } from '../../src/matcher/expiry.js';

class Item {
  live = true;
  constructor(readonly deadline: number) {}
}

function drain(queue: ExpiryQueue<Item>): number[] {
  const out: number[] = [];
  for (let item = queue.peek(); item !== undefined; item = queue.peek()) {
    queue.shift();
    item.live = false;
    out.push(item.deadline);
  }
  return out;
}

describe('ExpiryQueue', () => {
  it('keeps deadline order when items arrive out of order', () => {
    const queue = new ExpiryQueue<Item>(1000);
    for (const deadline of [10, 20, 15, 30, 5, 30, 25]) queue.push(new Item(deadline));
    assert.equal(queue.pending, 7);
    assert.deepEqual(drain(queue), [5, 10, 15, 20, 25, 30, 30]);
    assert.equal(queue.pending, 0);
  });

  it('stays exact under heavy disorder (e.g. replaying two files one after the other), with early ends among late items', () => {
    const queue = new ExpiryQueue<Item>(1000);
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const items = Array.from({ length: 20_000 }, (_, i) => new Item(i < 10_000 ? 50_000 + i : Math.floor(random() * 60_000)));
    for (const item of items) queue.push(item);
    const ended = items.filter((_, i) => i % 3 === 0);
    for (const item of ended) {
      item.live = false;
      queue.noteEnded();
    }
    const expected = items.filter((item) => item.live).map((item) => item.deadline).sort((a, b) => a - b);
    assert.equal(queue.pending, expected.length);
    assert.deepEqual(drain(queue), expected);
  });

  it('skips items that ended early and compacts when they pile up', () => {
    const queue = new ExpiryQueue<Item>(1000);
    const items = Array.from({ length: 10_000 }, (_, i) => new Item(i));
    for (const item of items) queue.push(item);
    for (const item of items) {
      if (item.deadline % 10 === 0) continue;
      item.live = false;
      queue.noteEnded();
    }
    assert.equal(queue.pending, 1000);
    queue.push(new Item(5)); // lands among the survivors after compaction
    assert.deepEqual(drain(queue), [0, 5, ...Array.from({ length: 999 }, (_, i) => (i + 1) * 10)]);
  });

  it('pending stays exact across shifts, early ends and compaction', () => {
    const queue = new ExpiryQueue<Item>(1000);
    const items = Array.from({ length: 5000 }, (_, i) => new Item(i));
    for (const item of items) queue.push(item);
    for (let i = 0; i < 2000; i++) {
      queue.peek();
      queue.shift();
      items[i]!.live = false;
    }
    for (let i = 4999; i >= 3000; i--) {
      items[i]!.live = false;
      queue.noteEnded();
    }
    assert.equal(queue.pending, 1000);
    assert.deepEqual(drain(queue), Array.from({ length: 1000 }, (_, i) => 2000 + i));
  });
});
