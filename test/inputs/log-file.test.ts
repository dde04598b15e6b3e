/** LogFileInput: a followed firewall log through the configured formats, with event times and a resumable position. */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FormatRegistry } from '../../src/formats/registry.js';
import type { KnockHit, Protocol } from '../../src/hit.js';
import { cursorFileName, LogFileInput } from '../../src/inputs/log-file.js';
import { fixture, tempDir } from '../helpers.js';
import { portWatch } from '../formats/support.js';
import { stopAfterTests, waitFor } from './follower-harness.js';

const iptables = FormatRegistry.load(null).get('iptables');
const realLines = readFileSync(fixture('real', 'iptables-kernlog-rfc3339.log'), 'utf8').split('\n').filter((line) => line !== '');

function following(path: string, cursorDir: string | null, watches: ((proto: Protocol, port: number) => boolean) | null = null) {
  const hits: KnockHit[] = [];
  const warnings: string[] = [];
  const input = stopAfterTests(new LogFileInput({
    path,
    formats: [iptables],
    watch: watches === null ? null : portWatch(watches),
    cursorDir,
    fromEnd: false,
    maxLineLength: 65536,
    bootTime: 0,
    onWarning: (message) => warnings.push(message),
  }));
  return { input, hits, warnings, start: () => input.start((hit) => hits.push(hit)) };
}

describe('LogFileInput', () => {
  it('turns appended lines into hits with the logged time, skips other lines, and counts them', async () => {
    const dir = tempDir();
    const log = join(dir, 'kern.log');
    writeFileSync(log, '');
    const run = following(log, null);
    await run.start();
    appendFileSync(log, `${realLines.slice(0, 10).join('\n')}\n`);
    // Lines 1–2 are "entered promiscuous mode"; 3–10 are knocks.
    await waitFor(() => run.hits.length === 8, 'eight hits');
    assert.deepEqual(run.hits.map((hit) => hit.dport), [7000, 8000, 9000, 7000, 8000, 9000, 2222, 3333]);
    assert.equal(run.hits[0]!.input, log);
    // Logged in 2026-11-21, read now: the line's own time (a backlog keeps its spacing).
    assert.equal(run.hits[0]!.time, Date.parse('2026-11-21T04:16:16.719Z') + 0.457);
    const status = run.input.status();
    assert.equal(status.kind, 'file');
    assert.deepEqual(status.decoder, { lines: 10, matched: 8, ignored: 2, notKnock: 0, missed: 0, skipped: 0 });
    await run.input.stop();
  });

  it('a whole-second stamp read within its second takes the arrival time; read later, its own time (sub-second timeouts stay exact)', async (t) => {
    const dir = tempDir();
    const log = join(dir, 'kern.log');
    writeFileSync(log, '');
    const run = following(log, null);
    await run.start();
    // The input's clock is the mocked Date: "when the line was read" is chosen, not raced against.
    const second = new Date(2026, 10, 21, 4, 16, 16).getTime();
    const stamp = 'Nov 21 04:16:16'; // local time, as rsyslog's traditional format writes it
    const traditional = readFileSync(fixture('real', 'iptables-kernlog.log'), 'utf8').split('\n')[2]!;
    t.mock.timers.enable({ apis: ['Date'], now: second + 400 });
    appendFileSync(log, `${stamp}${traditional.slice(15)}\n`);
    await waitFor(() => run.hits.length === 1, 'the first hit');
    assert.equal(run.hits[0]!.time, second + 400, 'read within its second: the arrival time');
    t.mock.timers.setTime(second + 1500);
    appendFileSync(log, `${stamp}${traditional.slice(15)}\n`);
    await waitFor(() => run.hits.length === 2, 'the second hit');
    assert.equal(run.hits[1]!.time, second, 'read after its second: the logged time');
    t.mock.timers.reset();
    await run.input.stop();
  });

  it('resumes after the last line read, across a restart, with its cursor under StateDir/cursors', async () => {
    const dir = tempDir();
    const log = join(dir, 'kern.log');
    writeFileSync(log, '');
    const first = following(log, dir);
    await first.start();
    appendFileSync(log, `${realLines.slice(2, 5).join('\n')}\n`);
    await waitFor(() => first.hits.length === 3, 'A01');
    await first.input.stop();
    assert.equal(JSON.parse(readFileSync(join(dir, cursorFileName(log)), 'utf8')).path, log);

    appendFileSync(log, `${realLines.slice(5, 8).join('\n')}\n`); // written while stopped
    const second = following(log, dir);
    await second.start();
    await waitFor(() => second.hits.length === 3, 'A02');
    assert.deepEqual(second.hits.map((hit) => `${hit.proto}/${hit.dport}`), ['udp/7000', 'udp/8000', 'udp/9000']);
    await second.input.stop();
  });

  it('only decodes lines for watched ports when given the matcher\'s watch test', async () => {
    const dir = tempDir();
    const log = join(dir, 'kern.log');
    writeFileSync(log, '');
    const run = following(log, null, (proto, port) => proto === 'udp' && port === 8000);
    await run.start();
    appendFileSync(log, `${realLines.join('\n')}\n`);
    await waitFor(() => (run.input.status().decoder as { lines: number }).lines === realLines.length, 'every line');
    assert.ok(run.hits.length > 0 && run.hits.every((hit) => hit.proto === 'udp' && hit.dport === 8000));
    assert.ok((run.input.status().decoder as { skipped: number }).skipped > 0);
    await run.input.stop();
  });

  it('cursor file names are stable and safe for any path', () => {
    assert.equal(cursorFileName('/var/log/kern.log'), cursorFileName('/var/log/kern.log'));
    assert.notEqual(cursorFileName('/var/log/kern.log'), cursorFileName('/var/log/kern.log.1'));
    assert.match(cursorFileName('/weird/../path with spaces/and\nnewline'), /^[0-9a-f]{16}\.json$/);
  });
});
