/**
 * `knocktail check-config` through the real CLI: it refuses exactly what the daemon refuses (the same
 * preflight, naming file:line, exit 1, no stack trace), describes a config as JSON, and never prints raw
 * bytes from a hostile file. Each refusal is also tried on the daemon, which must refuse it the same way.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { canRunAsNobody, type CliResult, fixture, isRoot, runCli, tempDir } from '../helpers.js';
import { knock, linesOf, recordingDoor, scratch, startDaemon, waitFor } from '../daemon/harness.js';

/** A directory of its own with a log to follow and a state directory: `[options]` lines, then `rest`. */
function setup(rest: string, options = ''): { dir: string; conf: string; log: string; state: string } {
  const dir = tempDir('knocktail-check-');
  const log = join(dir, 'fw.log');
  const state = join(dir, 'state');
  writeFileSync(log, '');
  const conf = join(dir, 'k.conf');
  writeFileSync(conf, `[options]\n  FirewallLog = ${log}\n  StateDir = ${state}\n${options}${rest}`);
  return { dir, conf, log, state };
}

/** Exit 1, the problem named with `where` (file:line), a fix, and no stack trace. */
function assertRefused(result: CliResult, where: RegExp): void {
  assert.equal(result.code, 1, result.stdout + result.stderr);
  assert.match(result.stderr, where);
  assert.match(result.stderr, /\n {2}fix: /);
  assert.doesNotMatch(result.stderr, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
}

/** check-config refuses with `where`, and the daemon refuses to start with the same message. */
async function bothRefuse(conf: string, where: RegExp): Promise<void> {
  const check = await runCli(['check-config', '-c', conf]);
  assertRefused(check, where);
  assert.match(check.stderr, /\.conf: 1 error; the daemon would refuse this config\n$/);
  const daemon = await runCli(['-c', conf, '--from-end'], { timeoutMs: 20_000 });
  assertRefused(daemon, where);
}

const DOOR = '[d]\n  sequence = 7000\n';

describe('check-config and the daemon refuse the same configs', () => {
  it('a StateDir other users can write to, naming the StateDir line', async () => {
    const { conf, state } = setup(DOOR);
    mkdirSync(state);
    chmodSync(state, 0o777);
    await bothRefuse(conf, /k\.conf:3: StateDir .*state is writable by other users \(mode 0777\)/);
  });

  it('a table of used one-time knocks in the StateDir that others can write to: they could make used knocks open again', async () => {
    const { conf, state } = setup(DOOR);
    mkdirSync(state, { mode: 0o700 });
    writeFileSync(join(state, 'used-knocks.json'), '{"version":1,"entries":[]}');
    chmodSync(join(state, 'used-knocks.json'), 0o666);
    await bothRefuse(conf, /k\.conf:3: .*state\/used-knocks\.json can be written by other users \(mode 666\), who could make used knocks open again\n {2}fix: chmod 600 /);
  });

  it('a FirewallLog that is a directory, naming the FirewallLog line', async () => {
    const { dir, conf } = setup(DOOR);
    mkdirSync(join(dir, 'logs'));
    writeFileSync(conf, readFileSync(conf, 'utf8').replace(/FirewallLog = .*/, `FirewallLog = ${join(dir, 'logs')}`));
    await bothRefuse(conf, /k\.conf:2: FirewallLog .*logs is a directory, not a log file/);
  });

  it('a FirewallLog pattern whose leading directory is a file; one not there yet is a warning about the collector', async () => {
    const { dir, conf } = setup(DOOR);
    writeFileSync(join(dir, 'remote'), '');
    writeFileSync(conf, readFileSync(conf, 'utf8').replace(/FirewallLog = .*/, `FirewallLog = ${join(dir, 'remote', '{firewall}', 'fw.log')}`));
    await bothRefuse(conf, /k\.conf:2: FirewallLog .*remote\/\{firewall\}\/fw\.log: .*remote is a file, not a directory/);
    writeFileSync(conf, readFileSync(conf, 'utf8').replace(/FirewallLog = .*/, `FirewallLog = ${join(dir, 'nowhere', '{firewall}', 'fw.log')}`));
    const check = await runCli(['check-config', '-c', conf]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout + check.stderr, /nowhere does not exist \(yet\); knocktail follows the files once they appear/);
    assert.match(check.stdout + check.stderr, /make sure your syslog collector writes only the firewalls' own messages into these files/);
  });

  it('a FirewallLog that is a device', async () => {
    const { conf } = setup(DOOR);
    writeFileSync(conf, readFileSync(conf, 'utf8').replace(/FirewallLog = .*/, 'FirewallLog = /dev/null'));
    await bothRefuse(conf, /k\.conf:2: FirewallLog \/dev\/null is a character device, not a log file/);
  });

  it('a FirewallLog any user can write to, unless AllowForgeableLog = yes', async () => {
    const { conf, log } = setup(DOOR);
    chmodSync(log, 0o666);
    await bothRefuse(conf, /k\.conf:2: refusing to follow .*fw\.log: any local user can write to it \(mode 0666\), so anyone could knock/);
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('[d]', '  AllowForgeableLog = yes\n[d]'));
    assert.equal((await runCli(['check-config', '-c', conf])).code, 0);
  });

  it('a FirewallLog the daemon\'s user cannot read (tried as nobody)', { skip: isRoot ? canRunAsNobody() : 'needs root (to try as another user)' }, async () => {
    const { dir, conf, log, state } = setup(DOOR);
    chmodSync(dir, 0o755);
    chmodSync(log, 0o600);
    mkdirSync(state, { mode: 0o700 });
    chownSync(state, 65534, 65534);
    const result = await runCli(['check-config', '-c', conf], { uid: 65534 });
    assertRefused(result, /k\.conf:2: FirewallLog .*fw\.log cannot be read by uid 65534: EACCES/);
    assert.match(result.stderr, /: 1 error;/);
  });

  it('a FirewallLog that does not exist yet is only a warning (the daemon waits for it)', async () => {
    const { conf, log } = setup(DOOR);
    writeFileSync(conf, readFileSync(conf, 'utf8').replace(log, `${log}.new`));
    const result = await runCli(['check-config', '-c', conf]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /k\.conf:2: FirewallLog .*fw\.log\.new does not exist \(yet\); knocktail waits for it to appear/);
  });

  it('a One_Time_Sequences file that is the config itself, naming the door\'s line', async () => {
    const { conf } = setup('[d]\n  start_command = true\n  one_time_sequences = k.conf\n');
    await bothRefuse(conf, /k\.conf:6: door \[d\]: One_Time_Sequences names the config file itself/);
  });

  it('a binary One_Time_Sequences file, in one line', async () => {
    const { dir, conf } = setup('[d]\n  one_time_sequences = ot\n');
    writeFileSync(join(dir, 'ot'), Buffer.concat([Buffer.from('7000\n\x7fELF\x02\x01'), Buffer.alloc(64), Buffer.from('\n\x1b[2J\xff\n')]));
    await bothRefuse(conf, /k\.conf:5: door \[d\]: One_Time_Sequences .*ot holds binary data \(a NUL byte in line 2\)/);
  });

  it('a One_Time_Sequences file that cannot be written (immutable), at parse time', { skip: isRoot ? false : 'needs root (chattr)' }, async (t) => {
    const { dir, conf } = setup('[d]\n  one_time_sequences = ot\n');
    const ot = join(dir, 'ot');
    writeFileSync(ot, '7000\n');
    const locked = spawnSync('chattr', ['+i', ot], { encoding: 'utf8' });
    if (locked.status !== 0) return t.skip(`chattr +i failed: ${locked.stderr}`);
    try {
      await bothRefuse(conf, /k\.conf:5: One_Time_Sequences: .*ot must be readable and writable: EPERM/);
    } finally {
      spawnSync('chattr', ['-i', ot]);
    }
  });

  it('a config group or others can write to, with a fix; --allow-unsafe-config accepts it in both', async () => {
    const s = scratch(recordingDoor('d', '7000'));
    chmodSync(s.config, 0o664);
    await bothRefuse(s.config, /knocktail\.conf: .*knocktail\.conf can be written by its group \(mode 0664\); the commands in it run as/);
    const check = await runCli(['check-config', '--allow-unsafe-config', '-c', s.config]);
    assert.equal(check.code, 0, check.stderr);
    const daemon = await startDaemon(s, '--allow-unsafe-config', '--from-end');
    assert.equal((await daemon.stop()).code, 0);
  });

  it('a config in a directory others can write to (not sticky): they could replace it', async () => {
    const { dir, conf } = setup(DOOR);
    chmodSync(dir, 0o777);
    await bothRefuse(conf, /k\.conf: the directory .* can be written by group and others \(mode 0777\), who could replace .*k\.conf/);
  });

  it('a config another user owns, when run as root', { skip: isRoot ? false : 'needs root (chown)' }, async () => {
    const { conf } = setup(DOOR);
    chownSync(conf, 65534, 65534);
    await bothRefuse(conf, /k\.conf: .*k\.conf belongs to uid 65534, not to root/);
  });

  it('a One_Time_Sequences file others can write to: they could add a sequence', async () => {
    const { dir, conf } = setup('[d]\n  one_time_sequences = ot\n');
    writeFileSync(join(dir, 'ot'), '7000\n');
    chmodSync(join(dir, 'ot'), 0o646);
    await bothRefuse(conf, /k\.conf:5: door \[d\]: One_Time_Sequences: .*ot can be written by others \(mode 0646\); whoever can change it can add a sequence/);
  });
});

describe('the daemon refuses a reload that check-config would refuse, and keeps running', () => {
  it('a config made group-writable: HUP is refused with the reason, the old config stays in force', async () => {
    const s = scratch(recordingDoor('d', '7000'));
    const daemon = await startDaemon(s, '--from-end');
    try {
      chmodSync(s.config, 0o664);
      daemon.signal('SIGHUP');
      await waitFor('the refused reload in the log', () => /reload failed: still running with the previous config/.test(readFileSync(s.logFile, 'utf8')), () => daemon.output);
      assert.match(readFileSync(s.logFile, 'utf8'), /knocktail\.conf: .*knocktail\.conf can be written by its group \(mode 0664\)/);
      knock(s, '192.0.2.80', 7000);
      await waitFor('the door to open on the old config', () => linesOf(s.commands).length === 1, () => daemon.output);
    } finally {
      assert.equal((await daemon.stop()).code, 0);
    }
  });
});

describe('check-config --json', () => {
  it('gives the options, formats, doors and problems of a usable config (exit 0)', async () => {
    const { conf } = setup(readFileSync(fixture('conf', 'manifest.conf'), 'utf8'));
    const result = await runCli(['check-config', '--json', '-c', conf]);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout);
    assert.equal(report.config, conf);
    assert.equal(report.ok, true);
    assert.equal(report.options.Mode, 'file');
    assert.equal(report.options.MaxSources, 100000);
    assert.deepEqual(report.options.LogFormat, ['iptables']);
    assert.deepEqual(report.formats.map((f: { name: string; file: string }) => [f.name, f.file.endsWith('formats/iptables.conf')]), [['iptables', true]]);
    assert.deepEqual(
      report.doors.map((door: { name: string }) => door.name),
      ['S1', 'S2', 'S3'],
    );
    assert.deepEqual(report.doors[0], {
      name: 'S1',
      line: 6,
      sequence: [{ port: 7000, protocol: 'tcp' }, { port: 8000, protocol: 'tcp' }, { port: 9000, protocol: 'tcp' }],
      oneTimeSequences: null,
      seqTimeout: 5,
      tcpFlags: { set: ['SYN'], clear: ['ACK'] },
      target: null,
      allowFrom: [],
      ignoreRepeats: false,
      onReopen: 'extend',
      cmdTimeout: 10,
      commandLimit: null,
      knockScope: 'firewall',
      commands: { start: 'open-ssh %IP%', stop: 'close-ssh %IP%', start6: null, stop6: null },
    });
    assert.ok(report.problems.every((p: { severity: string }) => p.severity === 'warning'));
  });

  it('gives every problem with severity, file, line, message and hint, and ok false (exit 1)', async () => {
    const { conf, state } = setup('[d]\n  sequence = 7000,0\n  seq_timeout = 0\n');
    mkdirSync(state, { mode: 0o777 });
    chmodSync(state, 0o777);
    const parseError = await runCli(['check-config', '--json', conf]);
    assert.equal(parseError.code, 1);
    const report = JSON.parse(parseError.stdout);
    assert.equal(report.ok, false);
    assert.deepEqual(report.doors, []);
    assert.deepEqual(report.problems, [
      { severity: 'error', file: conf, line: 5, message: report.problems[0].message, hint: report.problems[0].hint },
    ]);
    assert.match(report.problems[0].message, /Sequence: .*0/);
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('7000,0', '7000'));
    const refused = JSON.parse((await runCli(['check-config', '--json', conf])).stdout);
    assert.equal(refused.ok, false);
    assert.deepEqual(refused.problems.map((p: { severity: string; line: number }) => [p.severity, p.line]), [['error', 3], ['warning', 2]]);
    assert.equal(refused.doors.length, 1, 'a config that parses is described even when refused');
  });

  it('describes an unreadable config as a problem, still in JSON', async () => {
    const result = await runCli(['check-config', '--json', '-c', '/nonexistent/k.conf']);
    assert.equal(result.code, 1);
    const report = JSON.parse(result.stdout);
    assert.deepEqual([report.ok, report.problems[0].file, report.problems[0].line], [false, '/nonexistent/k.conf', 0]);
    assert.match(report.problems[0].message, /cannot read config file \/nonexistent\/k\.conf: ENOENT/);
  });
});

