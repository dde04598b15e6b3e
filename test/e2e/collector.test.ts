/**
 * A syslog collector end to end, with real parts only (README, "Many firewalls, one knocktail"): two router
 * namespaces, each with its own LOG rule and its own rsyslog forwarding its kernel's LOG lines over TCP, router 1
 * over TLS with certificates made here (rsyslog's gtls driver, both sides authenticated by name), to a collector
 * rsyslog in a third namespace that writes remote/%FROMHOST-IP%/kern.log. knocktail follows
 * remote/{firewall}/kern.log; its doors' commands act on the router that saw the knock, through a lookup script
 * that picks the router's namespace from %FIREWALL% (as a real setup would pick an ssh host). The real knock client
 * knocks from a fourth namespace, from one address on both routers.
 *
 * The kernel log is one for all namespaces (nf_log_all_netns): each router's rsyslog reads it through imkmsg (its
 * own reader of /dev/kmsg) and forwards only the lines of its router's LOG prefix, as if each had a kernel of its own.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requestStatus } from '../../src/daemon/control.js';
import { type Daemon, fileLines, ip, type Link } from '../inputs/pcap-lab.js';
import { FirewallLab, liveSkip } from './firewall-lab.js';
import { sh } from '../helpers.js';

/** rsyslog's TLS driver (Debian: rsyslog-gnutls). */
const GTLS = '/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so';
const skip = liveSkip(['rsyslogd', 'openssl', 'iptables'], true) || (existsSync(GTLS) ? false : 'needs rsyslog-gnutls (installed by .ci/run)');

/** Router 1 and the knocker (its client namespace); router 2 and the collector (its client namespace). */
const north = new FirewallLab('kca', 242);
const south = new FirewallLab('kcb', 244);

interface Network {
  knocker: string;
  router1: string;
  router2: string;
  collector: string;
  /** The knocker's one address, on both routers. */
  source: string;
  /** Where the knocker reaches each router. */
  router1Ip: string;
  router2Ip: string;
  /** Each router's address as the collector sees it: the {firewall} of its file. */
  router1Sender: string;
  router2Sender: string;
  collectorForRouter1: string;
  collectorForRouter2: string;
}

/** knocker ─ router 1 ─ collector ─ router 2 ─ knocker: four veth pairs, one knocking address routed over both. */
function buildNetwork(): Network {
  north.setUp({ kernelLog: true });
  south.setUp({ kernelLog: false });
  const knocker = north.lab.clientNs;
  const router1 = north.lab.serverNs;
  const router2 = south.lab.serverNs;
  const collector = south.lab.clientNs;
  const toRouter1: Link = north.link;
  const toRouter2 = north.lab.addLink({ serverNs: router2, clientNs: knocker });
  const router2Collector: Link = south.link;
  const router1Collector = south.lab.addLink({ serverNs: router1, clientNs: collector });
  // 10.242-245.x are the four links; the knocking address lies outside them all.
  const source = `10.246.${toRouter1.net4.split('.')[2]}.1`;
  ip('-n', knocker, 'addr', 'add', `${source}/32`, 'dev', 'lo');
  for (const link of [toRouter1, toRouter2]) {
    ip('-n', knocker, 'route', 'replace', `${link.net4}.0/24`, 'dev', link.client, 'src', source);
    ip('-n', link.serverNs, 'route', 'add', `${source}/32`, 'dev', link.server);
  }
  return {
    knocker,
    router1,
    router2,
    collector,
    source,
    router1Ip: toRouter1.serverIp,
    router2Ip: toRouter2.serverIp,
    router1Sender: router1Collector.serverIp,
    router2Sender: router2Collector.serverIp,
    collectorForRouter1: router1Collector.clientIp,
    collectorForRouter2: router2Collector.clientIp,
  };
}

