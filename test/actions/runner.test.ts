import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ShellRunner } from '../../src/actions/runner.js';
import { isAlive, tempDir } from '../helpers.js';

const runner = new ShellRunner();


describe('ShellRunner', () => {
  it('runs through /bin/sh -c with pipelines and the given environment', async () => {
    const result = await runner.run('echo "$KNOCK_IP" | tr . -; echo err >&2', { KNOCK_IP: '10.66.0.2' }, 0);
    assert.equal(result.status, 0);
    assert.equal(result.signal, null);
    assert.equal(result.output, '10-66-0-2\nerr\n');
    assert.equal(result.timedOut, false);
  });

  it("reports the shell's exit status as knockd does (exit 300 → 44)", async () => {
    assert.equal((await runner.run('exit 3', {}, 0)).status, 3);
    assert.equal((await runner.run('exit 300', {}, 0)).status, 44);
  });

  it('reports a command killed by a signal (knockd reports 0)', async () => {
    const result = await runner.run('kill -TERM $$', {}, 0);
    assert.equal(result.status, null);
    assert.equal(result.signal, 'SIGTERM');
  });

  it('kills a hanging command and its children at the limit', async () => {
    const dir = tempDir();
    const pidFile = join(dir, 'child.pid');
    const result = await runner.run(`sleep 60 & echo $! > ${pidFile}; wait`, {}, 300);
    assert.equal(result.timedOut, true);
    assert.equal(result.signal, 'SIGTERM');
    const childPid = Number(readFileSync(pidFile, 'utf8'));
    // The whole process group got the signal: the background sleep goes too (it would live for a minute otherwise;
    // the test's timeout, well below that, bounds the wait).
    while (isAlive(childPid)) await sleep(20);
  });

  it('uses SIGKILL when SIGTERM is ignored', async () => {
    const result = await runner.run("trap '' TERM; sleep 30", {}, 200);
    assert.equal(result.timedOut, true);
    assert.equal(result.signal, 'SIGKILL');
  });

  it('returns when the shell exits even if a background job keeps the output pipe open', async () => {
    const dir = tempDir();
    const go = join(dir, 'go');
    const marker = join(dir, 'done');
    // The job holds the output pipe until this test lets it go (or a minute passes, so that a failed run leaves
    // nothing behind): a runner that waited for the pipe would not return before the test's timeout.
    const result = await runner.run(`(i=0; while [ ! -e ${go} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; touch ${marker}) & echo started`, {}, 0);
    assert.equal(result.status, 0);
    assert.equal(result.output, 'started\n');
    assert.equal(existsSync(marker), false, 'returned while the background job still waits');
    // The job was not killed: let go, it finishes on its own.
    writeFileSync(go, '');
    while (!existsSync(marker)) await sleep(20);
  });

  it('keeps only the end of very long output', async () => {
    const result = await runner.run('yes line | head -c 200000', {}, 0);
    assert.ok(result.output.length <= 16 * 1024);
    assert.ok(result.output.endsWith('line\n'));
  });
});
