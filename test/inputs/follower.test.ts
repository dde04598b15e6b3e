/**
 * The follower's mechanisms one by one, driven from this process so that each situation is exact: a write
 * the follower has provably seen (its status shows the size) or not (done in the same synchronous turn).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs, { appendFileSync, closeSync, copyFileSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, rmdirSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';
import { LogFollower } from '../../src/inputs/follower.js';
import { repoRoot } from '../helpers.js';
import { appendSeen, follow, freshDirectory, stopAfterTests, waitFor, lineSink } from './follower-harness.js';

function linesOf(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix} line ${String(i).padStart(3, '0')}`);
}

const text = (lines: string[]) => lines.map((line) => `${line}\n`).join('');

describe('LogFollower', () => {
  test('a partial line is held back until its newline arrives, then delivered whole', async () => {
    const file = join(freshDirectory(), 'kern.log');
    writeFileSync(file, '');
    const followed = await follow(file);
    try {
      await appendSeen(followed, file, 'first\nSRC=10.0.0.1 DP');
      assert.deepEqual(followed.lines, ['first']);
      await appendSeen(followed, file, 'T=7000');
      assert.deepEqual(followed.lines, ['first']);
      appendFileSync(file, ' SYN\n');
      await waitFor(() => followed.lines.length === 2, 'the completed line');
      assert.deepEqual(followed.lines, ['first', 'SRC=10.0.0.1 DPT=7000 SYN']);
      assert.equal(followed.follower.status().offset, statSync(file).size);
    } finally {
      await followed.follower.stop();
    }
  });

  test('a UTF-8 character split across two writes arrives whole', async () => {
    const file = join(freshDirectory(), 'auth.log');
    writeFileSync(file, '');
    const followed = await follow(file);
    try {
      const bytes = Buffer.from('user=José 😀\n');
      const cut = bytes.indexOf(0xf0) + 2; // inside the 4-byte emoji
      await appendSeen(followed, file, bytes.subarray(0, 8)); // "user=Jo" + the first byte of "é"
      await appendSeen(followed, file, bytes.subarray(8, cut));
      appendFileSync(file, bytes.subarray(cut));
      await waitFor(() => followed.lines.length === 1, 'the line');
      assert.deepEqual(followed.lines, ['user=José 😀']);
    } finally {
      await followed.follower.stop();
    }
  });

  test('a trailing \\r is removed, empty lines are kept', async () => {
    const file = join(freshDirectory(), 'kern.log');
    writeFileSync(file, '');
    const followed = await follow(file);
    try {
      appendFileSync(file, 'dos\r\n\nunix\n');
      await waitFor(() => followed.lines.length === 3, 'three lines');
      assert.deepEqual(followed.lines, ['dos', '', 'unix']);
    } finally {
      await followed.follower.stop();
    }
  });

  test('a line of exactly maxLineLength bytes arrives; a longer one, written in pieces, is dropped with one warning', async () => {
    const file = join(freshDirectory(), 'kern.log');
    writeFileSync(file, '');
    const followed = await follow(file, { maxLineLength: 100 });
    try {
      appendFileSync(file, `${'a'.repeat(100)}\n`);
      await appendSeen(followed, file, 'b'.repeat(60));
      await appendSeen(followed, file, 'b'.repeat(60));
      appendFileSync(file, `${'b'.repeat(60)}\nafter\n`);
      await waitFor(() => followed.lines.length === 2, 'the line after the long one');
      assert.deepEqual(followed.lines, ['a'.repeat(100), 'after']);
      assert.equal(followed.follower.status().droppedLines, 1);
      assert.equal(followed.warnings.length, 1);
      assert.match(followed.warnings[0]!, /kern\.log: line at byte 101 is longer than 100 bytes/);
    } finally {
      await followed.follower.stop();
    }
  });

  test('copytruncate regrowing to the same size before the follower looks (caught by the head check)', async () => {
    const file = join(freshDirectory(), 'kern.log');
    writeFileSync(file, '');
    const followed = await follow(file);
    try {
      const before = linesOf('before', 5);
      const after = linesOf('after!', 5); // same lengths, other content
      appendFileSync(file, text(before));
      await waitFor(() => followed.lines.length === 5, 'the first lines');
      const fd = openSync(file, 'a');
      ftruncateSync(fd, 0); // truncate and rewrite in one synchronous turn: the follower cannot look in between
      writeSync(fd, text(after));
      closeSync(fd);
      await waitFor(() => followed.lines.length === 10, 'the rewritten lines');
      assert.deepEqual(followed.lines, [...before, ...after]);
      assert.equal(followed.follower.status().truncations, 1);
    } finally {
      await followed.follower.stop();
    }
  });

  test('copytruncate regrowing beyond the old size, and truncation to a smaller size', async () => {
    const file = join(freshDirectory(), 'kern.log');
    writeFileSync(file, '');
    const followed = await follow(file);
    try {
      const first = linesOf('first', 5);
      const longer = linesOf('second generation', 8);
      const shorter = linesOf('3', 1);
      appendFileSync(file, text(first));
      await waitFor(() => followed.lines.length === 5, 'the first lines');
      writeFileSync(file, text(longer)); // O_TRUNC then write, synchronously
      await waitFor(() => followed.lines.length === 13, 'the longer generation');
      writeFileSync(file, text(shorter));
      await waitFor(() => followed.lines.length === 14, 'the shorter generation');
      assert.deepEqual(followed.lines, [...first, ...longer, ...shorter]);
      assert.equal(followed.follower.status().truncations, 2);
    } finally {
      await followed.follower.stop();
    }
  });

  test('copytruncate: lines the follower had not read yet are read from the copy, before the truncated file', async () => {
    const file = join(freshDirectory(), 'kern.log');
    writeFileSync(file, '');
    const followed = await follow(file);
    try {
      const read = linesOf('read', 3);
      const unread = linesOf('unread', 3);
      const later = linesOf('later', 3);
      appendFileSync(file, text(read));
      await waitFor(() => followed.lines.length === 3, 'the first lines');
      const fd = openSync(file, 'a');
      writeSync(fd, text(unread)); // written, copied and truncated before the follower gets a chance to read
      copyFileSync(file, `${file}.1`);
      ftruncateSync(fd, 0);
      writeSync(fd, text(later));
      closeSync(fd);
      await waitFor(() => followed.lines.length === 9, 'all lines');
      assert.deepEqual(followed.lines, [...read, ...unread, ...later]);
      assert.ok(followed.warnings.some((message) => message.includes(`after the rest of its copy ${file}.1`)));
    } finally {
      await followed.follower.stop();
    }
  });

  test('after a rename, what the writer still appends to the old file comes before the new file', async () => {
    const file = join(freshDirectory(), 'kern.log');
    writeFileSync(file, '');
    const followed = await follow(file, { rotationGraceMs: 60_000 });
    try {
      const old = openSync(file, 'a');
      writeSync(old, 'old 1\n');
      await waitFor(() => followed.lines.length === 1, 'the first line');
      renameSync(file, `${file}.1`);
      writeSync(old, 'old 2\n'); // rsyslog before its HUP
      writeFileSync(file, 'new 1\n');
      writeSync(old, 'old 3\n'); // the snapshot of the new file's size keeps 'new 1' after all of this
      closeSync(old);
      appendFileSync(file, 'new 2\n');
      await waitFor(() => followed.lines.length === 5, 'all lines');
      assert.deepEqual(followed.lines, ['old 1', 'old 2', 'old 3', 'new 1', 'new 2']);
      const status = followed.follower.status();
      assert.equal(status.rotations, 1);
      assert.equal(status.oldFilesDraining, 1);
      assert.ok(followed.warnings.some((message) => message.includes('was rotated')));
    } finally {
      await followed.follower.stop();
    }
  });

  test('the writer appending to the old file, then switching, while the old file is being drained: the order holds', async () => {
    const file = join(freshDirectory(), 'kern.log');
    writeFileSync(file, '');
    const old = openSync(file, 'a');
    const lines: string[] = [];
    const follower = stopAfterTests(new LogFollower({
      path: file,
      maxLineLength: 65536,
      cursorFile: null,
      fromEnd: false,
      onWarning: () => {},
      lines: lineSink((line) => {
        lines.push(line);
        if (line !== 'old 2') return;
        // Exactly while the follower drains the old file: the writer's last old line, then its first new one.
        writeSync(old, 'old 3\n');
        appendFileSync(file, 'new 1\n');
      }),
    }));
    await follower.start();
    try {
      writeSync(old, 'old 1\n');
      await waitFor(() => lines.length === 1, 'the first line');
      renameSync(file, `${file}.1`);
      writeFileSync(file, ''); // logrotate's `create`; the writer has not reopened yet
      writeSync(old, 'old 2\n');
      await waitFor(() => lines.length === 4, 'all lines');
      assert.deepEqual(lines, ['old 1', 'old 2', 'old 3', 'new 1']);
    } finally {
      closeSync(old);
      await follower.stop();
    }
  });

  test('an old file is closed once it stayed quiet for the grace period; its unterminated last line is a line all the same (as replay reads it)', async () => {
    const file = join(freshDirectory(), 'kern.log');
    writeFileSync(file, 'one\ntwo without newline');
    const followed = await follow(file, { rotationGraceMs: 50, fromEnd: false });
    try {
      renameSync(file, `${file}.1`);
      writeFileSync(file, 'three\n');
      await waitFor(() => followed.follower.status().oldFilesDraining === 0 && followed.lines.length === 2, 'the old file to be closed');
      // No cursor: the existing file was joined at its end, after its last newline.
      assert.deepEqual(followed.lines.sort(), ['three', 'two without newline']);
      assert.equal(followed.follower.status().droppedLines, 0);
    } finally {
      await followed.follower.stop();
    }
  });

  test('a symlink re-pointed to a new target, then back: the first target continues where it was', async () => {
    const directory = freshDirectory();
    const link = join(directory, 'current.log');
    const [first, second] = [join(directory, 'a.log'), join(directory, 'b.log')];
    writeFileSync(first, '');
    writeFileSync(second, '');
    symlinkSync(first, link);
    const followed = await follow(link);
    try {
      appendFileSync(first, 'a1\n');
      await waitFor(() => followed.lines.length === 1, 'a1');
      symlinkSync(second, `${link}.new`);
      renameSync(`${link}.new`, link);
      appendFileSync(second, 'b1\n');
      await waitFor(() => followed.lines.length === 2, 'b1');
      symlinkSync(first, `${link}.new`);
      renameSync(`${link}.new`, link);
      appendFileSync(first, 'a2\n');
      await waitFor(() => followed.lines.length === 3, 'a2');
      assert.deepEqual(followed.lines, ['a1', 'b1', 'a2']);
    } finally {
      await followed.follower.stop();
    }
  });

  test('inotify wakes the follower: lines arrive with the poll effectively off', async () => {
    const file = join(freshDirectory(), 'kern.log');
    writeFileSync(file, '');
    const followed = await follow(file, { pollIntervalMs: 3_600_000 });
    try {
      for (let i = 0; i < 20; i++) {
        appendFileSync(file, `line ${i}\n`);
        await waitFor(() => followed.lines.length === i + 1, `line ${i}`);
      }
      renameSync(file, `${file}.1`);
      writeFileSync(file, 'after rotation\n');
      await waitFor(() => followed.lines.length === 21, 'the line after the rotation');
    } finally {
      await followed.follower.stop();
    }
  });

  test('without a cursor it starts at the end; a line being written at that moment arrives whole', async () => {
    const file = join(freshDirectory(), 'kern.log');
    writeFileSync(file, 'old 1\nold 2\nhalf of a li');
    const followed = await follow(file);
    try {
      appendFileSync(file, 'ne\nnew\n');
      await waitFor(() => followed.lines.length === 2, 'two lines');
      assert.deepEqual(followed.lines, ['half of a line', 'new']);
    } finally {
      await followed.follower.stop();
    }
  });

  test('a missing file is reported, then read from its start once it appears', async () => {
    const directory = freshDirectory();
    const file = join(directory, 'later.log');
    const followed = await follow(file);
    try {
      assert.equal(followed.follower.status().missing, true);
      assert.deepEqual(followed.warnings, [`${file} does not exist; waiting for it to appear`]);
      writeFileSync(file, 'first\nsecond\n');
      await waitFor(() => followed.lines.length === 2, 'the lines');
      assert.deepEqual(followed.lines, ['first', 'second']);
      assert.equal(followed.follower.status().missing, false);
    } finally {
      await followed.follower.stop();
    }
  });

  test('a read error is reported once and retried: the lines behind it arrive, once each', async (t) => {
    const directory = freshDirectory();
    const file = join(directory, 'kern.log');
    writeFileSync(file, '');
    const followed = await follow(file);
    appendFileSync(file, 'first\n');
    // Fault injection: the follower's own readSync (a live binding of node:fs) fails three times with EIO.
    let failures = 0;
    const realRead = fs.readSync;
    t.mock.method(fs, 'readSync', (...args: Parameters<typeof fs.readSync>) => {
      if (failures > 0) {
        failures--;
        throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', errno: -5, syscall: 'read' });
      }
      return (realRead as (...a: unknown[]) => number)(...args);
    });
    syncBuiltinESMExports();
    try {
      await waitFor(() => followed.lines.length === 1, 'the first line');
      failures = 3;
      appendFileSync(file, 'second\nthird\n');
      await waitFor(() => followed.lines.length === 3, 'the lines behind the errors');
      assert.equal(failures, 0, 'every injected error was hit');
      assert.deepEqual(followed.lines, ['first', 'second', 'third']);
      assert.deepEqual(followed.warnings, [`${file}: EIO: i/o error, read`], 'reported once, not per retry');
      appendFileSync(file, 'fourth\n');
      await waitFor(() => followed.lines.length === 4, 'a line after the recovery');
    } finally {
      t.mock.restoreAll();
      syncBuiltinESMExports();
      await followed.follower.stop();
    }
  });

  test('a path that turns into a directory: the old file is read to its end, then a regular file there is read from its start', async () => {
    const directory = freshDirectory();
    const file = join(directory, 'kern.log');
    writeFileSync(file, '');
    const followed = await follow(file, { rotationGraceMs: 60_000 });
    appendFileSync(file, 'one\n');
    try {
      await waitFor(() => followed.lines.length === 1, 'the first line');
      renameSync(file, `${file}.old`);
      mkdirSync(file);
      appendFileSync(`${file}.old`, 'two\n'); // the writer still had the old file open
      await waitFor(() => followed.warnings.includes(`${file} is not a regular file; waiting for a regular file there`), 'the warning');
      await waitFor(() => followed.lines.length === 2, 'the old file drained');
      assert.equal(followed.follower.status().missing, true);
      rmdirSync(file);
      writeFileSync(file, 'three\nfour\n');
      await waitFor(() => followed.lines.length === 4, 'the new file');
      assert.deepEqual(followed.lines, ['one', 'two', 'three', 'four']);
      assert.equal(followed.follower.status().missing, false);
    } finally {
      await followed.follower.stop();
    }
  });

  test('status reports the position, the lag and the counters', async () => {
    const file = join(freshDirectory(), 'kern.log');
    writeFileSync(file, '');
    const followed = await follow(file);
    try {
      await appendSeen(followed, file, 'one\ntwo\nthr');
      const status = followed.follower.status();
      assert.equal(status.path, file);
      assert.equal(status.offset, 8);
      assert.equal(status.lagBytes, 3);
      assert.match(status.ino ?? '', /^\d+$/);
      assert.deepEqual([status.rotations, status.truncations, status.droppedLines, status.missing], [0, 0, 0, false]);
    } finally {
      await followed.follower.stop();
    }
  });

  test('stop() reads no further, persists where it was, and releases everything: the process exits by itself', async () => {
    const directory = freshDirectory();
    const file = join(directory, 'kern.log');
    writeFileSync(file, '');
    const program = (write: boolean) => `
      import { appendFileSync } from 'node:fs';
      import { LogFollower } from ${JSON.stringify(pathToFileURL(join(repoRoot, 'dist', 'src', 'inputs', 'follower.js')).href)};
      const lines = [];
      const follower = new LogFollower({ path: ${JSON.stringify(file)}, maxLineLength: 100, cursorFile: ${JSON.stringify(join(directory, 'cursor'))},
        fromEnd: false, lines: { block: (text) => lines.push(...text.split('\\n')), line: (text) => lines.push(text), longLine: () => {} }, onWarning: () => {} });
      await follower.start();
      ${write ? `appendFileSync(${JSON.stringify(file)}, 'written just before stop\\n');` : 'await new Promise((r) => setTimeout(r, 300));'}
      await follower.stop();
      console.log(JSON.stringify(lines));`;
    const run = async (write: boolean): Promise<string[]> => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', program(write)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      const hangGuard = setTimeout(() => child.kill(), 20_000);
      const [code, signal] = await once(child, 'close');
      clearTimeout(hangGuard);
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, 'the process did not exit by itself after stop()');
      return JSON.parse(stdout) as string[];
    };
    // A line written just before stop() is not read then (a backlog must not delay the stop)…
    assert.deepEqual(await run(true), []);
    assert.equal(JSON.parse(readFileSync(join(directory, 'cursor'), 'utf8')).files[0].offset, 0);
    // …but the next start resumes at the saved position and reads it.
    assert.deepEqual(await run(false), ['written just before stop']);
    assert.equal(JSON.parse(readFileSync(join(directory, 'cursor'), 'utf8')).files[0].offset, statSync(file).size);
  });

  test('two followers in one process are independent', async () => {
    const directory = freshDirectory();
    const [first, second] = [join(directory, 'a.log'), join(directory, 'b.log')];
    writeFileSync(first, '');
    writeFileSync(second, '');
    const [a, b] = [await follow(first), await follow(second, { maxLineLength: 4 })];
    try {
      appendFileSync(first, 'a-one\n');
      appendFileSync(second, 'b-one\nb2\n');
      await waitFor(() => a.lines.length === 1, 'the first line of a');
      writeFileSync(first, 'a-two\n'); // a truncation of the first file only
      await waitFor(() => a.lines.length === 2 && b.lines.length === 1, 'both files');
      assert.deepEqual(a.lines, ['a-one', 'a-two']);
      assert.deepEqual(b.lines, ['b2']);
      assert.deepEqual([a.follower.status().truncations, b.follower.status().truncations], [1, 0]);
      assert.deepEqual([a.follower.status().droppedLines, b.follower.status().droppedLines], [0, 1]);
    } finally {
      await a.follower.stop();
      await b.follower.stop();
    }
  });
});