describe('hostile config files never reach the terminal raw', () => {
  it('a binary file given as the config: one error naming it, not thousands', async () => {
    const dir = tempDir('knocktail-check-');
    const conf = join(dir, 'k.conf');
    copyFileSync(process.execPath, conf);
    for (const args of [['check-config', '-c', conf], ['-c', conf], ['replay', '-c', conf, fixture('conf', 'manifest.conf')]]) {
      const result = await runCli(args, { timeoutMs: 20_000 });
      assert.equal(result.code, 1, args.join(' '));
      assert.match(result.stderr, /k\.conf:1: this is not a config file: it holds binary data \(a NUL byte\)\n {2}fix: /);
      assert.ok(result.stderr.split('\n').length <= 4, result.stderr);
    }
  });

  it('a text file of junk: a few errors of each kind and a count, control characters escaped', async () => {
    const dir = tempDir('knocktail-check-');
    const conf = join(dir, 'k.conf');
    const junk = Array.from({ length: 3000 }, (_, i) => `\x1b[31mjunk ${i}\x07 = \u202eyes\r`).join('\n');
    writeFileSync(conf, `${junk}\n[options]\n${junk}\n`);
    const result = await runCli(['check-config', '-c', conf]);
    assert.equal(result.code, 1);
    assert.doesNotMatch(result.stderr, /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]/, 'no raw control characters');
    assert.match(result.stderr, /k\.conf:1: "\\x1b\[31mjunk 0\\x07" comes before any section/);
    assert.match(result.stderr, /… and 2,995 more like this in .*k\.conf/);
    assert.match(result.stderr, /k\.conf: 6000 errors; the daemon would refuse this config\n$/);
    assert.ok(result.stderr.split('\n').length < 40, `${result.stderr.split('\n').length} lines`);
  });

  it('a binary one-time sequences file in replay: a few warnings and a count, escaped', async () => {
    const dir = tempDir('knocktail-check-');
    const conf = join(dir, 'k.conf');
    writeFileSync(conf, '[d]\n  one_time_sequences = ot\n  start_command = true\n');
    writeFileSync(join(dir, 'ot'), readFileSync(process.execPath).subarray(0, 200_000));
    const log = join(dir, 'kern.log');
    writeFileSync(log, '');
    const result = await runCli(['replay', '-c', conf, log]);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/, 'no raw control characters');
    assert.match(result.stderr, /warning: .*ot:1: port "\\x7fELF\\x02/);
    assert.match(result.stderr, /warning: .*ot: … and [\d,]+ more like this\n/);
    assert.ok(result.stderr.split('\n').length < 40, `${result.stderr.split('\n').length} lines`);
  });
});
