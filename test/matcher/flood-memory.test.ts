/**
 * What a flood of spoofed sources may cost: nothing of a source outlives its eviction or timeout (the heap
 * stays bounded by MaxSources), and the attempts the matcher reuses carry nothing over to their next source.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { ExpiryQueue } from '../../src/matcher/expiry.js';
import { repoRoot } from '../helpers.js';
import { A, B, C, door, Rig } from './support.js';

/**
 * Runs `sources` distinct first knocks through a Matcher in a child process with --expose-gc and returns how
 * much the heap grew (MB, after full collections). `nextDeadline` after every hit is what the daemon and
 * replay do; `spacingMs` decides whether attempts are evicted (cap reached within the timeout) or expire.
 */
function heapGrowthMb(sources: number, maxSources: number, spacingMs: number): number {
  const matcherUrl = pathToFileURL(join(repoRoot, 'dist', 'src', 'matcher', 'matcher.js')).href;
  const oneTimeUrl = pathToFileURL(join(repoRoot, 'dist', 'src', 'matcher', 'one-time-files.js')).href;
  const usedUrl = pathToFileURL(join(repoRoot, 'dist', 'src', 'knocks', 'used.js')).href;
  const script = `
    const { Matcher } = await import(${JSON.stringify(matcherUrl)});
    const { DiskOneTimeFiles } = await import(${JSON.stringify(oneTimeUrl)});
    const { MemoryUsedKnocks } = await import(${JSON.stringify(usedUrl)});
    const step = (port) => ({ proto: 'tcp', port });
    const door = { name: 'D', at: { file: 'x', line: 1 }, sequence: [step(7000), step(8000), step(9000)], oneTimeSequences: null, rolling: null,
      seqTimeout: 5, tcpFlags: { set: 0, clear: 0 }, startCommand: 'true', startCommand6: null, stopCommand: null, stopCommand6: null,
      cmdTimeout: 10, target: null, allowFrom: [], ignoreRepeats: false, onReopen: 'extend', commandLimit: null, encrypted: null };
    const matcher = new Matcher([door], { maxSources: ${maxSources}, isLocal: null, oneTimeFiles: new DiskOneTimeFiles(null, () => {}), usedKnocks: new MemoryUsedKnocks() }, () => {});
    const heap = () => { gc(); gc(); return process.memoryUsage().heapUsed; };
    const before = heap();
    for (let i = 0; i < ${sources}; i++) {
      const src = i % 20 === 19 ? '2001:db8:' + (i >>> 16).toString(16) + ':' + (i & 0xffff).toString(16) + '::1'
        : '10.' + ((i >>> 16) & 255) + '.' + ((i >>> 8) & 255) + '.' + (i & 255);
      matcher.handle({ time: 1e12 + i * ${spacingMs}, src, dst: '192.0.2.1', proto: 'tcp', dport: 7000, sport: 1, flags: 2, input: 'x', iface: null });
      matcher.nextDeadline();
    }
    const growth = (heap() - before) / 1048576;
    // Using the matcher after the measurement keeps it (and what it holds) alive through it.
    process.stdout.write(JSON.stringify({ growth, sources: matcher.summary().sources }));
  `;
  const result = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  const { growth, sources: held } = JSON.parse(result.stdout) as { growth: number; sources: number };
  assert.ok(held > 0 && held <= maxSources, `${held} sources held`);
  return growth;
}

describe('flood memory', () => {
  // 300,000 sources at a cap of 5,000: a leak of even a tenth of them would hold ~5 MB or more.
  it('evicted sources leave nothing behind (the expiry queue lets go of them)', () => {
    const growth = heapGrowthMb(300_000, 5000, 0.001);
    assert.ok(growth < 4, `heap grew by ${growth.toFixed(1)} MB`);
  });

  it('expired sources leave nothing behind (no stale table kept for the eviction order)', () => {
    // 2 ms apart with a 5 s timeout: about 2,500 attempts live at once, below the cap; every one expires.
    const growth = heapGrowthMb(300_000, 5000, 2);
    assert.ok(growth < 4, `heap grew by ${growth.toFixed(1)} MB`);
  });
});

