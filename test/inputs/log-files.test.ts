/**
 * LogFilesInput: a FirewallLog pattern's files, each followed by a LogFileInput of its own. Files found at the
 * first start begin at their end, files found later at their start; positions survive a restart; files gone long
 * enough are let go; MaxFollowedFiles bounds them with a warning naming the others; a {firewall} part that is no
 * name, or a file anybody may write, is refused with a warning naming the file.
 */
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LogPattern } from '../../src/config/log-pattern.js';
import { FormatRegistry } from '../../src/formats/registry.js';
import type { KnockHit } from '../../src/hit.js';
import { cursorFileName } from '../../src/inputs/log-file.js';
import { LogFilesInput, type LogFilesInputOptions } from '../../src/inputs/log-files.js';
import { knockLine } from '../daemon/harness.js';
import { tempDir } from '../helpers.js';
import { stopAfterTests, waitFor } from './follower-harness.js';

const iptables = FormatRegistry.load(null).get('iptables');

/** A collector's directory: `remote/<name>/kern.log` per firewall, and the state directory. */
function collector() {
  const dir = tempDir();
  const remote = join(dir, 'remote');
  mkdirSync(remote);
  const cursors = join(dir, 'cursors');
  mkdirSync(cursors);
  const file = (name: string, leaf = 'kern.log') => join(remote, name, leaf);
  /** Appends knocks on `ports` (from 10.9.0.1) to the firewall's file, creating it. */
  const knock = (name: string, ...ports: number[]): void => {
    mkdirSync(join(remote, name), { recursive: true });
    appendFileSync(file(name), ports.map((port) => knockLine('10.9.0.1', port)).join(''));
  };
  return { dir, remote, cursors, file, knock, pattern: join(remote, '{firewall}', 'kern.log') };
}

function following(pattern: string, cursorDir: string | null, options: Partial<LogFilesInputOptions> = {}) {
  const hits: KnockHit[] = [];
  const warnings: string[] = [];
  const infos: string[] = [];
  const input = stopAfterTests(
    new LogFilesInput({
      pattern: new LogPattern(pattern),
      formats: [iptables],
      watch: null,
      cursorDir,
      fromEnd: false,
      maxLineLength: 65536,
      bootTime: 0,
      maxFiles: 100,
      allowForgeable: false,
      onWarning: (message) => warnings.push(message),
      onInfo: (message) => infos.push(message),
      scanIntervalMs: 20,
      letGoAfterMs: 100,
      ...options,
    }),
  );
  /** `firewall port` of every hit so far. */
  const seen = (): string[] => hits.map((hit) => `${hit.firewall ?? '-'} ${hit.dport}`);
  return { input, hits, warnings, infos, seen, start: () => input.start((hit) => hits.push(hit)) };
}

