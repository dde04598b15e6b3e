import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { DAMAGED_SUFFIX, FileSeenNonces, MAX_SEEN, MemorySeenNonces, NonceStoreError, RETENTION_MS } from '../../src/knocks/nonces.js';
import { isRoot, tempDir } from '../helpers.js';

const T = Date.UTC(2026, 0, 1);

describe('MemorySeenNonces', () => {
  it('claims a message once per door, and forgets it only after the retention', () => {
    const seen = new MemorySeenNonces();
    assert.equal(seen.claim('ssh', 'a', T, T), 'claimed');
    assert.equal(seen.claim('ssh', 'a', T, T + 1), 'replayed');
    assert.equal(seen.claim('web', 'a', T, T + 1), 'claimed', 'another door has its own messages');
    assert.equal(seen.claim('ssh', 'a', T, T + RETENTION_MS - 1), 'replayed');
    assert.equal(seen.claim('ssh', 'b', T + RETENTION_MS, T + RETENTION_MS), 'claimed');
    assert.equal(seen.size, 1, 'ssh/a and web/a expired: only ssh/b is left');
    assert.equal(seen.claim('ssh', 'a', T, T + RETENTION_MS), 'claimed', 'forgotten (no door accepts it by now anyway)');
  });

  it('refuses more than it may hold, instead of forgetting', () => {
    const seen = new MemorySeenNonces();
    for (let i = 0; i < MAX_SEEN; i++) assert.equal(seen.claim('ssh', `m${i}`, T, T), 'claimed');
    assert.throws(() => seen.claim('ssh', 'one more', T, T), NonceStoreError);
    assert.equal(seen.claim('ssh', 'm0', T, T), 'replayed');
    assert.equal(seen.claim('ssh', 'later', T + RETENTION_MS, T + RETENTION_MS), 'claimed', 'room again once old entries expire');
  });
});

describe('FileSeenNonces', () => {
  let dir: string;
  let file: string;
  const problems: string[] = [];
  beforeEach(() => {
    dir = tempDir();
    file = join(dir, 'seen.json');
    problems.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const open = (now = T): FileSeenNonces => new FileSeenNonces(file, now, (message) => problems.push(message));

  it('keeps used messages across a restart, in a file only its owner can read', () => {
    assert.equal(open().claim('ssh', 'a', T, T), 'claimed');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { version: 1, entries: [['ssh', 'a', T + RETENTION_MS]] });
    const again = open(T + 1000);
    assert.equal(again.claim('ssh', 'a', T, T + 1000), 'replayed');
    assert.equal(again.claim('ssh', 'b', T, T + 1000), 'claimed');
    assert.equal(open(T + RETENTION_MS).size, 0, 'expired entries are not loaded');
    assert.deepEqual(problems, []);
  });

  it('a damaged file: kept aside, and messages that may have been used before are refused for one retention', () => {
    writeFileSync(file, '{"version":1,"entries":[["ssh","a",', { mode: 0o600 });
    const seen = open();
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /not valid JSON.*kept as .*seen\.json\.damaged.*refused/);
    assert.ok(existsSync(`${file}${DAMAGED_SUFFIX}`));
    assert.throws(() => seen.claim('ssh', 'a', T + 1000, T + 2000), /may have been used already/);
    assert.equal(seen.claim('ssh', 'new', T + RETENTION_MS, T + RETENTION_MS), 'claimed', 'a message stamped after the distrust period');
  });

  it('a file of the wrong shape counts as damaged', () => {
    writeFileSync(file, JSON.stringify({ version: 1, entries: [['ssh', 'a']] }), { mode: 0o600 });
    open();
    assert.match(problems[0]!, /is not a table of used messages/);
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

  it('a write that fails refuses the message, and the message stays used in memory', () => {
    const sub = join(dir, 'state');
    mkdirSync(sub);
    file = join(sub, 'seen.json');
    const seen = open();
    rmSync(sub, { recursive: true });
    assert.throws(() => seen.claim('ssh', 'a', T, T), (error: unknown) => error instanceof NonceStoreError && /cannot save/.test(error.message));
    assert.equal(seen.claim('ssh', 'a', T, T), 'replayed');
  });
});
