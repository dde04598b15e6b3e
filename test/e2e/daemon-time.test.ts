/**
 * The daemon's time rules end to end (docs/design.md, "Time"): the real daemon following a log into which the
 * test writes lines stamped as a clock gone wrong, a rewritten log, or a forger would stamp them.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { knock, knockLine, linesOf, recordingDoor, scratch, startDaemon, statusOf, waitFor } from '../daemon/harness.js';

const DAY = 86_400_000;
const DOOR = recordingDoor('door', '7000,8000,9000', '  seq_timeout = 5\n');

describe('daemon: knocks out of time', { timeout: 120_000 }, () => {
  it('now, a day earlier, now + 1 s: the old knock is refused and the door stays closed', async () => {
    const s = scratch(DOOR);
    const daemon = await startDaemon(s);
    try {
      const now = Date.now();
      appendFileSync(s.fwLog, knockLine('192.0.2.7', 7000, { time: new Date(now) }) + knockLine('192.0.2.7', 8000, { time: new Date(now - DAY) }) + knockLine('192.0.2.7', 9000, { time: new Date(now + 1000) }));
      // A sequence knocked after them shows that they were all handled.
      knock(s, '192.0.2.8', 7000, 8000, 9000);
      await waitFor('the later sequence to open', () => linesOf(s.commands).includes('start door 192.0.2.8'), () => daemon.output);
      assert.deepEqual(linesOf(s.commands), ['start door 192.0.2.8']);
      assert.equal((await statusOf(s)).counters.knocksStale, 1);
    } finally {
      await daemon.stop();
    }
  });

  it('a first knock stamped a day ahead is refused: knocks stamped now cannot complete it', async () => {
    const s = scratch(DOOR);
    const daemon = await startDaemon(s);
    try {
      appendFileSync(s.fwLog, knockLine('192.0.2.7', 7000, { time: new Date(Date.now() + DAY) }));
      knock(s, '192.0.2.7', 8000, 9000);
      knock(s, '192.0.2.8', 7000, 8000, 9000);
      await waitFor('the later sequence to open', () => linesOf(s.commands).includes('start door 192.0.2.8'), () => daemon.output);
      assert.deepEqual(linesOf(s.commands), ['start door 192.0.2.8']);
      const status = await statusOf(s);
      assert.equal(status.counters.knocksFuture, 1);
      assert.match(readFileSync(s.logFile, 'utf8'), /ahead of this host's clock: check the clocks/);
    } finally {
      await daemon.stop();
    }
  });

  it('a log rewritten by rename (sed -i) is read again from its start, but its old sequences open nothing', async () => {
    const s = scratch(DOOR);
    const daemon = await startDaemon(s);
    try {
      const old = Date.now() - 10 * 60_000;
      const history = ['192.0.2.7', '192.0.2.9'].map((ip) => [7000, 8000, 9000].map((port) => knockLine(ip, port, { time: new Date(old) })).join('')).join('');
      appendFileSync(s.fwLog, history);
      await waitFor('the old lines to be read', async () => (await statusOf(s)).counters.knocksStale === 6, () => daemon.output);
      // sed -i: a new file with the same lines replaces the log.
      writeFileSync(`${s.fwLog}.tmp`, readFileSync(s.fwLog));
      renameSync(`${s.fwLog}.tmp`, s.fwLog);
      await waitFor('the rewritten log to be read again', async () => (await statusOf(s)).counters.knocksStale === 12, () => daemon.output);
      knock(s, '192.0.2.8', 7000, 8000, 9000);
      await waitFor('a fresh sequence to open', () => linesOf(s.commands).includes('start door 192.0.2.8'), () => daemon.output);
      assert.deepEqual(linesOf(s.commands), ['start door 192.0.2.8']);
    } finally {
      await daemon.stop();
    }
  });
});

describe('daemon: one-time sequences used back to back', { timeout: 120_000 }, () => {
  it('the next line, knocked 0.5 s after the first line in one write, opens too', async () => {
    const s = scratch('[ot]\n  one_time_sequences = OTS\n  seq_timeout = 5\n  start_command = echo "start ot %IP%" >> CMDS\n'.replace('OTS', 'SEQUENCES'));
    const sequences = `${s.dir}/ots.txt`;
    writeFileSync(sequences, '7000,7001\n8000,8001\n9000\n');
    writeFileSync(s.config, readFileSync(s.config, 'utf8').replace('SEQUENCES', sequences));
    const daemon = await startDaemon(s);
    try {
      const now = Date.now();
      appendFileSync(s.fwLog, [7000, 7001, 8000, 8001].map((port, i) => knockLine('192.0.2.7', port, { time: new Date(now + i * 250) })).join(''));
      await waitFor('both opens', () => linesOf(s.commands).length === 2, () => daemon.output);
      assert.deepEqual(linesOf(s.commands), ['start ot 192.0.2.7', 'start ot 192.0.2.7']);
      assert.equal(readFileSync(sequences, 'utf8'), '#7000,7001\n#8000,8001\n9000\n');
    } finally {
      await daemon.stop();
    }
  });
});
