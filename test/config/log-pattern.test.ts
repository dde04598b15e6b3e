/**
 * FirewallLog patterns (src/config/log-pattern.ts) and the config directives of a collector: which paths a pattern
 * matches and what their {firewall} part is, which it refuses to follow (rotated, compressed, hidden), the syntax
 * errors a config reports, Knock_Scope, MaxFollowedFiles, and %FIREWALL% without any firewall to name.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalFirewall } from '../../src/address.js';
import { isLogPattern, LogPattern, namesFirewalls, PatternError } from '../../src/config/log-pattern.js';
import { explainConfig } from '../../src/config/explain.js';
import { door, doorProblem, parse, problem } from './support.js';

describe('LogPattern', () => {
  const perHost = new LogPattern('/var/log/remote/{firewall}/kern.log');

  it('splits off the leading directory and names the firewall by its segment', () => {
    assert.equal(perHost.base, '/var/log/remote');
    assert.equal(perHost.hasFirewall, true);
    assert.deepEqual(perHost.literals, [null, 'kern.log']);
    assert.equal(perHost.match('/var/log/remote/192.0.2.1/kern.log'), '192.0.2.1');
    assert.equal(perHost.match('/var/log/remote/edge-1.example.net/kern.log'), 'edge-1.example.net');
    assert.equal(perHost.match('/var/log/remote/2001:db8::1/kern.log'), '2001:db8::1');
  });

  it('matches whole segments only, never a hidden name, another depth or another base', () => {
    for (const path of [
      '/var/log/remote/192.0.2.1/kern.log.tmp',
      '/var/log/remote/192.0.2.1/x/kern.log',
      '/var/log/remote/kern.log',
      '/var/log/remote/.hidden/kern.log',
      '/var/log/remotes/192.0.2.1/kern.log',
      '/var/log/192.0.2.1/kern.log',
    ]) {
      assert.equal(perHost.match(path), null, path);
    }
  });

  it('takes * and ? within one segment, and {firewall} with literal text around it', () => {
    const glob = new LogPattern('/srv/logs/*/fw-??.log');
    assert.equal(glob.base, '/srv/logs');
    assert.equal(glob.hasFirewall, false);
    assert.equal(glob.match('/srv/logs/site-a/fw-01.log'), '');
    assert.equal(glob.match('/srv/logs/site-a/fw-1.log'), null);
    assert.equal(glob.match('/srv/logs/site-a/fw-01.logx'), null);
    const named = new LogPattern('/var/log/remote/fw-{firewall}.log');
    assert.equal(named.base, '/var/log/remote');
    assert.equal(named.match('/var/log/remote/fw-10.0.0.1.log'), '10.0.0.1');
    assert.equal(named.match('/var/log/remote/10.0.0.1.log'), null);
  });

  it('never matches a rotated or compressed copy of a file it names (the follower reads those)', () => {
    const byName = new LogPattern('/var/log/remote/{firewall}.log');
    assert.equal(byName.match('/var/log/remote/10.0.0.1.log'), '10.0.0.1');
    for (const rotated of ['10.0.0.1.log.1', '10.0.0.1.log.2.gz', '10.0.0.1.log-20261121', '10.0.0.1-20261121.log', '10.0.0.1.log.gz']) {
      assert.equal(byName.match(`/var/log/remote/${rotated}`), null, rotated);
    }
    const any = new LogPattern('/var/log/remote/*/*');
    assert.equal(any.match('/var/log/remote/a/kern.log'), '');
    assert.equal(any.match('/var/log/remote/a/kern.log.1'), null);
    assert.equal(any.match('/var/log/remote/a/kern.log-2026112104'), null);
    assert.equal(any.match('/var/log/remote/a/kern.log.3.xz'), null);
  });

  it('refuses what it cannot follow unambiguously', () => {
    const refusals: Array<[string, RegExp]> = [
      ['/var/log/remote/{firewall}/{firewall}.log', /more than once/],
      ['/var/log/**/kern.log', /\*\* is not supported/],
      ['/var/log/remote/{host}/kern.log', /the only placeholder is \{firewall\}/],
      ['/var/log/remote/{Firewall}/kern.log', /the only placeholder is \{firewall\}/],
      ['/var/log/remote/{firewall}*/kern.log', /shares its path segment/],
      ['var/log/{firewall}/kern.log', /not an absolute path/],
    ];
    for (const [text, message] of refusals) assert.throws(() => new LogPattern(text), (error: unknown) => error instanceof PatternError && message.test(error.message), text);
  });

  it('tells patterns from plain paths', () => {
    assert.equal(isLogPattern('/var/log/kern.log'), false);
    assert.equal(isLogPattern('/var/log/remote/{firewall}/kern.log'), true);
    assert.equal(isLogPattern('/var/log/remote/*/kern.log'), true);
  });
});