/** A CA and, for each name, a certificate `NAME.test` signed by it (for client and server use), in `dir`. */
function certificates(dir: string, names: string[]): void {
  const openssl = (...args: string[]) => sh('openssl', args);
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'ca-key.pem'), '-out', join(dir, 'ca.pem'), '-days', '2', '-subj', '/CN=knocktail test CA');
  for (const name of names) {
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=DNS:${name}.test\nextendedKeyUsage=serverAuth,clientAuth\n`);
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, `${name}-key.pem`), '-out', join(dir, `${name}.csr`), '-subj', `/CN=${name}.test`);
    openssl('x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca-key.pem'), '-CAcreateserial', '-out', join(dir, `${name}.pem`), '-days', '2', '-extfile', join(dir, `${name}.ext`));
  }
}

/** rsyslog's global() parameters for TLS as `name`. */
function tls(dir: string, name: string): string {
  return `defaultNetstreamDriverCAFile="${join(dir, 'ca.pem')}" defaultNetstreamDriverCertFile="${join(dir, `${name}.pem`)}" defaultNetstreamDriverKeyFile="${join(dir, `${name}-key.pem`)}"`;
}

const PLAIN_PORT = 10514;
const TLS_PORT = 6514;

describe('a syslog collector: two routers, rsyslog over TCP and TLS, knocktail on remote/{firewall}/kern.log', { skip }, () => {
  let net: Network;
  const dir = south.dir;
  const remote = join(dir, 'remote');
  const state = join(dir, 'state');
  const conf = join(dir, 'knocktail.conf');
  let knocktail: Daemon | undefined;
  const fileOf = (sender: string) => join(remote, sender, 'kern.log');

  before(() => {
    net = buildNetwork();
    certificates(dir, ['collector', 'router1']);
    for (const [router, prefix] of [[net.router1, north.prefix], [net.router2, south.prefix]] as const) {
      sh('ip', ['netns', 'exec', router, 'iptables', '-A', 'INPUT', '-p', 'tcp', '--syn', '-m', 'multiport', '--dports', '7001:8003', '-j', 'LOG', '--log-prefix', `${prefix} `]);
    }
    // The collector: plain TCP for router 2, TLS for router 1 (only a peer with router1.test's certificate);
    // one file per sender address, kernel messages only.
    south.rsyslog('collector', {
      ns: net.collector,
      global: tls(dir, 'collector'),
      lines: [
        'module(load="imtcp")',
        `template(name="perFirewall" type="string" string="${remote}/%FROMHOST-IP%/kern.log")`,
        'ruleset(name="firewalls") {',
        '  if $syslogfacility-text == "kern" then action(type="omfile" dynaFile="perFirewall" template="RSYSLOG_FileFormat")',
        '}',
        `input(type="imtcp" port="${PLAIN_PORT}" ruleset="firewalls")`,
        `input(type="imtcp" port="${TLS_PORT}" ruleset="firewalls" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/name" permittedPeer=["router1.test"])`,
      ],
    });
    // Each router forwards its own LOG lines, with sub-second stamps (RSYSLOG_ForwardFormat).
    south.rsyslog('router1', {
      ns: net.router1,
      global: tls(dir, 'router1'),
      lines: [
        'module(load="imkmsg")',
        `if $msg contains "${north.prefix} " then action(type="omfwd" target="${net.collectorForRouter1}" port="${TLS_PORT}" protocol="tcp" template="RSYSLOG_ForwardFormat"`,
        '  StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="collector.test")',
      ],
    });
    south.rsyslog('router2', {
      ns: net.router2,
      lines: [
        'module(load="imkmsg")',
        `if $msg contains "${south.prefix} " then action(type="omfwd" target="${net.collectorForRouter2}" port="${PLAIN_PORT}" protocol="tcp" template="RSYSLOG_ForwardFormat")`,
      ],
    });
    // The lookup a real collector would do for ssh: which router is this sender address?
    const firewalls = join(dir, 'firewalls');
    writeFileSync(firewalls, `${net.router1Sender} ${net.router1}\n${net.router2Sender} ${net.router2}\n`);
    const onRouter = join(dir, 'on-router');
    writeFileSync(onRouter, [
      '#!/bin/sh',
      '# on-router FIREWALL COMMAND...: runs COMMAND on the router the collector knows as FIREWALL.',
      `ns=$(awk -v fw="$1" '$1 == fw { print $2 }' ${firewalls})`,
      '[ -n "$ns" ] || { echo "no router known as $1" >&2; exit 1; }',
      'shift',
      'exec ip netns exec "$ns" "$@"',
      '',
    ].join('\n'));
    chmodSync(onRouter, 0o755);
    const door = (name: string, sequence: string, scope: string) => [
      `[${name}]`,
      `  sequence = ${sequence}`,
      '  seq_timeout = 60',
      `  knock_scope = ${scope}`,
      `  start_command = ${onRouter} %FIREWALL% iptables -I INPUT -s %IP% -p tcp --dport 22 -m comment --comment ${name} -j ACCEPT && echo "${name} %IP% $KNOCK_FIREWALL" >> ${north.commands}`,
    ];
    writeFileSync(conf, [
      '[options]',
      `  FirewallLog = ${join(remote, '{firewall}', 'kern.log')}`,
      `  StateDir = ${state}`,
      `  LogFile = ${join(dir, 'knocktail.log')}`,
      '  MaxKnockAge = 120',
      ...door('oneRouter', '7001,7002,7003', 'firewall'),
      ...door('anyRouter', '8001,8002,8003', 'any'),
      '',
    ].join('\n'));
  });

  after(async () => {
    await south.tearDown();
    await north.tearDown();
  });

  /** Knocks `port` on a router and waits until the collector has written the line (order across routers is kept). */
  async function knockVia(router: 'router1' | 'router2', port: number): Promise<void> {
    const [target, sender] = router === 'router1' ? [net.router1Ip, net.router1Sender] : [net.router2Ip, net.router2Sender];
    const file = fileOf(sender);
    const logged = (): number => (existsSync(file) ? readFileSync(file, 'utf8').split(`DPT=${port} `).length - 1 : 0);
    const before = logged();
    north.knock(target, String(port));
    for (let tries = 0; logged() === before; tries++) {
      if (tries === 200) throw new Error(`the knock on ${router} port ${port} never reached ${file}: ${knocktail?.output ?? ''}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Waits until knocktail has handled `packets` knock packets since it started. */
  async function handled(packets: number): Promise<void> {
    for (let tries = 0; ; tries++) {
      const status = await requestStatus(state).catch(() => null);
      if (status !== null && status.counters.hits >= packets) return;
      if (tries === 200) throw new Error(`knocktail handled ${status?.counters.hits} of ${packets} packets: ${knocktail?.output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** The rules the doors added on a router, as `door source`. */
  function rules(router: string): string[] {
    return sh('ip', ['netns', 'exec', router, 'iptables', '-S', 'INPUT'])
      .split('\n')
      .flatMap((line) => {
        const found = /-s (\S+)\/32 .*--comment (\w+) -j ACCEPT/.exec(line);
        return found === null ? [] : [`${found[2]} ${found[1]}`];
      })
      .sort();
  }

  it('opens on the router that saw the knocks; split knocks open nothing under Knock_Scope = firewall and open under any; a restart loses nothing', async () => {
    knocktail = await north.daemon(conf);

    // Through router 1 (TLS): the door opens on router 1, router 2 stays closed.
    for (const port of [7001, 7002, 7003]) await knockVia('router1', port);
    await waitForCommands(1);
    assert.deepEqual(rules(net.router1), [`oneRouter ${net.source}`]);
    assert.deepEqual(rules(net.router2), []);
    assert.ok(existsSync(fileOf(net.router1Sender)), 'the collector named the file by the transport address of the TLS sender');

    // Split over both routers: nothing under Knock_Scope = firewall.
    await knockVia('router1', 7001);
    await knockVia('router2', 7002);
    await knockVia('router2', 7003);
    await handled(6);
    assert.deepEqual(fileLines(north.commands), [`oneRouter ${net.source} ${net.router1Sender}`]);
    assert.deepEqual(rules(net.router2), []);

    // Split over both under Knock_Scope = any: opens on the router of the last knock (router 2).
    await knockVia('router1', 8001);
    await knockVia('router1', 8002);
    await knockVia('router2', 8003);
    await waitForCommands(2);
    assert.deepEqual(rules(net.router2), [`anyRouter ${net.source}`]);
    assert.deepEqual(rules(net.router1), [`oneRouter ${net.source}`]);

    // knocktail stopped: what the routers log meanwhile is read when it is back.
    assert.deepEqual((await north.stopped(knocktail)).length, 2);
    for (const port of [7001, 7002, 7003]) await knockVia('router2', port);
    knocktail = await north.daemon(conf);
    await waitForCommands(3);
    assert.deepEqual(rules(net.router2), [`anyRouter ${net.source}`, `oneRouter ${net.source}`]);
    assert.deepEqual(fileLines(north.commands), [
      `oneRouter ${net.source} ${net.router1Sender}`,
      `anyRouter ${net.source} ${net.router2Sender}`,
      `oneRouter ${net.source} ${net.router2Sender}`,
    ]);

    const status = await requestStatus(state);
    const files = (status.inputs[0] as unknown as { files: Array<{ firewall: string; path: string; lagBytes: number }> }).files;
    assert.deepEqual(files.map((file) => [file.firewall, file.path, file.lagBytes]).sort(), [
      [net.router1Sender, fileOf(net.router1Sender), 0],
      [net.router2Sender, fileOf(net.router2Sender), 0],
    ].sort());
    assert.equal((await north.stopped(knocktail)).length, 3);
  });

  /** Waits until `count` start commands have written their line. */
  async function waitForCommands(count: number): Promise<void> {
    for (let tries = 0; fileLines(north.commands).length < count; tries++) {
      if (tries === 200) throw new Error(`${fileLines(north.commands).length} of ${count} commands ran: ${knocktail?.output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
});
