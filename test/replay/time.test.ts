/**
 * Replay through the real CLI: the engine's time rules on archived logs (docs/design.md, "Time"), and one-time
 * sequences whose next line is used right after the first, from a log and from a capture.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { knockLine } from '../daemon/harness.js';
import { replayEvents, runCli, tempDir } from '../helpers.js';
import { buildPacket, writePcap } from '../packet/gen.js';

const T = Date.parse('2026-11-21T05:00:00Z');
const DAY = 86_400_000;
const env = { ...process.env, TZ: 'UTC' };

function scratch(doors: string): { dir: string; config: string } {
  const dir = tempDir('knocktail-replay-time-');
  const config = join(dir, 'knocktail.conf');
  writeFileSync(config, `[options]\n  LogFormat = iptables\n${doors.replaceAll('DIR', dir)}`);
  return { dir, config };
}

const DOOR = '[door]\n  sequence = 7000,8000,9000\n  seq_timeout = 5\n  start_command = open %IP%\n';

/** `event door ip` of the events of these kinds. */
function trace(events: Array<{ event: string; door?: string; ip?: string }>, ...kinds: string[]): string[] {
  return events.filter((e) => kinds.includes(e.event)).map((e) => [e.event, e.door, e.ip].filter((part) => part !== undefined).join(' '));
}

describe('replay: time', () => {
  it('05:00:00, a day earlier, 05:00:01: the old knock is ignored as the daemon would, nothing opens, events stay in order', async () => {
    const s = scratch(DOOR);
    const log = join(s.dir, 'kern.log');
    writeFileSync(log, [knockLine('192.0.2.7', 7000, { time: new Date(T) }), knockLine('192.0.2.7', 8000, { time: new Date(T - DAY) }), knockLine('192.0.2.7', 9000, { time: new Date(T + 1000) })].join(''));
    const events = await replayEvents(['-c', s.config, log]);
    assert.deepEqual(trace(events, 'open'), []);
    assert.equal(events.filter((e) => e.event === 'stale').length, 1);
    const times = events.map((e) => Date.parse(e.time));
    assert.deepEqual(times, [...times].sort((a, b) => a - b), 'events in time order');
    const table = await runCli(['replay', '-c', s.config, log], { env });
    assert.equal(table.code, 0);
    assert.match(table.stdout, /kern\.log: 1 knock stamped more than MaxKnockAge before the knocks read before it: ignored, as the daemon would/);
    assert.match(table.stdout, /no door opened/);
  });

  it('knocks a little out of order are counted at the later time and reported; gaps of days are reported', async () => {
    const s = scratch(DOOR);
    const log = join(s.dir, 'kern.log');
    const lines = [
      knockLine('192.0.2.7', 7000, { time: new Date(T + 2000) }),
      knockLine('192.0.2.7', 8000, { time: new Date(T + 1000) }),
      knockLine('192.0.2.7', 9000, { time: new Date(T + 3000) }),
      knockLine('192.0.2.9', 7000, { time: new Date(T + 3 * DAY) }),
    ];
    writeFileSync(log, lines.join(''));
    const events = await replayEvents(['-c', s.config, log]);
    assert.deepEqual(trace(events, 'open'), ['open door 192.0.2.7']);
    const stage2 = events.find((e) => e.event === 'stage' && e.stage === 2);
    assert.equal(stage2?.time, new Date(T + 2000).toISOString(), 'counted at the time of the knock read before it');
    const table = await runCli(['replay', '-c', s.config, log], { env });
    assert.match(table.stdout, /kern\.log: 1 knock stamped before the knock read before it \(up to 1 s back\): counted at that later time/);
    assert.match(table.stdout, /kern\.log: 1 gap of more than a day between knocks: 2026-11-21T05:00:03\.000Z → 2026-11-24T05:00:00\.000Z/);
  });
});

describe('replay: one-time sequences used back to back', () => {
  const ONE_TIME = '[ot]\n  one_time_sequences = DIR/ots.txt\n  seq_timeout = 5\n  start_command = open %IP%\n[other]\n  sequence = 8001\n  start_command = other %IP%\n';
  const SEQUENCES = '7000,7001\n8000,8001\n';

  it('from a log: the second line, knocked 0.5 s after the first in the same read, opens too; another door on its port does not; the file is not touched', async () => {
    const s = scratch(ONE_TIME);
    writeFileSync(join(s.dir, 'ots.txt'), SEQUENCES);
    const log = join(s.dir, 'kern.log');
    const ports = [7000, 7001, 8000, 8001];
    writeFileSync(log, ports.map((port, i) => knockLine('192.0.2.7', port, { time: new Date(T + i * 250) })).join(''));
    const events = await replayEvents(['-c', s.config, log]);
    assert.deepEqual(trace(events, 'open'), ['open ot 192.0.2.7', 'open ot 192.0.2.7']);
    assert.equal(readFileSync(join(s.dir, 'ots.txt'), 'utf8'), SEQUENCES, 'replay marks one-time sequences in memory only');
  });

  it('from a capture: the same', async () => {
    const s = scratch(ONE_TIME);
    writeFileSync(join(s.dir, 'ots.txt'), SEQUENCES);
    const capture = join(s.dir, 'knocks.pcap');
    const packets = [7000, 7001, 8000, 8001].map((dport, i) => ({
      time: T + i * 250,
      data: buildPacket({ link: 'ethernet', src: '192.0.2.7', dst: '192.0.2.1', proto: 'tcp', dport, flags: 0x02 }).bytes,
    }));
    writeFileSync(capture, writePcap({ linkType: 1, packets }));
    const events = await replayEvents(['-c', s.config, capture]);
    assert.deepEqual(trace(events, 'open'), ['open ot 192.0.2.7', 'open ot 192.0.2.7']);
    assert.equal(readFileSync(join(s.dir, 'ots.txt'), 'utf8'), SEQUENCES);
  });
});
