/**
 * The daemon on a collector's files (FirewallLog = …/remote/{firewall}/kern.log), through the real CLI: a door
 * opens on the firewall that saw its knocks (%FIREWALL%, KNOCK_FIREWALL), knocks split over two firewalls open
 * nothing under Knock_Scope = firewall, status lists every file with its firewall and lag, a kill -9 after an
 * open never opens it again, and a reload keeps following the files while MaxFollowedFiles takes effect.
 * (test/e2e/collector.test.ts runs the same through real routers and rsyslog.)
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { knockLine, linesOf, scratch, startDaemon, statusOf, waitFor, writeConfig, type Scratch } from '../daemon/harness.js';
import { runCli } from '../helpers.js';

const KNOCKER = '10.9.0.1';

const DOOR = `[fw]
  sequence = 7001,7002
  seq_timeout = 30
  start_command = echo "start fw %IP% %FIREWALL% $KNOCK_FIREWALL" >> CMDS
  stop_command = :
  cmd_timeout = 3600
`;

/** A scratch daemon whose FirewallLog is the pattern of a collector's directory. */
function collectorScratch(options = ''): Scratch & { remote: string; knock: (firewall: string, ...ports: number[]) => void } {
  const s = scratch(DOOR);
  const remote = join(s.dir, 'remote');
  mkdirSync(remote);
  s.fwLog = join(remote, '{firewall}', 'kern.log');
  writeConfig(s, DOOR, options);
  const knock = (firewall: string, ...ports: number[]): void => {
    mkdirSync(join(remote, firewall), { recursive: true });
    appendFileSync(join(remote, firewall, 'kern.log'), ports.map((port) => knockLine(KNOCKER, port)).join(''));
  };
  return Object.assign(s, { remote, knock });
}

/** Waits until the daemon has handled `packets` TCP/UDP packets in all. */
async function handled(s: Scratch, packets: number, output: () => string): Promise<void> {
  await waitFor(`${packets} packets handled`, async () => (await statusOf(s)).counters.hits >= packets, output);
}