describe('canonicalFirewall: only an address or a host name reaches %FIREWALL%', () => {
  it('gives addresses and host names their canonical text', () => {
    assert.equal(canonicalFirewall('192.0.2.1'), '192.0.2.1');
    assert.equal(canonicalFirewall('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
    assert.equal(canonicalFirewall('Edge-1.Example.NET.'), 'edge-1.example.net');
    assert.equal(canonicalFirewall('router'), 'router');
  });

  it('refuses everything else', () => {
    for (const text of ['', '-oProxyCommand=x', 'a;b', '$(id)', 'a b', 'x..y', '-router', 'router-', '010.0.0.1', '1.2.3', '256.1.1.1', 'a_b', `${'a'.repeat(64)}.example`, 'ro\nuter']) {
      assert.equal(canonicalFirewall(text), null, JSON.stringify(text));
    }
  });
});

describe('config: a collector', () => {
  it('FirewallLog takes patterns (relative ones from the config directory) and reports a bad one at its line', () => {
    const config = parse('[options]\nFirewallLog = remote/{firewall}/kern.log, /var/log/kern.log\n');
    assert.deepEqual(config.options.firewallLogs, ['/etc/knocktail/remote/{firewall}/kern.log', '/var/log/kern.log']);
    assert.equal(namesFirewalls(config.options), true);
    const bad = problem('[options]\nFirewallLog = /var/log/{host}/kern.log\n');
    assert.equal(bad.at.line, 2);
    assert.match(bad.message, /^FirewallLog: .*the only placeholder is \{firewall\}/);
    assert.match(bad.hint!, /\{firewall\}\/kern.log/);
  });

  it('MaxFollowedFiles: a whole number from 1', () => {
    assert.equal(parse('[options]\nMaxFollowedFiles = 250\n').options.maxFollowedFiles, 250);
    assert.match(problem('[options]\nMaxFollowedFiles = 0\n').message, /^MaxFollowedFiles: expected a whole number of files from 1/);
  });

  it('Knock_Scope: firewall (the default) or any', () => {
    assert.equal(door('sequence = 1').knockScope, 'firewall');
    assert.equal(door('sequence = 1\nknock_scope = ANY').knockScope, 'any');
    assert.match(doorProblem('Knock_Scope = everywhere').message, /^Knock_Scope: expected firewall or any, got "everywhere"/);
  });

  it('%FIREWALL% needs a FirewallLog that names firewalls; Knock_Scope without one is a warning', () => {
    const collector = '[options]\nFirewallLog = /var/log/remote/{firewall}/kern.log\n';
    const doorText = '[d]\nsequence = 1\nknock_scope = any\ncommand = ssh root@%FIREWALL% true\n';
    assert.deepEqual(parse(collector + doorText).warnings, []);
    const refused = problem(`[options]\nFirewallLog = /var/log/remote/*/kern.log\n${doorText}`);
    assert.equal(refused.at.line, 3);
    assert.match(refused.message, /door \[d\] uses %FIREWALL%, but no FirewallLog names firewalls/);
    assert.match(problem(`[options]\nMode = pcap\n${collector.slice(10)}${doorText}`).message, /uses %FIREWALL%/);
    const plain = parse('[d]\nsequence = 1\nknock_scope = any\n');
    assert.equal(plain.warnings.length, 1);
    assert.equal(plain.warnings[0]!.at.line, 3);
    assert.match(plain.warnings[0]!.message, /Knock_Scope of door \[d\] changes nothing/);
  });

  it('check-config explains the scope and the bound', () => {
    const text = explainConfig(parse('[options]\nFirewallLog = /var/log/remote/{firewall}/kern.log\nMaxFollowedFiles = 50\n[a]\nsequence = 1\n[b]\nsequence = 2\nknock_scope = any\n'));
    assert.match(text, /at most 50 files followed per pattern/);
    assert.match(text, /door \[a\][^[]*count only when one firewall logged them all \(Knock_Scope = firewall\)/);
    assert.match(text, /door \[b\][^[]*may pass through different firewalls; commands act on the firewall of the last one \(Knock_Scope = any\)/);
  });
});