describe('LogFilesInput', () => {
  it('files there at the first start are read from their end, files that appear later from their start; each is an input of its own with its firewall', async () => {
    const c = collector();
    c.knock('192.0.2.1', 1, 2);
    const run = following(c.pattern, c.cursors);
    await run.start();
    c.knock('192.0.2.1', 3);
    c.knock('Edge-2.example.NET', 4, 5);
    await waitFor(() => run.hits.length === 3, 'three hits');
    assert.deepEqual(run.seen().sort(), ['192.0.2.1 3', 'edge-2.example.net 4', 'edge-2.example.net 5']);
    assert.deepEqual(new Set(run.hits.map((hit) => hit.input)), new Set([c.file('192.0.2.1'), c.file('Edge-2.example.NET')]));
    assert.equal(run.input.covers(c.file('192.0.2.1')), true);
    assert.equal(run.input.covers(join(c.remote, 'other', 'kern.log')), false);
    const status = run.input.status();
    assert.deepEqual(status.files.map((file) => [file.firewall, file.path, file.lagBytes]), [
      ['192.0.2.1', c.file('192.0.2.1'), 0],
      ['edge-2.example.net', c.file('Edge-2.example.NET'), 0],
    ]);
    assert.equal(status.decoder.matched, 3);
    assert.match(run.infos.join('\n'), /following .*Edge-2\.example\.NET\/kern\.log \(firewall edge-2\.example\.net\)/);
    await run.input.stop();
  });

  it('a restart resumes every file where it stopped, and reads a file created meanwhile from its start', async () => {
    const c = collector();
    c.knock('192.0.2.1', 1);
    const first = following(c.pattern, c.cursors);
    await first.start();
    c.knock('192.0.2.1', 2);
    await waitFor(() => first.hits.length === 1, 'the first hit');
    await first.input.stop();
    c.knock('192.0.2.1', 3);
    c.knock('192.0.2.2', 4);
    const second = following(c.pattern, c.cursors);
    await second.start();
    await waitFor(() => second.hits.length === 2, 'what was written while stopped');
    assert.deepEqual(second.seen().sort(), ['192.0.2.1 3', '192.0.2.2 4']);
    await second.input.stop();
  });

  it('lets go of a file gone for a while, deletes its cursor, and reads it from its start when it is back', async () => {
    const c = collector();
    c.knock('192.0.2.1', 1);
    c.knock('192.0.2.2', 1);
    const run = following(c.pattern, c.cursors);
    await run.start();
    const cursor = join(c.cursors, cursorFileName(c.file('192.0.2.2')));
    run.input.persist(c.file('192.0.2.2'));
    assert.equal(existsSync(cursor), true, 'the position of one file is saved at once');
    rmSync(join(c.remote, '192.0.2.2'), { recursive: true });
    await waitFor(() => run.input.status().files.length === 1, 'the gone file to be let go');
    assert.equal(existsSync(cursor), false);
    assert.match(run.infos.join('\n'), /let go of .*192\.0\.2\.2\/kern\.log: gone for \d+ s/);
    c.knock('192.0.2.2', 7, 8);
    await waitFor(() => run.hits.length === 2, 'the file back, from its start');
    assert.deepEqual(run.seen(), ['192.0.2.2 7', '192.0.2.2 8']);
    await run.input.stop();
  });

  it('a rotated file is read to its end by its follower, and its copy is never followed as a file of its own', async () => {
    const c = collector();
    const run = following(join(c.remote, '{firewall}', '*'), c.cursors);
    c.knock('192.0.2.1');
    await run.start();
    c.knock('192.0.2.1', 1, 2);
    renameSync(c.file('192.0.2.1'), c.file('192.0.2.1', 'kern.log.1'));
    appendFileSync(c.file('192.0.2.1', 'kern.log.1'), knockLine('10.9.0.1', 3));
    c.knock('192.0.2.1', 4);
    await waitFor(() => run.hits.length === 4, 'four hits');
    assert.deepEqual(run.seen(), ['192.0.2.1 1', '192.0.2.1 2', '192.0.2.1 3', '192.0.2.1 4']);
    assert.deepEqual(run.input.status().files.map((file) => file.path), [c.file('192.0.2.1')]);
    await run.input.stop();
  });

  it('follows at most maxFiles: a warning names the others (once, not at every scan); a freed place takes the next file from its start', async () => {
    const c = collector();
    for (const name of ['192.0.2.1', '192.0.2.2']) c.knock(name);
    const run = following(c.pattern, c.cursors, { maxFiles: 2 });
    await run.start();
    c.knock('192.0.2.3', 5);
    await waitFor(() => run.input.status().notFollowed.count === 1, 'the third file, not followed');
    const scans = run.input.status();
    assert.deepEqual(scans.notFollowed.first, [c.file('192.0.2.3')]);
    await new Promise((resolve) => setTimeout(resolve, 200)); // ten scans
    const limitWarnings = run.warnings.filter((warning) => warning.includes('MaxFollowedFiles'));
    assert.equal(limitWarnings.length, 1, run.warnings.join('\n'));
    assert.match(limitWarnings[0]!, /1 file\(s\) not followed, because 2 \(MaxFollowedFiles\) are followed already: .*192\.0\.2\.3\/kern\.log; raise MaxFollowedFiles/);
    assert.deepEqual(run.hits, []);
    rmSync(join(c.remote, '192.0.2.1'), { recursive: true });
    await waitFor(() => run.hits.length === 1, 'the third file, followed once there is room');
    assert.deepEqual(run.seen(), ['192.0.2.3 5']);
    assert.equal(run.input.status().notFollowed.count, 0);
    await run.input.stop();
  });

  it('a lower bound after a reload lets the last files go', async () => {
    const c = collector();
    for (const name of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) c.knock(name);
    const run = following(c.pattern, c.cursors);
    await run.start();
    assert.equal(run.input.status().files.length, 3);
    run.input.updateOptions({ maxFollowedFiles: 1 } as Parameters<LogFilesInput['updateOptions']>[0]);
    await waitFor(() => run.input.status().files.length === 1, 'two files let go');
    assert.deepEqual(run.input.status().notFollowed.first, [c.file('192.0.2.2'), c.file('192.0.2.3')]);
    await run.input.stop();
  });

  it('refuses a file whose {firewall} part is no name, and one anybody may write (until it is made private), naming each once', async () => {
    const c = collector();
    c.knock('bad;name', 1);
    c.knock('192.0.2.9', 2);
    chmodSync(c.file('192.0.2.9'), 0o666);
    c.knock('192.0.2.1');
    const run = following(c.pattern, c.cursors);
    await run.start();
    await new Promise((resolve) => setTimeout(resolve, 100)); // several scans
    c.knock('bad;name', 3);
    c.knock('192.0.2.9', 4);
    c.knock('192.0.2.1', 5);
    await waitFor(() => run.hits.length === 1, 'the good file');
    assert.deepEqual(run.seen(), ['192.0.2.1 5']);
    assert.deepEqual(run.warnings.filter((warning) => warning.includes('not following')).sort(), [
      `${c.pattern}: not following ${c.file('192.0.2.9')}: anybody may write into it, so anybody could knock (chmod o-w, or AllowForgeableLog = yes)`,
      `${c.pattern}: not following ${c.file('bad;name')}: its {firewall} part "bad;name" is neither an IP address nor a host name`,
    ]);
    assert.equal(run.input.status().refused.count, 2);
    // Made private, the file is followed (from its start: it was never read).
    chmodSync(c.file('192.0.2.9'), 0o640);
    await waitFor(() => run.hits.length === 3, 'the file made private');
    assert.deepEqual(run.seen().slice(1), ['192.0.2.9 2', '192.0.2.9 4']);
    assert.equal(run.input.status().refused.count, 1);
    await run.input.stop();
  });

  it('the periodic save writes every file\'s position, a few files per turn of the event loop', async () => {
    const c = collector();
    const names = Array.from({ length: 10 }, (_, i) => `192.0.2.${i + 1}`);
    for (const name of names) c.knock(name);
    const run = following(c.pattern, c.cursors);
    await run.start();
    const saved = () => names.filter((name) => existsSync(join(c.cursors, cursorFileName(c.file(name))))).length;
    assert.equal(saved(), 0);
    run.input.persist();
    assert.ok(saved() < names.length, 'not all in one go');
    await waitFor(() => saved() === names.length, 'every position saved');
    await run.input.stop();
  });

  it('without a state directory, every start is a first start', async () => {
    const c = collector();
    c.knock('192.0.2.1', 1);
    const run = following(c.pattern, null);
    await run.start();
    c.knock('192.0.2.1', 2);
    await waitFor(() => run.hits.length === 1, 'the new line');
    assert.deepEqual(run.seen(), ['192.0.2.1 2']);
    assert.deepEqual(readdirSync(c.cursors), []);
    await run.input.stop();
  });
});
