/** The shipped example config and systemd unit (conf/): valid as shipped. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cliPath, needs, repoRoot, runCli, tempDir, which } from '../helpers.js';

const unitPath = join(repoRoot, 'conf', 'knocktail.service');

describe('conf/', () => {
  it('knocktail.conf is a valid config', async () => {
    // As shipped, but following a log of this test (the machine's kern.log may be missing or unreadable to this user).
    const dir = tempDir();
    const conf = join(dir, 'knocktail.conf');
    writeFileSync(join(dir, 'kern.log'), '');
    writeFileSync(conf, readFileSync(join(repoRoot, 'conf', 'knocktail.conf'), 'utf8').replace('/var/log/kern.log', join(dir, 'kern.log')).replace('[options]', `[options]\n\tStateDir = ${join(dir, 'state')}`));
    const result = await runCli(['check-config', '-c', conf]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.match(result.stdout, /door \[openSSH\]/);
    assert.match(result.stdout, /at daemon start, run: for t in iptables ip6tables/);
  });

  it('knocktail.service runs the daemon in the foreground, notifies readiness and reloads with HUP', () => {
    const unit = readFileSync(unitPath, 'utf8');
    const directive = (name: string) => new RegExp(`^${name}=(.*)$`, 'm').exec(unit)?.[1];
    assert.equal(directive('Type'), 'notify');
    assert.equal(directive('NotifyAccess'), 'all');
    assert.doesNotMatch(directive('ExecStart')!, / -d\b/);
    assert.equal(directive('ExecReload'), '/bin/kill -HUP $MAINPID');
    assert.equal(directive('StateDirectory'), 'knocktail');
    assert.equal(directive('StateDirectoryMode'), '0700');
  });

  it('knocktail.service passes systemd-analyze verify', { skip: needs({ tools: ['systemd-analyze'] }) }, () => {
    const dir = tempDir();
    const unit = join(dir, 'knocktail.service');
    // verify wants ExecStart's binary to exist: point it at this checkout's CLI.
    writeFileSync(unit, readFileSync(unitPath, 'utf8').replace('/usr/local/bin/knocktail', `${process.execPath} ${cliPath}`));
    const result = spawnSync(which('systemd-analyze')!, ['verify', unit], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '', 'no unknown or misspelled directive');
  });
});
