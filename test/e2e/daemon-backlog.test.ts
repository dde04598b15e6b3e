/**
 * A backlog read after a restart is judged by the times written in it: the clock must not time out a
 * knock whose next step is still further down the unread log (the knocks were seconds apart, an hour ago).
 */
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { knockLine, linesOf, recordingDoor, scratch, startDaemon, waitFor } from '../daemon/harness.js';

describe('daemon: a backlog after a restart', () => {
  it('opens a door for a knock whose steps lie megabytes apart in the backlog, logged an hour ago', { timeout: 120_000 }, async () => {
    const s = scratch(recordingDoor('door', '7000,8000'));
    // A first run makes the cursor; the knocks then arrive while the daemon is stopped.
    const first = await startDaemon(s);
    await first.stop();
    const hourAgo = Date.now() - 3_600_000;
    const filler = knockLine('198.51.100.1', 22, { time: new Date(hourAgo) }).repeat(60_000); // ~14 MB: several reads
    appendFileSync(s.fwLog, knockLine('192.0.2.7', 7000, { time: new Date(hourAgo) }));
    appendFileSync(s.fwLog, filler);
    appendFileSync(s.fwLog, knockLine('192.0.2.7', 8000, { time: new Date(hourAgo + 300) }));
    const second = await startDaemon(s);
    await waitFor('the backlog to be read and the door to open', () => linesOf(s.commands).includes('start door 192.0.2.7'), () => second.output + linesOf(s.logFile).join('\n'));
    assert.ok(!linesOf(s.logFile).some((line) => line.includes('192.0.2.7: door: sequence timeout')), 'no timeout for the knock');
    await second.stop();
  });
});
