/** The command line as users meet it: knockd's flags, strict errors, exit statuses. */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { VERBS } from '../src/commands/verbs.js';
import { recordingDoor, scratch, startDaemon } from './daemon/harness.js';
import { fixture, repoRoot, runCli, tempDir } from './helpers.js';

const version = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version;

describe('knocktail command line', () => {
  it('prints its version with -V and --version (exit 0)', async () => {
    for (const flag of ['-V', '--version']) {
      const result = await runCli([flag]);
      assert.equal(result.code, 0);
      assert.equal(result.stdout, `knocktail ${version}\n`);
    }
  });

  it("documents every knockd flag in -h (exit 0)", async () => {
    const result = await runCli(['-h']);
    assert.equal(result.code, 0);
    for (const flag of ['-c, --config', '-i, --interface', '-d, --daemon', '-v, --verbose', '-D, --debug', '-l, --lookup', '-p, --pidfile', '-g, --logfile', '-4, --only-ip-v4', '-V, --version', '-h, --help']) {
      assert.ok(result.stdout.includes(flag), flag);
    }
    for (const command of ['replay', 'check-config', 'test-format', 'status', 'knock', 'sequence']) assert.match(result.stdout, new RegExp(`knocktail ${command}`));
  });

  it('refuses an unknown flag with exit 2 (knockd silently exits 0)', async () => {
    for (const args of [['--bogus'], ['-x'], ['-c'], ['replay', '-Z', 'f'], ['check-config', '--nope']]) {
      const result = await runCli(args);
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, /knocktail: /);
      assert.match(result.stderr, /usage: knocktail/);
    }
  });

  it('refuses an unknown command with exit 2', async () => {
    const result = await runCli(['repaly', 'x.log']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /unknown command "repaly"/);
  });

  it('knocktail help prints the overview, the same as --help (exit 0)', async () => {
    const help = await runCli(['help']);
    assert.equal(help.code, 0);
    assert.equal(help.stdout, (await runCli(['--help'])).stdout);
    for (const verb of VERBS) assert.match(help.stdout, new RegExp(`^ +knocktail ${verb.name} `, 'm'));
  });

  it('knocktail help COMMAND and knocktail COMMAND --help print that command\'s usage only (exit 0)', async () => {
    for (const verb of VERBS) {
      const help = await runCli(['help', verb.name]);
      const flag = await runCli([verb.name, '--help']);
      assert.deepEqual([help.code, flag.code], [0, 0], verb.name);
      assert.equal(help.stdout, flag.stdout, verb.name);
      assert.match(help.stdout, new RegExp(`^usage: knocktail ${verb.name}\\b`), verb.name);
      assert.doesNotMatch(help.stdout, /daemon options/, `${verb.name}: not the overview`);
      for (const other of VERBS.filter((o) => o !== verb)) assert.doesNotMatch(help.stdout, new RegExp(`usage: knocktail ${other.name}\\b`));
    }
  });

  it('an unknown command: one line naming it (and the likely one), the list of commands, exit 2', async () => {
    const names = VERBS.map((verb) => verb.name).join(', ');
    const typo = await runCli(['chek-config', '-c', 'x']);
    assert.equal(typo.code, 2);
    assert.equal(typo.stdout, '');
    assert.equal(typo.stderr, `knocktail: unknown command "chek-config" (did you mean check-config?)\ncommands: ${names}; "knocktail help COMMAND" shows how to use one\n`);
    const help = await runCli(['help', 'frobnicate']);
    assert.equal(help.code, 2);
    assert.equal(help.stderr, `knocktail: unknown command "frobnicate"\ncommands: ${names}; "knocktail help COMMAND" shows how to use one\n`);
  });

  it('-v prints the start-up line once on stdout; the log file has knockd\'s "starting up" line once', async () => {
    const s = scratch(recordingDoor('d', '7000'));
    const daemon = await startDaemon(s, '-v', '--from-end');
    assert.equal((await daemon.stop()).code, 0);
    assert.equal(daemon.output.split('\n').filter((line) => line.includes('listening on')).join('\n'), `listening on ${s.fwLog}...`);
    assert.equal(readFileSync(s.logFile, 'utf8').split('\n').filter((line) => line.includes('listening on')).length, 1);
    assert.match(readFileSync(s.logFile, 'utf8'), new RegExp(`\\] starting up, listening on ${s.fwLog}\n`));
  });

  it('names a missing config file and exits 1', async () => {
    const result = await runCli(['-c', '/nonexistent/knock.conf']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /\/nonexistent\/knock\.conf/);
  });

  it('reports every config error with file:line and a fix, and starts nothing (exit 1)', async () => {
    const dir = tempDir();
    const conf = join(dir, 'bad.conf');
    writeFileSync(conf, '[options]\n  Mode = file\n[d]\n  sequence = 7000,0\n  tcpflags = syn,bogus\n  cmd_timeout = -3\n');
    const result = await runCli(['-c', conf, '--from-end']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /bad\.conf:4: /);
    assert.match(result.stderr, /bad\.conf:5: .*BOGUS/i);
    assert.match(result.stderr, /bad\.conf:6: /);
    assert.match(result.stderr, /fix: /);
  });
});

