/**
 * The persisted cursor: a restart resumes exactly where the follower stopped, finds the old file among the
 * rotated siblings when the log was rotated while stopped, and falls back safely when the cursor does not fit.
 */
import assert from 'node:assert/strict';
import { appendFileSync, closeSync, copyFileSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FollowerOptions } from '../../src/inputs/follower.js';
import { appendSeen, follow, freshDirectory, Received, runWriter, stopAfterTests, waitFor, lineSink } from './follower-harness.js';
import { LogFollower } from '../../src/inputs/follower.js';
import { defaultPlan } from './numbered-writer.js';

/** A log file (empty) and a cursor file in a state directory beside it. */
function setUp(): { directory: string; file: string; cursorFile: string } {
  const directory = freshDirectory();
  mkdirSync(join(directory, 'state'));
  const file = join(directory, 'kern.log');
  writeFileSync(file, '');
  return { directory, file, cursorFile: join(directory, 'state', 'kern.log.cursor') };
}

/** Follows `file` until `lines` have arrived, then stops (which persists the cursor). */
async function readThenStop(file: string, cursorFile: string, lines: string, options: Partial<FollowerOptions> = {}): Promise<void> {
  const followed = await follow(file, { cursorFile, ...options });
  appendFileSync(file, lines);
  const count = lines.split('\n').length - 1;
  await waitFor(() => followed.lines.length === count, `${count} lines`);
  await followed.follower.stop();
}

