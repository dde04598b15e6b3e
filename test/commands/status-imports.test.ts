/**
 * `knocktail status` must not load the daemon (issue: a status request should be cheap and never start daemon
 * code): the modules the built status command can reach, by its static imports, exclude src/daemon/daemon.js.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../helpers.js';

const DIST_SRC = join(repoRoot, 'dist', 'src');

/** Every module of dist/src reachable from `entry` through `import … from` and `export … from` (type-only imports are erased by tsc). */
function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+'(\.[^']+)'/gm)) queue.push(resolve(dirname(file), match[1]!));
    for (const match of source.matchAll(/\bimport\('(\.[^']+)'\)/g)) queue.push(resolve(dirname(file), match[1]!));
  }
  return new Set([...seen].map((file) => relative(DIST_SRC, file)));
}

describe('module graph', () => {
  it('knocktail status reaches the control socket client, not the daemon', () => {
    const modules = reachable(join(DIST_SRC, 'commands', 'status.js'));
    assert.ok(modules.has(join('daemon', 'control.js')), [...modules].join(', '));
    assert.ok(!modules.has(join('daemon', 'daemon.js')), [...modules].join(', '));
    assert.ok(!modules.has(join('engine', 'engine.js')));
  });

  it('the daemon reaches no command-line module', () => {
    const modules = reachable(join(DIST_SRC, 'daemon', 'daemon.js'));
    assert.deepEqual([...modules].filter((module) => module.startsWith('commands') || module === 'cli.js'), []);
  });
});
