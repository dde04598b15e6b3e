/**
 * Forged-line defence, on the real phase G lines (fixtures/real/forged/): an unprivileged user's `logger -t kernel`
 * lines and root's /dev/kmsg injection against the one real kernel line G07. Kernel-only sources are read by
 * formats that take kernel lines only, so only G07 opens a door; the syslog files, where the forgeries are
 * indistinguishable from real lines, are refused by check-config and the daemon unless explicitly allowed.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fixture, runCli, tempDir } from '../helpers.js';

const REAL = '10.66.0.2';
const FORGER = '6.6.6.6';

/** A config with one single-knock door on 7000/tcp (what every forged line asks for) that records who it opened for. */
function setup(options: string[] = []): { dir: string; conf: string; opened: string } {
  const dir = tempDir();
  const opened = join(dir, 'opened');
  const conf = join(dir, 'knocktail.conf');
  writeFileSync(conf, [
    '[options]',
    `  StateDir = ${join(dir, 'state')}`,
    `  LogFile = ${join(dir, 'knocktail.log')}`,
    ...options,
    '[door7000]',
    '  sequence = 7000',
    '  tcpflags = syn',
    `  start_command = echo %IP% >> ${opened}`,
  ].join('\n'));
  return { dir, conf, opened };
}

/** Who `knocktail replay --json` says the door opened for, reading `file` with `format`. */
async function opensFor(file: string, format: string): Promise<string[]> {
  const { conf } = setup();
  const result = await runCli(['replay', '-c', conf, '--json', '--format', format, '--boot-time', '2026-11-21T04:08:50.365Z', file]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.trim().split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as { event: string; ip: string })
    .filter((event) => event.event === 'open').map((event) => event.ip);
}

describe('forged lines in kernel-only sources never open a door; the real one does', () => {
  const sources: Array<[file: string, format: string, what: string]> = [
    ['kern.log-excerpt.log', 'iptables', '/var/log/kern.log: the forgeries never got there (rsyslog made them user.*)'],
    ['kern-traditional-excerpt.log', 'iptables', 'the traditional-format kern.log'],
    ['journalctl-k-short-iso-precise.log', 'iptables', 'journalctl -k: root\'s /dev/kmsg injection shows as "unknown:", not "kernel:"'],
    ['journalctl-short-iso-precise.log', 'iptables', 'the whole journal: the syslog-socket forgery is "kernel[PID]:"'],
    ['kmsg.log', 'kmsg', '/dev/kmsg records: the injection has a user facility (12,…)'],
  ];
  for (const [file, format, what] of sources) {
    it(`${file} (${what})`, async () => {
      assert.deepEqual(await opensFor(fixture('real', 'forged', file), format), [REAL]);
    });
  }
});

describe('syslog files, where forged lines look exactly like the kernel\'s', () => {
  it('replaying them shows why: the forger would get in', async () => {
    // G01 and G03 have the shape of real kernel lines (G04's doubled host name does not); only the file tells them apart.
    assert.deepEqual(await opensFor(fixture('real', 'forged.log'), 'iptables'), [FORGER, FORGER, FORGER, REAL]);
    assert.deepEqual(await opensFor(fixture('real', 'forged', 'user.log-excerpt.log'), 'iptables'), [FORGER, FORGER, FORGER]);
  });

  for (const name of ['syslog', 'messages', 'user.log']) {
    it(`check-config and the daemon refuse to follow a file named ${name}`, async () => {
      const probe = setup();
      const log = join(probe.dir, name);
      copyFileSync(fixture('real', 'forged.log'), log);
      const { conf, opened } = setup([`  FirewallLog = ${log}`]);
      const check = await runCli(['check-config', '-c', conf]);
      assert.equal(check.code, 1);
      assert.match(check.stderr, new RegExp(`^${conf}:4: refusing to follow ${log}: any local user can write lines there that look exactly like the kernel's \\(logger -t kernel\\), so anyone could knock\n  fix: follow /var/log/kern\\.log \\(or FirewallLog = journal\\) instead; if you accept the risk, add "AllowForgeableLog = yes" to \\[options\\]\n`));

      const daemon = await runCli(['-c', conf, '--from-end'], { timeoutMs: 20_000 });
      assert.equal(daemon.code, 1, `the daemon must not start: ${daemon.stdout}${daemon.stderr}`);
      assert.match(daemon.stderr, /refusing to follow .* so anyone could knock\n {2}fix: /);
      assert.equal(existsSync(opened), false);
    });
  }

  it('AllowForgeableLog = yes lets check-config accept it', async () => {
    const probe = setup();
    const log = join(probe.dir, 'syslog');
    copyFileSync(fixture('real', 'forged.log'), log);
    const { conf } = setup([`  FirewallLog = ${log}`, '  AllowForgeableLog = yes']);
    const check = await runCli(['check-config', '-c', conf]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /: OK/);
  });
});