describe('LogFollower cursor', () => {
  test('a restart resumes exactly where it stopped and reads what was written while stopped', async () => {
    const { file, cursorFile } = setUp();
    await readThenStop(file, cursorFile, 'a1\na2\n');
    appendFileSync(file, 'b1\nb2\nb3 par');
    const followed = await follow(file, { cursorFile });
    try {
      await waitFor(() => followed.lines.length === 2, 'the lines written while stopped');
      appendFileSync(file, 'tial\n');
      await waitFor(() => followed.lines.length === 3, 'the completed line');
      assert.deepEqual(followed.lines, ['b1', 'b2', 'b3 partial']);
      assert.deepEqual(followed.warnings, []);
    } finally {
      await followed.follower.stop();
    }
  });

  test('rotated while stopped (dateext name): the old file is drained from the saved offset, then the new file from its start', async () => {
    const { directory, file, cursorFile } = setUp();
    writeFileSync(join(directory, 'kern.log-20261119.gz'), 'not the file we want\n');
    await readThenStop(file, cursorFile, 'a1\na2\n');
    appendFileSync(file, 'a3\n');
    renameSync(file, join(directory, 'kern.log-20261120'));
    writeFileSync(file, 'n1\n');
    const followed = await follow(file, { cursorFile });
    try {
      await waitFor(() => followed.lines.length === 2, 'two lines');
      appendFileSync(file, 'n2\n');
      await waitFor(() => followed.lines.length === 3, 'the line appended after the restart');
      assert.deepEqual(followed.lines, ['a3', 'n1', 'n2']);
      assert.ok(followed.warnings.some((message) => message.includes(`resuming ${join(directory, 'kern.log-20261120')} at byte 6`)), followed.warnings.join('\n'));
      assert.equal(followed.follower.status().rotations, 0);
    } finally {
      await followed.follower.stop();
    }
  });

  test('copytruncate while stopped: the rest is read from the copy, then the truncated file from its start', async () => {
    const { file, cursorFile } = setUp();
    await readThenStop(file, cursorFile, 'a1\na2\n');
    appendFileSync(file, 'a3\n');
    copyFileSync(file, `${file}.1`);
    writeFileSync(file, 'n1\n');
    const followed = await follow(file, { cursorFile });
    try {
      await waitFor(() => followed.lines.length === 2, 'two lines');
      assert.deepEqual(followed.lines, ['a3', 'n1']);
    } finally {
      await followed.follower.stop();
    }
  });

  test('replaced in place (same device and inode, other content, as after inode reuse): read from the start, with a warning', async () => {
    const { file, cursorFile } = setUp();
    await readThenStop(file, cursorFile, 'a1\na2\n');
    writeFileSync(file, 'x1\nx2\nx3\n'); // same inode, another head: the hash tells them apart
    const followed = await follow(file, { cursorFile });
    try {
      await waitFor(() => followed.lines.length === 3, 'the new content');
      assert.deepEqual(followed.lines, ['x1', 'x2', 'x3']);
      assert.ok(followed.warnings.some((message) => message.includes('is not the file the cursor points to')), followed.warnings.join('\n'));
    } finally {
      await followed.follower.stop();
    }
  });

  test('deleted and recreated while stopped, with unread bytes left: those are reported lost, the new file is read from its start', async () => {
    const { file, cursorFile } = setUp();
    await readThenStop(file, cursorFile, 'a1\nunfinished', {});
    unlinkSync(file);
    writeFileSync(file, 'n1\n');
    const followed = await follow(file, { cursorFile });
    try {
      await waitFor(() => followed.lines.length === 1, 'the new file');
      assert.deepEqual(followed.lines, ['n1']);
      assert.ok(followed.warnings.some((message) => message.includes('its last 10 bytes are lost')), followed.warnings.join('\n'));
    } finally {
      await followed.follower.stop();
    }
  });

  test('fromEnd ignores the saved cursor', async () => {
    const { file, cursorFile } = setUp();
    await readThenStop(file, cursorFile, 'a1\n');
    appendFileSync(file, 'written while stopped\n');
    const followed = await follow(file, { cursorFile, fromEnd: true });
    try {
      appendFileSync(file, 'a3\n');
      await waitFor(() => followed.lines.length === 1, 'the new line');
      assert.deepEqual(followed.lines, ['a3']);
    } finally {
      await followed.follower.stop();
    }
  });

  test('a damaged cursor file, or one saved for another path: a warning naming it, and a start at the end', async () => {
    const { directory, file, cursorFile } = setUp();
    appendFileSync(file, 'old\n');
    for (const [content, expected] of [
      ['{"version":1,"path":', 'is not valid JSON'],
      ['{"version":7}', 'is not a knocktail file cursor'],
      [JSON.stringify({ version: 1, path: join(directory, 'other.log'), files: [] }), `belongs to ${join(directory, 'other.log')}`],
    ] as const) {
      writeFileSync(cursorFile, content);
      const followed = await follow(file, { cursorFile });
      try {
        await appendSeen(followed, file, 'new\n');
        assert.deepEqual(followed.lines, ['new']);
        assert.equal(followed.warnings.length, 1);
        assert.ok(followed.warnings[0]!.includes(cursorFile) && followed.warnings[0]!.includes(expected), followed.warnings[0]);
      } finally {
        await followed.follower.stop();
      }
    }
  });

  test('an old file still draining at stop is saved too: after the restart it comes first, nothing twice', async () => {
    const { file, cursorFile } = setUp();
    const first = await follow(file, { cursorFile });
    const old = openSync(file, 'a');
    try {
      writeSync(old, 'a1\n');
      await waitFor(() => first.lines.length === 1, 'a1');
      renameSync(file, `${file}.1`);
      writeSync(old, 'a2\n');
      writeFileSync(file, 'n1\n');
      await waitFor(() => first.lines.length === 3, 'a2 and n1');
      await first.follower.stop();
      assert.equal(JSON.parse(readFileSync(cursorFile, 'utf8')).files.length, 2);
      writeSync(old, 'a3\n'); // the old file is still written while we are stopped
      appendFileSync(file, 'n2\n');
    } finally {
      closeSync(old);
    }
    const second = await follow(file, { cursorFile });
    try {
      await waitFor(() => second.lines.length === 2, 'a3 and n2');
      assert.deepEqual([...first.lines, ...second.lines], ['a1', 'a2', 'n1', 'a3', 'n2']);
    } finally {
      await second.follower.stop();
    }
  });

  test('stopped and restarted while a 10k lines/s writer keeps writing and rotating: every line exactly once across both runs', async () => {
    for (const rotation of ['rename', 'copytruncate'] as const) {
      const { file, cursorFile } = setUp();
      const received = new Received();
      const options = { path: file, maxLineLength: 65536, cursorFile, fromEnd: false, lines: lineSink(received.onLine), onWarning: received.onWarning };
      const first = stopAfterTests(new LogFollower(options));
      await first.start();
      const writing = runWriter({ ...defaultPlan, file, rotation, rotateEveryMs: 500, reopenDelayMs: rotation === 'rename' ? 100 : 0 });
      await waitFor(() => received.numbers.length >= 5000, '5000 lines');
      await first.stop();
      await sleep(300); // the writer goes on (and may rotate once) while no follower runs
      const second = stopAfterTests(new LogFollower(options));
      await second.start();
      try {
        await writing;
        await waitFor(() => received.last === defaultPlan.total - 1, 'the last line');
      } finally {
        await second.stop();
      }
      received.assertExactlyOnceInOrder(0, defaultPlan.total);
    }
  });

  test('the cursor file is replaced atomically and names every open file', async () => {
    const { directory, file, cursorFile } = setUp();
    const followed = await follow(file, { cursorFile });
    try {
      await appendSeen(followed, file, 'one\ntwo\n');
      followed.follower.persistCursor();
      const saved = JSON.parse(readFileSync(cursorFile, 'utf8'));
      assert.equal(saved.version, 1);
      assert.equal(saved.path, file);
      assert.equal(saved.files.length, 1);
      assert.equal(saved.files[0].offset, 8);
      assert.equal(saved.files[0].ino, followed.follower.status().ino);
      assert.match(saved.files[0].headSha256, /^[0-9a-f]{64}$/);
      assert.deepEqual(readdirSync(join(directory, 'state')), ['kern.log.cursor']); // no temp file left behind
    } finally {
      await followed.follower.stop();
    }
  });

  test('a cursor that cannot be saved is reported with the file and a hint', async () => {
    const { directory, file } = setUp();
    const followed = await follow(file, { cursorFile: join(directory, 'no-such-dir', 'cursor') });
    await appendSeen(followed, file, 'one\n');
    await followed.follower.stop();
    assert.equal(followed.warnings.length, 1);
    assert.match(followed.warnings[0]!, /cannot save the cursor file .*no-such-dir\/cursor: .*is its directory there and writable/);
  });
});
