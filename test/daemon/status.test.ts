/**
 * `knocktail status`: what the running daemon publishes on its control socket, as text and as JSON; a
 * clear message when no daemon runs; root only.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { formatStatus } from '../../src/commands/status.js';
import type { DaemonStatus } from '../../src/daemon/control.js';
import { COUNTERS, type StatusJson } from '../../src/daemon/status-report.js';
import { canRunAsNobody, cliPath, isRoot, runCli } from '../helpers.js';
import { knock, linesOf, recordingDoor, scratch, startDaemon, statusOf, waitFor } from './harness.js';

describe('knocktail status', () => {
  it('shows open doors, knocks in progress, inputs and counters of the running daemon, as text and JSON', async () => {
    const s = scratch(recordingDoor('ssh', '7000', '  cmd_timeout = 600\n') + recordingDoor('web', '8000,8001,8002'));
    const daemon = await startDaemon(s);
    try {
      knock(s, '192.0.2.60', 7000);
      knock(s, '192.0.2.61', 8000, 8001);
      await waitFor('the knocks', async () => (await statusOf(s)).counters.stages === 3 && linesOf(s.commands).length === 1);

      const text = await runCli(['status', '-c', s.config]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, new RegExp(`^knocktail \\S+, pid ${daemon.pid}, running since `));
      assert.match(text.stdout, /^Open doors \(1\):\n {2}ssh {2}192\.0\.2\.60 {2}open since \S+ \S+, closes \S+ \S+ \(in (9|10) min \d+ s\)$/m);
      assert.match(text.stdout, /^Knocks in progress: 1 from 1 source\(s\); oldest: web 192\.0\.2\.61 at stage 2\/3 since /m);
      assert.match(text.stdout, new RegExp(`^ {2}${s.fwLog} \\(file\\)\\n {4}position (\\d+) of \\1 bytes, lag 0 bytes$`, 'm'));
      assert.match(text.stdout, /^ {4}lines: read 3, TCP\/UDP packets 3, skipped unparsed \(no port a door watches in them\) 0, ignored \(no log format recognised them\) 0, /m);
      assert.match(text.stdout, /^ {2}log lines read 3, recognised as TCP\/UDP packets by a log format 3$/m);
      assert.match(text.stdout, /^ {2}TCP\/UDP packets \(from log lines or capture\) 3, knocks \(.*\) 3$/m);
      assert.match(text.stdout, /stages reached 3, doors opened 1, sequence timeouts 0/);
      assert.match(text.stdout, /commands run 1, commands failed 0/);
      assert.doesNotMatch(text.stdout, /droppedLines|notKnock|linesMatched|decoder/, 'no internal names in the text view');

      const json = await runCli(['status', '--state-dir', s.stateDir, '--json']);
      assert.equal(json.code, 0, json.stderr);
      const status = JSON.parse(json.stdout) as StatusJson;
      assert.equal(status.statusFormat, 1);
      assert.equal(status.pid, daemon.pid);
      assert.equal(status.state, 'running');
      assert.deepEqual(status.openDoors.map((door) => [door.door, door.ip, door.stopCommand]), [['ssh', '192.0.2.60', `echo "stop ssh 192.0.2.60" >> ${s.commands}`]]);
      assert.equal(status.openDoors[0]!.closesAt - status.openDoors[0]!.openedAt >= 600_000, true);
      assert.deepEqual([status.knocksInProgress.count, status.knocksInProgress.sources, status.knocksInProgress.oldest?.stage], [1, 1, 2]);
      assert.deepEqual(status.inputs[0], {
        id: s.fwLog,
        kind: 'file',
        lines: { read: 3, packets: 3, skipped: 0, ignored: 0, otherProtocols: 0, malformed: 0 },
        file: { path: s.fwLog, missing: false, offset: status.inputs[0]!.file!.size, size: status.inputs[0]!.file!.size, lagBytes: 0, rotations: 0, truncations: 0, oldFilesDraining: 0, linesDropped: 0 },
      });
      assert.deepEqual(Object.keys(status.counters), Object.values(COUNTERS).map((counter) => counter.name));
      assert.deepEqual([status.counters.logLinesRead, status.counters.packets, status.counters.knocks, status.counters.stagesReached, status.counters.opens], [3, 3, 3, 3, 1]);
    } finally {
      await daemon.stop();
    }
  });

  it('says clearly when no daemon runs (exit 1)', async () => {
    const s = scratch(recordingDoor('ssh', '7000'));
    const result = await runCli(['status', '-c', s.config]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.equal(result.stderr, `knocktail status: no knocktail daemon is running with StateDir ${s.stateDir} (nothing answers on ${s.stateDir}/control.sock)\n`);
  });

  it('points to --state-dir when the config does not load', async () => {
    const s = scratch('[d]\n  sequence = 7000,0\n');
    const result = await runCli(['status', '-c', s.config]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /knocktail\.conf:\d+: /);
    assert.match(result.stderr, /name it with --state-dir DIR/);
  });

  it('answers root only', { skip: isRoot ? canRunAsNobody() : 'needs root (to try as another user)' }, async () => {
    const s = scratch(recordingDoor('ssh', '7000'));
    const daemon = await startDaemon(s);
    try {
      const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(process.execPath, [cliPath, 'status', '--state-dir', s.stateDir], { uid: 65534, gid: 65534 }, (error, _stdout, stderr) => {
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stderr });
        });
      });
      assert.equal(result.code, 1);
      assert.match(result.stderr, /permission denied on .*control\.sock: only root may ask the daemon \(try sudo\)/);
    } finally {
      await daemon.stop();
    }
  });

  it('formats times relative to the answer, including a stop already due', () => {
    const now = Date.parse('2026-11-21T10:00:00Z');
    const status: DaemonStatus = {
      knocktail: '0.1.0',
      pid: 42,
      state: 'running',
      startedAt: now - 3 * 3600_000 - 5 * 60_000,
      now,
      config: '/etc/knocktail.conf',
      mode: 'file',
      stateDir: '/var/lib/knocktail',
      open: [
        { door: 'ssh', ip: '192.0.2.1', openedAt: now - 40_000, closesAt: now - 2_000, stopCommand: 'x' },
        { door: 'ssh', ip: '2001:db8::1', openedAt: now - 5_000, closesAt: now + 25_000, stopCommand: 'y' },
      ],
      running: [{ door: 'ssh', ip: '192.0.2.1', action: 'stop', command: 'iptables -D …', since: now - 2_000 }],
      attempts: { count: 0, sources: 0, oldest: null },
      inputs: [
        {
          id: 'journal',
          kind: 'journal',
          running: true,
          pid: 77,
          cursor: 's=1',
          entries: 12,
          rejected: 1,
          restarts: 0,
          decoder: { lines: 12, matched: 4, skipped: 5, ignored: 2, notKnock: 1, missed: 0 },
        },
        {
          id: 'pcap:eth0',
          kind: 'pcap',
          filter: 'tcp dst port 7000',
          promiscuous: false,
          snapLength: 256,
          localAddresses: { v4: ['192.0.2.10'], v6: [] },
          hits: 14,
          capturePid: 78,
          restarts: 1,
          receivedTwice: 2,
          discarded: 0,
          lastError: null,
          interfaces: [{ name: 'eth0', linkType: 'EN10MB (Ethernet)', error: null, received: 16, dropped: 0, ifdropped: 0 }],
        },
      ],
      counters: {
        hits: 4, visible: 4, stages: 4, opens: 2, timeouts: 0, evicted: 0, refused: 0, linesRead: 12, linesMatched: 4,
        commandsRun: 3, commandsFailed: 1, stopsRun: 1, stopsLate: 0, extended: 0, knocksStale: 2, knocksFuture: 0, knocksReordered: 1, clockSteps: 0, errors: 0, reloads: 1, failedReloads: 0,
      },
      memory: { rss: 80 * 1024 * 1024, heapUsed: 12.5 * 1024 * 1024 },
    };
    const text = formatStatus(status);
    assert.match(text, /running since .* \(3 h 5 min\)/);
    assert.match(text, /^memory: RSS 80\.0 MB, JavaScript heap 12\.5 MB$/m);
    assert.match(text, /ssh {2}192\.0\.2\.1 {2}open since .*, closing now \(due 2 s ago\)/);
    assert.match(text, /ssh {2}2001:db8::1 {2}open since .*, closes .* \(in 25 s\)/);
    assert.match(text, /Commands running \(1\):\n {2}ssh {2}192\.0\.2\.1 {2}stop for 2 s: iptables -D …/);
    assert.match(text, /Knocks in progress: none/);
    assert.match(
      text,
      /pcap:eth0 \(pcap\)\n {4}filter: tcp dst port 7000\n {4}eth0 \(EN10MB \(Ethernet\)\): 16 packets received, 0 dropped by the kernel, 0 by the interface\n {4}knock packets 14, discarded \(knocktail could not keep up\) 0, capture restarts 1, knock packets received twice during them 2\n/,
    );
    assert.match(text, /journal \(journal\)\n {4}journalctl running \(pid 77\), entries read 12, rejected \(not kernel messages, or no usable text or time\) 1, restarts 0\n/);
    assert.match(
      text,
      /\n {4}lines: read 12, TCP\/UDP packets 4, skipped unparsed \(no port a door watches in them\) 5, ignored \(no log format recognised them\) 2, other protocols \(ICMP…\) 1, malformed .* 0\n/,
    );
    assert.match(text, /commands run 3, commands failed 1, stops run 1, stops run late \(a second or more\) 0/);
    assert.match(text, /knocks ignored: stamped more than MaxKnockAge ago \(an old log line read again\) 2/);
  });
});
