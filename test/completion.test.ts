/**
 * The bash completion (completion/knocktail.bash) run by real bash against the real command line: commands,
 * each command's options, option values (files), and door names read from the config given with -c.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { VERBS } from '../src/commands/verbs.js';
import { cliPath, needs, repoRoot, tempDir } from './helpers.js';

const SCRIPT = join(repoRoot, 'completion', 'knocktail.bash');

/** An executable `knocktail` that runs this checkout's CLI (the completion calls the command being completed). */
function knocktailCommand(dir: string, body = `exec "${process.execPath}" "${cliPath}" "$@"`): string {
  const path = join(dir, 'knocktail');
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** What bash offers for the command line `words` (the last word is the one being completed). */
function complete(command: string, ...words: string[]): string[] {
  const quoted = [command, ...words].map((word) => `'${word.replaceAll("'", "'\\''")}'`).join(' ');
  const script = `source '${SCRIPT}'\nCOMP_WORDS=(${quoted}); COMP_CWORD=${words.length}\n_knocktail\nprintf '%s\\n' "\${COMPREPLY[@]}"`;
  const result = spawnSync('bash', ['--norc', '--noprofile', '-c', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stderr, '');
  return result.stdout.split('\n').filter((line) => line !== '');
}

describe('bash completion', { skip: needs({ tools: ['bash'] }) }, () => {
  it('completes the commands after knocktail, and after help', () => {
    const command = knocktailCommand(tempDir('knocktail-completion-'));
    assert.deepEqual(complete(command, ''), VERBS.map((verb) => verb.name));
    assert.deepEqual(complete(command, 'che'), ['check-config']);
    assert.deepEqual(complete(command, 'help', 'st'), ['status']);
  });

  it("completes each command's own options, and the daemon's without a command", () => {
    const command = knocktailCommand(tempDir('knocktail-completion-'));
    assert.deepEqual(complete(command, 'check-config', '--'), ['--config', '--json', '--allow-unsafe-config', '--help']);
    assert.deepEqual(complete(command, 'status', '--s'), ['--state-dir']);
    assert.deepEqual(complete(command, 'replay', '--e'), ['--execute']);
    assert.deepEqual(complete(command, '--from'), ['--from-end']);
    assert.ok(complete(command, '-').includes('-D'));
  });

  it('completes file names after an option that takes a FILE, and for a command that takes files', () => {
    const dir = tempDir('knocktail-completion-');
    const command = knocktailCommand(dir);
    writeFileSync(join(dir, 'door.conf'), '');
    writeFileSync(join(dir, 'kern.log.1'), '');
    assert.deepEqual(complete(command, 'check-config', '-c', join(dir, 'door')), [join(dir, 'door.conf')]);
    assert.deepEqual(complete(command, 'replay', '-c', join(dir, 'door.conf'), join(dir, 'kern')), [join(dir, 'kern.log.1')]);
  });

  it('completes door names from the config given with -c for a command whose usage takes a DOOR', () => {
    // No command of this version takes a DOOR yet (knock and sequence will): a stand-in answers `help` for one
    // such command the way the command line does, and passes everything else to the real one.
    const dir = tempDir('knocktail-completion-');
    const command = knocktailCommand(
      dir,
      `case "$*" in\n  "help") "${process.execPath}" "${cliPath}" help; echo "       knocktail open -c CONFIG DOOR  open a door";;\n` +
        `  "help open") echo "usage: knocktail open -c CONFIG DOOR";;\n  "open --help") echo "  -c, --config CONFIG  the config";;\n` +
        `  *) exec "${process.execPath}" "${cliPath}" "$@";;\nesac`,
    );
    const conf = join(dir, 'doors.conf');
    writeFileSync(conf, '[options]\n  StateDir = /x\n[openSSH]\n  sequence = 7000\n  [ closeSSH ]\n  sequence = 7001\n[web server]\n  sequence = 7002\n');
    assert.deepEqual(complete(command, 'open', '-c', conf, ''), ['openSSH', ' closeSSH ', 'web server']);
    assert.deepEqual(complete(command, 'open', `--config=${conf}`, 'o'), ['openSSH']);
    assert.deepEqual(complete(command, 'open', '-c', join(dir, 'missing.conf'), ''), []);
  });
});
