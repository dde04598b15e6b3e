/** Which logs file mode refuses to follow: those any local user can write kernel-looking lines into. */
import assert from 'node:assert/strict';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfigText } from '../../src/config/parse.js';
import { isForgeableLog, uncertainLogWarnings, untrustedLogProblems } from '../../src/inputs/trust.js';
import { tempDir } from '../helpers.js';

describe('isForgeableLog', () => {
  it('names the files syslog(3) writes for every user, rotated generations included', () => {
    for (const path of ['/var/log/syslog', '/var/log/messages', '/var/log/user.log', '/var/log/daemon.log', '/var/log/auth.log', '/var/log/debug',
      '/var/log/ufw.log', '/var/log/mail.log', '/var/log/cron.log', '/var/log/syslog.1', '/var/log/messages.2.gz', '/var/log/syslog-20261121', '/srv/copy/syslog']) {
      assert.equal(isForgeableLog(path), true, path);
    }
  });

  it('leaves kernel-only logs and other files alone', () => {
    for (const path of ['/var/log/kern.log', '/var/log/kern.log.1', '/var/log/ulog/syslogemu.log', '/var/log/firewall.log', '/var/log/syslog.d/kern', '/var/log/messages-old/kern.log']) {
      assert.equal(isForgeableLog(path), false, path);
    }
  });

  it('follows symlinks: a harmless name pointing at syslog is still syslog', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'syslog'), '');
    symlinkSync(join(dir, 'syslog'), join(dir, 'firewall.log'));
    assert.equal(isForgeableLog(join(dir, 'firewall.log')), true);
    writeFileSync(join(dir, 'kern.log'), '');
    symlinkSync(join(dir, 'kern.log'), join(dir, 'syslog-view'));
    assert.equal(isForgeableLog(join(dir, 'syslog-view')), false);
  });
});

describe('untrustedLogProblems', () => {
  const conf = (options: string) => parseConfigText(`[options]\n${options}\n[door]\n  sequence = 7000\n`, '/etc/knocktail.conf');

  it('names each forgeable FirewallLog at the line that set it, with the fix', () => {
    const problems = untrustedLogProblems(conf('  LogFile = /var/log/knocktail.log\n  FirewallLog = /var/log/kern.log, /var/log/syslog, journal, /var/log/messages'));
    assert.deepEqual(problems.map((problem) => [problem.at, /^refusing to follow (\S+): any local user can write lines there/.exec(problem.message)?.[1]]), [
      [{ file: '/etc/knocktail.conf', line: 3 }, '/var/log/syslog'],
      [{ file: '/etc/knocktail.conf', line: 3 }, '/var/log/messages'],
    ]);
    assert.match(problems[0]!.hint!, /follow \/var\/log\/kern\.log \(or FirewallLog = journal\) instead; .*"AllowForgeableLog = yes"/);
  });

  it('accepts kern.log and the journal, and anything once AllowForgeableLog = yes', () => {
    assert.deepEqual(untrustedLogProblems(conf('  FirewallLog = /var/log/kern.log, journal')), []);
    assert.deepEqual(untrustedLogProblems(conf('  FirewallLog = /var/log/syslog\n  AllowForgeableLog = yes')), []);
  });
});

describe('uncertainLogWarnings', () => {
  const conf = (options: string) => parseConfigText(`[options]\n${options}\n[door]\n  sequence = 7000\n`, '/etc/knocktail.conf');

  it('warns about a followed file it cannot place, and only about that one', () => {
    const warnings = uncertainLogWarnings(conf('  FirewallLog = /var/log/kern.log, /var/log/ulog/syslogemu.log, journal, /srv/logs/fw-custom.txt, /var/log/kern.log.1'));
    assert.deepEqual(warnings.map((w) => [w.at.line, w.message]), [
      [2, '/srv/logs/fw-custom.txt: make sure only the kernel (or ulogd) writes this file: anyone who can put a line into it can knock'],
    ]);
    assert.match(warnings[0]!.hint!, /Trust model/);
  });
});
