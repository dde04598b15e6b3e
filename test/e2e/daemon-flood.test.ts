/**
 * Bounded resources under attack: the real daemon follows a firewall log into which 1,000,000 distinct
 * spoofed sources each knock once on a door's first port, with two legitimate knocks interleaved.
 * MaxSources stays at its default (100,000). The daemon's peak RSS stays under FLOOD_RSS_CAP_MB, it
 * answers `status` while the flood is being read, and both legitimate knocks open the door.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { knockLine, linesOf, scratch, startDaemon, statusOf, waitFor } from '../daemon/harness.js';

/** The documented cap (README: "Resources under attack"): peak RSS of the daemon during this flood. */
const FLOOD_RSS_CAP_MB = 200;
const SPOOFED = 1_000_000;
const CHUNK = 50_000;

/** Where the legitimate knocks go, by spoofed-line index: one spread across the flood, one in a burst. */
const LEGITIMATE = new Map<number, Array<[string, number]>>([
  [300_000, [['198.51.100.7', 7000]]],
  [350_000, [['198.51.100.7', 8000]]],
  [900_000, [['198.51.100.7', 9000]]],
  [600_000, [['203.0.113.9', 7000], ['203.0.113.9', 8000], ['203.0.113.9', 9000]]],
]);

function rssOf(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : 0;
}

describe('daemon: a flood of spoofed sources', () => {
  it(`stays under ${FLOOD_RSS_CAP_MB} MB, answers status, and loses no legitimate knock`, { timeout: 180_000 }, async (t) => {
    const s = scratch(
      '[door]\n  sequence = 7000,8000,9000\n  seq_timeout = 120\n  start_command = echo "start door %IP%" >> CMDS\n',
    );
    const daemon = await startDaemon(s);
    try {
      const idleMb = rssOf(daemon.pid, 'VmRSS');
      let lines = 0;
      /** Status answers taken right after a chunk was appended, with the number of lines written at that moment. */
      const duringFlood: Array<{ written: number; read: number; state: string }> = [];
      for (let first = 0; first < SPOOFED; first += CHUNK) {
        const prefix = `${new Date().toISOString()} vm kernel: [  446.351538] KNOCK IN=eth0 OUT= SRC=`;
        const suffix = ' DST=10.66.0.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=40000 DPT=7000 WINDOW=64240 RES=0x00 SYN URGP=0 \n';
        let text = '';
        for (let i = first; i < first + CHUNK; i++) {
          for (const [src, port] of LEGITIMATE.get(i) ?? []) {
            text += knockLine(src, port);
            lines++;
          }
          text += `${prefix}10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}${suffix}`;
          lines++;
        }
        appendFileSync(s.fwLog, text);
        const answer = await statusOf(s);
        duringFlood.push({ written: lines, read: answer.counters.linesRead, state: answer.state });
        // Let the writer run only a little ahead of the daemon: the log must be followed, not replayed.
        while ((await statusOf(s)).counters.linesRead < lines - 4 * CHUNK) await sleep(100);
      }
      assert.ok(duringFlood.every((answer) => answer.state === 'running'), 'status answered during the flood');
      // A daemon that read a whole backlog before answering would show every line written so far, each time.
      const midRead = duringFlood.filter((answer) => answer.read < answer.written);
      assert.ok(midRead.length > 0, `no status answer came while written lines were still unread: ${JSON.stringify(duringFlood)}`);

      await waitFor('every line read', async () => (await statusOf(s)).counters.linesRead === lines, () => daemon.output);
      await waitFor('both legitimate opens', () => linesOf(s.commands).length === 2, () => daemon.output);
      const status = await statusOf(s);
      const peakMb = rssOf(daemon.pid, 'VmHWM');
      assert.deepEqual(linesOf(s.commands).sort(), ['start door 198.51.100.7', 'start door 203.0.113.9']);
      assert.equal(status.counters.opens, 2);
      assert.ok(status.attempts.sources <= 100_000, `${status.attempts.sources} sources kept (MaxSources 100000)`);
      assert.ok(status.counters.evicted >= SPOOFED - 100_000, `${status.counters.evicted} evicted`);
      assert.ok(peakMb < FLOOD_RSS_CAP_MB, `peak RSS ${peakMb.toFixed(0)} MB (idle ${idleMb.toFixed(0)} MB), cap ${FLOOD_RSS_CAP_MB} MB`);
      const evictionReports = readFileSync(s.logFile, 'utf8').split('\n').filter((line) => line.includes('too many sources knocking at once'));
      assert.ok(evictionReports.length >= 1 && evictionReports.length <= 20, `${evictionReports.length} eviction lines in the log`);
      t.diagnostic(`${lines} lines, peak RSS ${peakMb.toFixed(0)} MB (idle ${idleMb.toFixed(0)} MB), ${status.counters.evicted} sources evicted`);
    } finally {
      await daemon.stop();
    }
  });
});
