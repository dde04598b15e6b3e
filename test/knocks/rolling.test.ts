import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSecretKey, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { keyBytes, type SecretFile } from '../../src/config/secret-file.js';
import type { PortRange, RollingConfig } from '../../src/config/types.js';
import { deriveSequence, minimumRangeSize, periodAt, RollingSequences } from '../../src/knocks/rolling.js';
import { needs, repoRoot } from '../helpers.js';
import { random } from '../random.js';
import { documentVectors, type Vector } from './support.js';

const REFERENCE = join(repoRoot, 'test', 'knocks', 'rolling_reference.py');

function secretOf(file: Buffer): SecretFile {
  const bytes = keyBytes(file);
  return { path: '/test.secret', key: createSecretKey(bytes), size: bytes.length, uid: 0, mode: 0o600 };
}

function rollingOf(v: Vector): RollingConfig {
  return { secret: secretOf(v.file), ports: { first: v.first, last: v.last, proto: v.proto }, length: v.length, period: v.period };
}

const ports = (steps: ReadonlyArray<{ port: number }>): number[] => steps.map((step) => step.port);

/** What the Python implementation of the document answers for `vectors`. */
function reference(vectors: Vector[]): Array<{ period: number; ports: number[]; protocol: string; next: number[] }> {
  const input = vectors.map((v) => ({ secret: v.file.toString('hex'), door: v.door, time: v.time, period: v.period, low: v.first, high: v.last, proto: v.proto, length: v.length }));
  const run = spawnSync('python3', [REFERENCE], { input: JSON.stringify(input), encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}

describe('the test vectors of docs/rolling-sequences.md', () => {
  const vectors = documentVectors();

  test('the document has the vectors it describes', () => {
    assert.equal(vectors.length, 6);
    assert.deepEqual(vectors.map((v) => v.door), ['ssh', 'ssh', 'openSSH', 'openSSH', 'tür', 'scan-proof']);
  });

  test('the code derives every vector', () => {
    for (const v of vectors) {
      const rolling = new RollingSequences(v.door, rollingOf(v));
      const T = rolling.periodAt(v.time * 1000);
      assert.equal(T, v.T, v.door);
      assert.deepEqual(ports(rolling.sequence(T)), v.sequence, `${v.door} at ${v.time}`);
      assert.deepEqual(ports(rolling.sequence(T + 1)), v.next, `${v.door} after ${v.time}`);
      assert.ok(rolling.sequence(T).every((step) => step.proto === v.proto));
    }
  });

  test('an implementation written from the document alone (Python) derives them too', { skip: needs({ tools: ['python3'] }) }, () => {
    assert.deepEqual(
      reference(vectors),
      vectors.map((v) => ({ period: v.T, ports: v.sequence, protocol: v.proto, next: v.next })),
    );
  });
});

/** Random doors: keys of 16-64 bytes (sometimes with a line feed), names with non-ASCII letters, any range and length. */
function randomVectors(count: number, seed: number): Vector[] {
  const next = random(seed);
  const int = (low: number, high: number): number => low + Math.floor(next() * (high - low + 1));
  const letters = 'abcXYZ_-.09äöü€漢';
  return Array.from({ length: count }, () => {
    const length = int(1, 32);
    const size = int(minimumRangeSize(length), next() < 0.3 ? minimumRangeSize(length) + 3 : 20000);
    const low = int(1, 65536 - size);
    const file = Buffer.from(Array.from({ length: int(16, 64) }, () => int(0, 255)));
    if (next() < 0.2) file[file.length - 1] = 0x0a;
    return {
      file,
      door: Array.from({ length: int(1, 12) }, () => letters[int(0, letters.length - 1)]).join(''),
      time: int(0, 4_000_000_000) + int(0, 999) / 1000,
      period: int(10, 86_400),
      first: low,
      last: low + size - 1,
      proto: next() < 0.5 ? 'tcp' : 'udp',
      length,
      T: 0,
      sequence: [],
      next: [],
    };
  });
}

test('300 random doors: the code and the Python implementation agree', { skip: needs({ tools: ['python3'] }) }, () => {
  const vectors = randomVectors(300, 20260101);
  const answers = reference(vectors);
  for (const [index, v] of vectors.entries()) {
    const rolling = new RollingSequences(v.door, rollingOf(v));
    const T = rolling.periodAt(v.time * 1000);
    assert.deepEqual(
      { period: T, ports: ports(rolling.sequence(T)), next: ports(rolling.sequence(T + 1)) },
      { period: answers[index]!.period, ports: answers[index]!.ports, next: answers[index]!.next },
      `case ${index}: ${JSON.stringify({ ...v, file: v.file.toString('hex') })}`,
    );
  }
});

test('every sequence: the length asked, distinct ports of the range, the range protocol, never a port next to the previous one', () => {
  for (const v of randomVectors(500, 7)) {
    const range: PortRange = { first: v.first, last: v.last, proto: v.proto };
    const steps = deriveSequence(secretOf(v.file).key, v.door, periodAt(v.time * 1000, v.period), range, v.length);
    assert.equal(steps.length, v.length);
    assert.equal(new Set(ports(steps)).size, v.length);
    for (const [index, step] of steps.entries()) {
      assert.equal(step.proto, v.proto);
      assert.ok(step.port >= v.first && step.port <= v.last);
      if (index > 0) assert.notEqual(Math.abs(step.port - steps[index - 1]!.port), 1);
    }
  }
});

test('the key, the door name and the period each change the sequence', () => {
  const key = createSecretKey(randomBytes(32));
  const range: PortRange = { first: 1024, last: 65535, proto: 'tcp' };
  const base = ports(deriveSequence(key, 'ssh', 1000, range, 8));
  assert.notDeepEqual(ports(deriveSequence(createSecretKey(randomBytes(32)), 'ssh', 1000, range, 8)), base);
  assert.notDeepEqual(ports(deriveSequence(key, 'ssh2', 1000, range, 8)), base);
  assert.notDeepEqual(ports(deriveSequence(key, 'ssh', 1001, range, 8)), base);
  assert.deepEqual(ports(deriveSequence(key, 'ssh', 1000, range, 8)), base);
});

test('ports are drawn evenly over the range (no bias toward low ports)', () => {
  const key = createSecretKey(randomBytes(32));
  const range: PortRange = { first: 100, last: 109, proto: 'udp' };
  const counts = new Array<number>(10).fill(0);
  for (let period = 0; period < 4000; period++) counts[deriveSequence(key, 'd', period, range, 1)[0]!.port - 100]!++;
  // 400 expected per port; a fair draw stays well within ±25% (about 5 standard deviations).
  for (const count of counts) assert.ok(count > 300 && count < 500, `counts ${counts.join(' ')}`);
});

test('impossible derivations are refused, not looped on', () => {
  const key = createSecretKey(randomBytes(16));
  assert.throws(() => deriveSequence(key, 'd', 1, { first: 1, last: 7, proto: 'tcp' }, 4), /cannot hold 4 knocks/);
  assert.throws(() => deriveSequence(key, 'd', -1, { first: 1, last: 100, proto: 'tcp' }, 4), /period -1/);
  assert.throws(() => deriveSequence(key, 'd', 1.5, { first: 1, last: 100, proto: 'tcp' }, 4), /period 1.5/);
  assert.throws(() => deriveSequence(key, 'x'.repeat(65536), 1, { first: 1, last: 100, proto: 'tcp' }, 4), /door name/);
});

describe('RollingSequences: each period derived once', () => {
  const v = documentVectors()[0]!;
  const startMs = v.time * 1000;

  test('periods and the time left in them', () => {
    const rolling = new RollingSequences(v.door, rollingOf(v));
    assert.equal(rolling.periodAt(startMs), v.T);
    assert.equal(rolling.periodAt(startMs + 29_999), v.T);
    assert.equal(rolling.periodAt(startMs + 30_000), v.T + 1);
    assert.equal(rolling.msLeft(startMs), 30_000);
    assert.equal(rolling.msLeft(startMs + 29_999), 1);
  });

  test('a window holds the sequences of T-1, T and T+1, and is the same object all through the period', () => {
    const rolling = new RollingSequences(v.door, rollingOf(v));
    const window = rolling.window(startMs + 5);
    assert.equal(window.period, v.T);
    assert.deepEqual(window.accepted.map((a) => a.period), [v.T - 1, v.T, v.T + 1]);
    assert.deepEqual(ports(window.accepted[1]!.steps), v.sequence);
    assert.deepEqual(ports(window.accepted[2]!.steps), v.next);
    assert.equal(rolling.window(startMs + 29_999), window);
    // The next window shares the arrays of the periods both accept (nothing derived again).
    const after = rolling.window(startMs + 30_000);
    assert.notEqual(after, window);
    assert.equal(after.accepted[0]!.steps, window.accepted[1]!.steps);
    assert.equal(after.accepted[1]!.steps, window.accepted[2]!.steps);
  });

  test('sequences are frozen and cached, the cache stays small', () => {
    const rolling = new RollingSequences(v.door, rollingOf(v));
    const first = rolling.sequence(v.T);
    assert.ok(Object.isFrozen(first) && Object.isFrozen(first[0]));
    assert.equal(rolling.sequence(v.T), first);
    for (let period = v.T + 1; period <= v.T + 10; period++) rolling.sequence(period);
    const again = rolling.sequence(v.T);
    assert.notEqual(again, first, 'an old period was evicted');
    assert.deepEqual(again, first);
  });
});
