import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { DAMAGED_SUFFIX, FileUsedKnocks, type KnockClaim, MAX_USED, MemoryUsedKnocks, UnrecordedUseError } from '../../src/knocks/used.js';
import { isRoot, tempDir } from '../helpers.js';

const T = Date.UTC(2026, 0, 1);
const KEEP = 600_000;

/** A claim of `id` on `scope`, used at `at` by 192.0.2.7, usable from `at` and kept KEEP after it. */
function claim(scope: string, id: string, at = T, by = '192.0.2.7'): KnockClaim {
  return { scope, id, usableFrom: at, keepUntil: at + KEEP, use: { at, by } };
}

describe('MemoryUsedKnocks', () => {
  it('claims a knock once per door, tells the first use after that, and forgets it only when it may', () => {
    const used = new MemoryUsedKnocks();
    assert.equal(used.claim(claim('ssh', 'a'), T), null);
    assert.deepEqual(used.claim(claim('ssh', 'a', T + 1, '198.51.100.9'), T + 1), { at: T, by: '192.0.2.7' }, 'the first use, not the replay');
    assert.equal(used.claim(claim('web', 'a', T + 1), T + 1), null, 'another door has its own knocks');
    assert.deepEqual(used.claim(claim('ssh', 'a'), T + KEEP - 1), { at: T, by: '192.0.2.7' });
    assert.equal(used.claim(claim('ssh', 'b', T + KEEP), T + KEEP), null);
    assert.equal(used.size, 2, 'ssh/a expired: web/a (kept one ms longer) and ssh/b are left');
    assert.equal(used.claim(claim('ssh', 'a'), T + KEEP), null, 'forgotten (no door accepts it by now anyway)');
  });

  it('refuses more than it may hold, instead of forgetting', () => {
    const used = new MemoryUsedKnocks();
    for (let i = 0; i < MAX_USED; i++) assert.equal(used.claim(claim('ssh', `m${i}`), T), null);
    assert.throws(() => used.claim(claim('ssh', 'one more'), T), UnrecordedUseError);
    assert.notEqual(used.claim(claim('ssh', 'm0'), T), null);
    assert.equal(used.claim(claim('ssh', 'later', T + KEEP), T + KEEP), null, 'room again once old entries expire');
  });
});

describe('FileUsedKnocks', () => {
  let dir: string;
  let file: string;
  const problems: string[] = [];
  beforeEach(() => {
    dir = tempDir();
    file = join(dir, 'used.json');
    problems.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const open = (now = T): FileUsedKnocks => new FileUsedKnocks(file, now, (message) => problems.push(message));

  it('keeps uses across a restart, with when and by whom, in a file only its owner can read', () => {
    assert.equal(open().claim(claim('ssh', 'a'), T), null);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { version: 1, entries: [['ssh', 'a', T + KEEP, T, '192.0.2.7']] });
    const again = open(T + 1000);
    assert.deepEqual(again.claim(claim('ssh', 'a', T + 1000), T + 1000), { at: T, by: '192.0.2.7' });
    assert.equal(again.claim(claim('ssh', 'b', T + 1000), T + 1000), null);
    assert.equal(open(T + KEEP + 500).size, 1, 'expired entries are not loaded');
    assert.deepEqual(problems, []);
  });

  it('a damaged file: kept aside, and knocks that could have been used before the start are refused', () => {
    writeFileSync(file, '{"version":1,"entries":[["ssh","a",', { mode: 0o600 });
    const used = open(T + 5000);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /not valid JSON.*kept as .*used\.json\.damaged.*refused/);
    assert.ok(existsSync(`${file}${DAMAGED_SUFFIX}`));
    assert.throws(() => used.claim(claim('ssh', 'a', T + 4999), T + 6000), /may have been used already/);
    assert.equal(used.claim(claim('ssh', 'new', T + 5000), T + 6000), null, 'a knock usable only from the start on');
  });

  it('a file of the wrong shape counts as damaged', () => {
    writeFileSync(file, JSON.stringify({ version: 1, entries: [['ssh', 'a', T]] }), { mode: 0o600 });
    open();
    assert.match(problems[0]!, /is not a table of used knocks/);
  });

  it('refuses a file others may write, or one that is not a regular file', () => {
    writeFileSync(file, JSON.stringify({ version: 1, entries: [] }), { mode: 0o600 });
    chmodSync(file, 0o622);
    assert.throws(() => open(), /can be written by other users \(mode 622\).*chmod 600/);
    rmSync(file);
    mkdirSync(file);
    assert.throws(() => open(), /is not a regular file/);
  });

  it('refuses a file that belongs to another user', { skip: isRoot ? false : 'needs root to chown' }, () => {
    writeFileSync(file, JSON.stringify({ version: 1, entries: [] }), { mode: 0o600 });
    chownSync(file, 65534, 65534);
    assert.throws(() => open(), /belongs to uid 65534.*chown 0/);
  });

  it('a write that fails refuses the knock, and the knock stays used in memory', () => {
    const sub = join(dir, 'state');
    mkdirSync(sub);
    file = join(sub, 'used.json');
    const used = open();
    rmSync(sub, { recursive: true });
    assert.throws(() => used.claim(claim('ssh', 'a'), T), (error: unknown) => error instanceof UnrecordedUseError && /cannot save/.test(error.message));
    assert.notEqual(used.claim(claim('ssh', 'a'), T), null);
  });
});