/** manifest.conf (doors only), following a log of the test's own, with a state directory of its own. */
function manifestConfig(): string {
  const dir = tempDir();
  writeFileSync(join(dir, 'kern.log'), '');
  const conf = join(dir, 'manifest.conf');
  writeFileSync(conf, `[options]\n  FirewallLog = ${join(dir, 'kern.log')}\n  StateDir = ${join(dir, 'state')}\n${readFileSync(fixture('conf', 'manifest.conf'), 'utf8')}`);
  return conf;
}

describe('knocktail check-config', () => {
  it('explains each door and exits 0 for a usable config', async () => {
    const result = await runCli(['check-config', '-c', manifestConfig()]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /door \[S1\]/);
    assert.match(result.stdout, /TCP port 7000 \(SYN set, ACK clear\)/);
    assert.match(result.stdout, /UDP port 2222/);
    assert.match(result.stdout, /manifest\.conf: OK/);
  });

  it('accepts the config as a positional argument too', async () => {
    const result = await runCli(['check-config', manifestConfig()]);
    assert.equal(result.code, 0, result.stderr);
  });

  it('fails with file:line for an unknown log format', async () => {
    const dir = tempDir();
    const conf = join(dir, 'k.conf');
    writeFileSync(conf, '[options]\n  LogFormat = nosuchformat\n[d]\n  sequence = 7000\n');
    const result = await runCli(['check-config', '-c', conf]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /k\.conf:2: unknown log format "nosuchformat"/);
    assert.match(result.stderr, /fix: use one of: .*iptables/);
  });

  it('fails with file:line for a broken logformat block', async () => {
    const dir = tempDir();
    const conf = join(dir, 'k.conf');
    writeFileSync(conf, '<logformat mine>\n  required = kernel: (unclosed\n  ipclient = SRC=(\\S+)\n  ipserver = DST=(\\S+)\n  protocol = PROTO=(\\w+)\n  port = DPT=(\\d+)\n</logformat>\n[options]\n  LogFormat = mine\n[d]\n  sequence = 7000\n');
    const result = await runCli(['check-config', '-c', conf]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /k\.conf:2: logformat mine: required is not a valid regex/);
  });

  it('refuses a forgeable log with the reason and the way out', async () => {
    const dir = tempDir();
    const conf = join(dir, 'k.conf');
    const syslog = join(dir, 'syslog');
    writeFileSync(syslog, '');
    writeFileSync(conf, `[options]\n  FirewallLog = ${syslog}\n  StateDir = ${dir}/state\n[d]\n  sequence = 7000\n`);
    const refused = await runCli(['check-config', '-c', conf]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /k\.conf:2: refusing to follow .*\/syslog: any local user can write lines there/);
    assert.match(refused.stderr, /AllowForgeableLog = yes/);
    writeFileSync(conf, `[options]\n  FirewallLog = ${syslog}\n  StateDir = ${dir}/state\n  AllowForgeableLog = yes\n[d]\n  sequence = 7000\n`);
    assert.equal((await runCli(['check-config', '-c', conf])).code, 0);
  });
});