describe('reused attempts', () => {
  it('start over for their next source: stage 1, the new address, no progress carried over', () => {
    const rig = new Rig([door('D', '7000,8000,9000', { seqTimeout: 5 })], { maxSources: 2 });
    // A gets to stage 2 and times out; B and C are evicted by newer sources: their attempts are reused.
    rig.sequence(A, ['tcp/7000', 'tcp/8000'], 0);
    rig.knock(B, 'tcp/7000', 1).knock(C, 'tcp/7000', 1);
    rig.matcher.expire(rig.matcher.nextDeadline()!);
    // Looking at the next deadline (as the daemon does after every hit) lets the queue drop the evicted ones.
    for (let i = 0; i < 50; i++) rig.knock(`192.0.2.${i + 1}`, 'tcp/7000', 2).matcher.nextDeadline();
    rig.clear();
    rig.knock('192.0.2.50', 'tcp/8000', 3).knock('192.0.2.50', 'tcp/9000', 3);
    rig.knock(A, 'tcp/9000', 3).knock(B, 'tcp/8000', 3).knock(C, 'tcp/8000', 3);
    assert.deepEqual(rig.opens(), ['D 192.0.2.50']);
    assert.deepEqual(rig.trace('stage'), ['stage D 192.0.2.50 2 @3', 'stage D 192.0.2.50 3 @3']);
    rig.clear();
    rig.matcher.expire(Infinity);
    assert.deepEqual(rig.trace('timeout'), ['timeout D 192.0.2.49 1 @7']);
  });
});

describe('ExpiryQueue dropped items', () => {
  class Item {
    live = true;
    constructor(readonly deadline: number) {}
  }

  it('hands over each item that ended early exactly once, when it lets go of it, and never a live or shifted one', () => {
    const dropped: Item[] = [];
    const queue = new ExpiryQueue<Item>(1000, (item) => dropped.push(item));
    const items = Array.from({ length: 5000 }, (_, i) => new Item(i));
    for (const item of items) queue.push(item);
    queue.push(new Item(-1)); // out of order: goes to the heap
    // End three items in four early, never the first: the queue compacts once half of what it holds is dead
    // (2,501 of 5,001), and lets go of the rest as they come to its head.
    for (let i = 0; i < items.length; i++) {
      if (i % 4 === 0) continue;
      items[i]!.live = false;
      queue.noteEnded();
    }
    assert.equal(dropped.length, 2501, 'compacted');
    const shifted: Item[] = [];
    for (let item = queue.peek(); item !== undefined; item = queue.peek()) {
      queue.shift();
      item.live = false;
      shifted.push(item);
    }
    assert.equal(shifted.length, 1251);
    assert.equal(dropped.length, 3750);
    assert.equal(new Set(dropped).size, 3750, 'no item twice');
    assert.ok(dropped.every((item) => item.deadline % 4 !== 0));
    const droppedSet = new Set(dropped);
    assert.ok(!shifted.some((item) => droppedSet.has(item)));
  });

  it('lets go of ended items at its head as soon as it is told, without waiting for a compaction', () => {
    const dropped: Item[] = [];
    const queue = new ExpiryQueue<Item>(1000, (item) => dropped.push(item));
    const items = Array.from({ length: 10 }, (_, i) => new Item(i));
    for (const item of items) queue.push(item);
    // The second item ends first: it is not at the head yet, so it waits for the first to go.
    for (const index of [1, 0, 2, 5]) {
      items[index]!.live = false;
      queue.noteEnded();
    }
    assert.deepEqual(dropped, [items[0], items[1], items[2]]);
    assert.equal(queue.peek(), items[3]);
    assert.equal(queue.pending, 6);
    queue.shift();
    assert.equal(queue.peek(), items[4]);
    queue.shift();
    assert.equal(queue.peek(), items[6]);
    assert.deepEqual(dropped, [items[0], items[1], items[2], items[5]]);
  });
});
