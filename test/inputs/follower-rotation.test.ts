/**
 * The follower against a separate writer process appending 10,000 numbered lines/s while the file is rotated
 * in every way logrotate and rsyslog do it: every number must arrive exactly once, in order.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { followWhileWriting, freshDirectory, Received, runWriter, waitFor } from './follower-harness.js';
import { repoRoot } from '../helpers.js';
import { defaultPlan } from './numbered-writer.js';


describe('LogFollower under a 10k lines/s writer', () => {
  test('rename rotation, the writer reopening at once', async () => {
    const file = join(freshDirectory(), 'kern.log');
    const run = await followWhileWriting({ file, rotation: 'rename' });
    run.received.assertExactlyOnceInOrder(0, defaultPlan.total);
    assert.ok(run.summary.rotations >= 4, `only ${run.summary.rotations} rotations happened`);
    assert.equal(run.status.rotations, run.summary.rotations);
  });

  test('rename rotation, the writer reopening 100 ms later (rsyslog before its HUP)', async () => {
    const file = join(freshDirectory(), 'kern.log');
    const run = await followWhileWriting({ file, rotation: 'rename', reopenDelayMs: 100 });
    run.received.assertExactlyOnceInOrder(0, defaultPlan.total);
    assert.ok(run.summary.rotations >= 4);
    assert.equal(run.status.rotations, run.summary.rotations);
  });

  test('delete and recreate', async () => {
    const file = join(freshDirectory(), 'kern.log');
    const run = await followWhileWriting({ file, rotation: 'delete' });
    run.received.assertExactlyOnceInOrder(0, defaultPlan.total);
    assert.ok(run.summary.rotations >= 4);
  });

  test('delete, the writer writing 100 ms more to the deleted file (only the poll sees those writes)', async () => {
    const file = join(freshDirectory(), 'kern.log');
    const run = await followWhileWriting({ file, rotation: 'delete', reopenDelayMs: 100 });
    run.received.assertExactlyOnceInOrder(0, defaultPlan.total);
  });

  test('copytruncate (copy and truncate between two writes, O_APPEND writer)', async (t) => {
    const file = join(freshDirectory(), 'kern.log');
    const run = await followWhileWriting({ file, rotation: 'copytruncate' });
    run.received.assertExactlyOnceInOrder(0, defaultPlan.total);
    assert.ok(run.summary.rotations >= 4);
    assert.equal(run.status.truncations, run.summary.rotations);
    const fromCopies = run.received.warnings.filter((message) => message.includes('after the rest of its copy')).length;
    t.diagnostic(`${fromCopies} of ${run.summary.rotations} truncations left unread lines that were read from logrotate's copy`);
  });

  test('copytruncate with a writer that keeps its offset (a hole of NUL bytes before the next line)', async () => {
    const file = join(freshDirectory(), 'kern.log');
    const run = await followWhileWriting({ file, rotation: 'copytruncate-hole' });
    run.received.assertExactlyOnceInOrder(0, defaultPlan.total);
    // Once the file starts with a hole its head no longer changes: a later truncation is only seen when the
    // follower looks while the file is short, else reading on through the NULs gives the same lines anyway.
    assert.ok(run.status.truncations >= 1 && run.status.truncations <= run.summary.rotations);
  });

  test('inode reuse: path.1 deleted, path renamed to path.1, a new path gets the freed inode', async (t) => {
    const file = join(freshDirectory(), 'kern.log');
    // A short grace lets the follower release the old inode, so the filesystem can hand it out again.
    const run = await followWhileWriting({ file, rotation: 'recycle', rotateEveryMs: 250 }, { rotationGraceMs: 30 });
    run.received.assertExactlyOnceInOrder(0, defaultPlan.total);
    const reused = run.summary.inodes.some((inode, i) => run.summary.inodes.indexOf(inode) < i);
    if (!reused) t.skip(`no inode came back (generations ${run.summary.inodes.join(' ')}): this filesystem does not recycle inodes, so reuse was not exercised`);
  });

  test('the file missing at start and appearing later', async () => {
    const file = join(freshDirectory(), 'kern.log');
    const run = await followWhileWriting({ file, createAfterMs: 300, total: 5000 });
    run.received.assertExactlyOnceInOrder(0, 5000);
    assert.ok(run.received.warnings.some((message) => message.includes('does not exist')));
  });

  test('the path is a symlink re-pointed to a new target in another directory', async () => {
    const directory = freshDirectory();
    const file = join(directory, 'kern.log');
    const run = await followWhileWriting({ file, rotation: 'symlink', targetDirectory: join(directory, 'targets') });
    run.received.assertExactlyOnceInOrder(0, defaultPlan.total);
    assert.ok(run.summary.rotations >= 4);
    assert.equal(run.status.rotations, run.summary.rotations);
  });

  test('a relative path (resolved once, at construction) through rename rotations', async () => {
    const directory = freshDirectory();
    const file = join(directory, 'kern.log');
    const elsewhere = freshDirectory();
    const received = new Received();
    // The follower runs in a process of its own, which changes its working directory after making it.
    const driver = spawn(process.execPath, [join(repoRoot, 'dist', 'test', 'inputs', 'follower-cwd-driver.js'), '--driver', relative(repoRoot, file), elsewhere], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(driver, 'exit');
    let started = false;
    createInterface({ input: driver.stdout! }).on('line', (line) => {
      if (line === 'started') started = true;
      else if (line.startsWith('line ')) received.onLine(line.slice(5));
      else if (line.startsWith('warning ')) received.onWarning(line.slice(8));
    });
    try {
      await waitFor(() => started, 'the follower to start');
      const summary = await runWriter({ ...defaultPlan, file, rotation: 'rename' });
      await waitFor(() => received.last === defaultPlan.total - 1, 'the last line');
      assert.ok(summary.rotations >= 4);
    } finally {
      driver.kill('SIGTERM');
      await exited;
    }
    received.assertExactlyOnceInOrder(0, defaultPlan.total);
  });

  test('lines written in several pieces, UTF-8 characters split across writes, through rename rotations', async () => {
    const file = join(freshDirectory(), 'kern.log');
    const text = 'user=é€😀 ';
    const run = await followWhileWriting({ file, rotation: 'rename', piecesPerBatch: 4, text, total: 10_000, linesPerMs: 5 });
    run.received.assertExactlyOnceInOrder(0, 10_000);
  });

  test('a 1 MiB line over the limit is dropped with a warning, memory stays bounded, later lines arrive', async () => {
    const file = join(freshDirectory(), 'kern.log');
    const received = new Received();
    let peakGrowth = 0;
    const baseline = process.memoryUsage().arrayBuffers;
    const options = {
      maxLineLength: 16 * 1024,
      onWarning: (message: string) => {
        // Sampled when the drop is noticed: a follower that buffered the line would hold it now.
        peakGrowth = Math.max(peakGrowth, process.memoryUsage().arrayBuffers - baseline);
        received.onWarning(message);
      },
    };
    const run = await followWhileWriting({ file, longLineAt: 10_000, longLineBytes: 1024 * 1024 }, options, received);
    run.received.assertExactlyOnceInOrder(0, defaultPlan.total);
    assert.equal(run.status.droppedLines, 1);
    assert.equal(run.received.warnings.filter((message) => message.includes('longer than 16384 bytes')).length, 1);
    assert.ok(peakGrowth < 512 * 1024, `buffer memory grew by ${peakGrowth} bytes while the long line was read`);
  });

  test('several followers at once, each on its own rotating file', async () => {
    const directory = freshDirectory();
    mkdirSync(join(directory, 'b'));
    const [first, second] = await Promise.all([
      followWhileWriting({ file: join(directory, 'kern.log'), rotation: 'rename', text: 'first ' }),
      followWhileWriting({ file: join(directory, 'b', 'kern.log'), rotation: 'copytruncate', text: 'second ' }),
    ]);
    first.received.assertExactlyOnceInOrder(0, defaultPlan.total);
    second.received.assertExactlyOnceInOrder(0, defaultPlan.total);
  });
});