describe('daemon: a collector', () => {
  it('opens on the firewall that saw the knocks; split knocks open nothing; status lists each file with its firewall and lag', async () => {
    const s = collectorScratch();
    s.knock('192.0.2.1');
    const daemon = await startDaemon(s);
    s.knock('192.0.2.1', 7001, 7002);
    await waitFor('the open on 192.0.2.1', () => linesOf(s.commands).length === 1, () => daemon.output);
    assert.deepEqual(linesOf(s.commands), [`start fw ${KNOCKER} 192.0.2.1 192.0.2.1`]);

    s.knock('192.0.2.1', 7001);
    s.knock('edge-2.example.net', 7002);
    await handled(s, 4, () => daemon.output);
    assert.deepEqual(linesOf(s.commands), [`start fw ${KNOCKER} 192.0.2.1 192.0.2.1`], 'split knocks open nothing');
    s.knock('edge-2.example.net', 7001, 7002);
    await waitFor('the open on edge-2', () => linesOf(s.commands).length === 2, () => daemon.output);
    assert.equal(linesOf(s.commands)[1], `start fw ${KNOCKER} edge-2.example.net edge-2.example.net`);

    const json = JSON.parse((await runCli(['status', '--json', '--state-dir', s.stateDir])).stdout);
    const files = json.inputs[0].files;
    assert.equal(json.inputs[0].kind, 'files');
    assert.equal(files.pattern, s.fwLog);
    assert.deepEqual(files.followed.map((f: { firewall: string; file: { path: string; lagBytes: number } }) => [f.firewall, f.file.path, f.file.lagBytes]), [
      ['192.0.2.1', join(s.remote, '192.0.2.1', 'kern.log'), 0],
      ['edge-2.example.net', join(s.remote, 'edge-2.example.net', 'kern.log'), 0],
    ]);
    assert.equal(files.followed[1].lines.packets, 3);
    assert.deepEqual(json.openDoors.map((open: { ip: string; firewall: string }) => `${open.ip} ${open.firewall}`).sort(), [`${KNOCKER} 192.0.2.1`, `${KNOCKER} edge-2.example.net`]);
    const text = (await runCli(['status', '--state-dir', s.stateDir])).stdout;
    assert.match(text, /files followed 2 \(MaxFollowedFiles 1000\), not followed 0, refused 0/);
    assert.match(text, /edge-2\.example\.net: .*edge-2\.example\.net\/kern\.log: lag 0 bytes/);
    assert.match(text, /fw {2}10\.9\.0\.1 on edge-2\.example\.net {2}open since/);
    assert.match(readFileSync(s.logFile, 'utf8'), /10\.9\.0\.1: fw: OPEN SESAME on firewall edge-2\.example\.net/);
    assert.equal((await daemon.stop()).code, 0);
  });

  it('kill -9 right after an open: the restarted daemon does not open it again, and reads what came meanwhile', async () => {
    const s = collectorScratch();
    s.knock('192.0.2.1');
    s.knock('192.0.2.2');
    const first = await startDaemon(s);
    s.knock('192.0.2.2', 7001);
    s.knock('192.0.2.1', 7001, 7002);
    await waitFor('the open', () => linesOf(s.commands).length === 1, () => first.output);
    assert.equal((await first.stop('SIGKILL')).signal, 'SIGKILL');
    s.knock('192.0.2.2', 7002);
    const second = await startDaemon(s);
    await waitFor('the open on 192.0.2.2 from the lines of both runs', () => linesOf(s.commands).length === 2, () => second.output);
    await handled(s, 1, () => second.output);
    assert.deepEqual(linesOf(s.commands), [`start fw ${KNOCKER} 192.0.2.1 192.0.2.1`, `start fw ${KNOCKER} 192.0.2.2 192.0.2.2`]);
    assert.equal((await second.stop()).code, 0);
  });

  it('a reload keeps the files followed (a knock in progress completes across it) and applies MaxFollowedFiles', async () => {
    const s = collectorScratch();
    for (const firewall of ['192.0.2.1', '192.0.2.2']) s.knock(firewall);
    const daemon = await startDaemon(s);
    s.knock('192.0.2.1', 7001);
    await handled(s, 1, () => daemon.output);
    writeConfig(s, `${DOOR}  start_command_6 = true\n`, '  MaxFollowedFiles = 1\n');
    daemon.signal('SIGHUP');
    await waitFor('the reload', async () => (await statusOf(s)).counters.reloads === 1, () => daemon.output);
    await waitFor('192.0.2.2 let go', async () => ((await statusOf(s)).inputs[0] as unknown as { files: unknown[] }).files.length === 1, () => daemon.output);
    s.knock('192.0.2.2', 7001, 7002);
    s.knock('192.0.2.1', 7002);
    await waitFor('the open on 192.0.2.1', () => linesOf(s.commands).length >= 1, () => daemon.output);
    const status = await statusOf(s);
    const input = status.inputs[0] as unknown as { files: Array<{ path: string }>; notFollowed: { count: number; first: string[] } };
    assert.deepEqual(input.files.map((file) => file.path), [join(s.remote, '192.0.2.1', 'kern.log')]);
    assert.deepEqual(input.notFollowed.first, [join(s.remote, '192.0.2.2', 'kern.log')]);
    assert.equal((await daemon.stop()).code, 0);
    const log = readFileSync(s.logFile, 'utf8');
    assert.doesNotMatch(log, /stopped reading/);
    assert.match(log, /1 file\(s\) not followed, because 1 \(MaxFollowedFiles\) are followed already: .*192\.0\.2\.2\/kern\.log/);
    assert.deepEqual(linesOf(s.commands), [`start fw ${KNOCKER} 192.0.2.1 192.0.2.1`]);
  });
});
