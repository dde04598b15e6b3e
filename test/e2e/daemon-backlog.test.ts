/**
 * A backlog read after a restart is judged by the times written in it: the clock must not time out a
 * knock whose next step is still further down the unread log (the knocks were seconds apart, an hour ago).
 */
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { knock, knockLine, linesOf, recordingDoor, scratch, startDaemon, statusOf, waitFor } from '../daemon/harness.js';

describe('daemon: a backlog after a restart', () => {
  it('opens a door for a knock whose steps lie megabytes apart in a backlog younger than MaxKnockAge', { timeout: 120_000 }, async () => {
    const s = scratch(recordingDoor('door', '7000,8000'));
    // A first run makes the cursor; the knocks then arrive while the daemon is stopped.
    const first = await startDaemon(s);
    await first.stop();
    const recently = Date.now() - 20_000;
    const filler = knockLine('198.51.100.1', 22, { time: new Date(recently) }).repeat(60_000); // ~14 MB: several reads
    appendFileSync(s.fwLog, knockLine('192.0.2.7', 7000, { time: new Date(recently) }));
    appendFileSync(s.fwLog, filler);
    appendFileSync(s.fwLog, knockLine('192.0.2.7', 8000, { time: new Date(recently + 300) }));
    const second = await startDaemon(s);
    await waitFor('the backlog to be read and the door to open', () => linesOf(s.commands).includes('start door 192.0.2.7'), () => second.output + linesOf(s.logFile).join('\n'));
    assert.ok(!linesOf(s.logFile).some((line) => line.includes('192.0.2.7: door: sequence timeout')), 'no timeout for the knock');
    await second.stop();
  });

  it('opens nothing for knocks older than MaxKnockAge in the backlog, counts and reports them, and still opens for a fresh knock after them', { timeout: 120_000 }, async () => {
    const s = scratch(recordingDoor('door', '7000,8000'), '  MaxKnockAge = 30\n');
    const first = await startDaemon(s);
    await first.stop();
    const hourAgo = Date.now() - 3_600_000;
    appendFileSync(s.fwLog, knockLine('192.0.2.7', 7000, { time: new Date(hourAgo) }) + knockLine('192.0.2.7', 8000, { time: new Date(hourAgo + 300) }));
    const stale = Date.now() - 31_000;
    appendFileSync(s.fwLog, knockLine('192.0.2.8', 7000, { time: new Date(stale) }) + knockLine('192.0.2.8', 8000, { time: new Date(stale + 300) }));
    const second = await startDaemon(s);
    try {
      await waitFor('the backlog to be read', async () => (await statusOf(s)).counters.knocksStale === 4, () => second.output);
      knock(s, '192.0.2.9', 7000);
      knock(s, '192.0.2.9', 8000);
      // The fresh knock, read after the stale ones, is what shows that the stale ones were handled (and refused).
      await waitFor('the fresh knock to open', () => linesOf(s.commands).includes('start door 192.0.2.9'), () => second.output);
      assert.deepEqual(linesOf(s.commands), ['start door 192.0.2.9']);
      const log = linesOf(s.logFile).join('\n');
      assert.match(log, /warning: .*fw\.log: ignored a knock from 192\.0\.2\.7 stamped .*, more than MaxKnockAge \(\d+ s\) ago/);
    } finally {
      await second.stop();
    }
  });
});
