/**
 * Replay of a collector's archived per-firewall logs: the firewall of each file comes from --firewall-from or from
 * the config's FirewallLog pattern (a rotated file counts under its live name), and Knock_Scope and %FIREWALL% then
 * work as in the daemon. Without a firewall, the files are read as logs that name none.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { knockLine } from '../daemon/harness.js';
import { replayEvents, runCli, tempDir, type ReplayEvent } from '../helpers.js';

const T0 = Date.parse('2026-11-21T04:00:00Z');
const KNOCKER = '10.9.0.1';

/** Lines of knocks: [seconds after T0, port]. */
function knocks(...steps: Array<[number, number]>): string {
  return steps.map(([seconds, port]) => knockLine(KNOCKER, port, { time: new Date(T0 + seconds * 1000) })).join('');
}

/** Two firewalls' archives (192.0.2.1's first knocks in a rotated, compressed file) and a config naming `firewallLog`. */
function archive(firewallLog: (dir: string) => string) {
  const dir = tempDir();
  const fw1 = join(dir, 'archive', '192.0.2.1');
  const fw2 = join(dir, 'archive', '192.0.2.2');
  mkdirSync(fw1, { recursive: true });
  mkdirSync(fw2, { recursive: true });
  // [fw] knocked on 192.0.2.1 alone (opens there), then split over both (opens nothing);
  // [any] split over both, the last knock on 192.0.2.1 (opens there).
  writeFileSync(join(fw1, 'kern.log.1.gz'), gzipSync(knocks([0, 7001], [1, 7002], [2, 7003])));
  writeFileSync(join(fw1, 'kern.log'), knocks([10, 7001], [20, 8001], [22, 8003]));
  writeFileSync(join(fw2, 'kern.log'), knocks([11, 7002], [12, 7003], [21, 8002]));
  const conf = join(dir, 'knocktail.conf');
  writeFileSync(conf, [
    '[options]',
    `  FirewallLog = ${firewallLog(dir)}`,
    '[fw]',
    '  sequence = 7001,7002,7003',
    '  start_command = echo fw %IP% %FIREWALL%',
    '[any]',
    '  sequence = 8001,8002,8003',
    '  knock_scope = any',
    '  start_command = echo any %IP% %FIREWALL%',
    '',
  ].join('\n'));
  const files = [join(fw1, 'kern.log.1.gz'), join(fw1, 'kern.log'), join(fw2, 'kern.log')];
  return { dir, conf, files };
}

const seconds = (event: ReplayEvent) => (Date.parse(event.time) - T0) / 1000;
const opens = (events: ReplayEvent[]) => events.filter((e) => e.event === 'open').map((e) => `${e.door} ${e.ip} ${e.firewall ?? '-'} @${seconds(e)}`);
const starts = (events: ReplayEvent[]) => events.filter((e) => e.event === 'start').map((e) => e.command);

describe('replay: which firewall saw each knock', () => {
  const expectedOpens = [`fw ${KNOCKER} 192.0.2.1 @2`, `any ${KNOCKER} 192.0.2.1 @22`];
  const expectedStarts = [`echo fw ${KNOCKER} 192.0.2.1`, `echo any ${KNOCKER} 192.0.2.1`];

  it("from the config's FirewallLog pattern: Knock_Scope and %FIREWALL% as in the daemon", async () => {
    const { conf, files } = archive((dir) => join(dir, 'archive', '{firewall}', 'kern.log'));
    const events = await replayEvents(['-c', conf, ...files]);
    assert.deepEqual(opens(events), expectedOpens);
    assert.deepEqual(starts(events), expectedStarts);
  });

  it('from --firewall-from, when the archive lies elsewhere than the live files (relative to the working directory)', async () => {
    const { dir, conf, files } = archive(() => '/var/log/remote/{firewall}/kern.log');
    const result = await runCli(['replay', '-c', conf, '--firewall-from', 'archive/{firewall}/kern.log', ...files], { cwd: dir, env: { ...process.env, TZ: 'UTC' } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /open +fw +10\.9\.0\.1 on firewall 192\.0\.2\.1/);
    assert.match(result.stdout, /archive\/192\.0\.2\.1\/kern\.log\.1\.gz \(firewall 192\.0\.2\.1\): lines: read 3,/);
    assert.match(result.stdout, /door fw opened 1 time for 10\.9\.0\.1 on firewall 192\.0\.2\.1/);
    assert.match(result.stdout, /door any opened 1 time for 10\.9\.0\.1 on firewall 192\.0\.2\.1/);
  });

  it('without a firewall, the files are one log: the split knocks open too, and %FIREWALL% commands are refused', async () => {
    const { conf, files } = archive(() => '/var/log/remote/{firewall}/kern.log');
    const events = await replayEvents(['-c', conf, ...files]);
    assert.deepEqual(opens(events), [`fw ${KNOCKER} - @2`, `fw ${KNOCKER} - @12`, `any ${KNOCKER} - @22`]);
    assert.deepEqual(starts(events), []);
    assert.equal(events.filter((e) => e.event === 'error' && /names no firewall/.test(e.message ?? '')).length, 3);
  });

  it('--firewall-from must name the firewall, and be a pattern knocktail reads', async () => {
    const { conf, files } = archive(() => '/var/log/remote/{firewall}/kern.log');
    for (const [pattern, message] of [['archive/*/kern.log', /has no \{firewall\}/], ['archive/{host}/kern.log', /the only placeholder is \{firewall\}/]] as const) {
      const result = await runCli(['replay', '-c', conf, '--firewall-from', pattern, ...files]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, message);
    }
  });
});
