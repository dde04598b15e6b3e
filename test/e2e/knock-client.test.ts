/**
 * Differential test of the client: knockd 0.8 captures in a server namespace; from a client namespace, knockd's
 * own `knock` and `knocktail knock` knock the same sequences (TCP, UDP, mixed, IPv6, host names, delays, wrong
 * order), one after the other, and knockd must open exactly the same doors for both, while `-v` prints the same
 * lines. Then `knocktail knock -c` knocks doors by name (from the knockd.conf itself, and a rolling door from a
 * client's copy, which knockd checks through fixed doors holding the sequences of the periods around now), and
 * both clients' exit statuses are compared on the same command lines.
 *
 * After each client's run, a flush knock (a port of a door no sequence uses: it fails whatever the run left in
 * progress, over IPv6 and IPv4) and a marker knock (a one-port door) follow; once the marker's command has run,
 * knockd has seen the run. knockd forks its commands, so their lines may come in any order: the expected lines
 * of a run are awaited, not assumed to precede the marker's.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/parse.js';
import { RollingSequences } from '../../src/knocks/rolling.js';
import { cliPath, needs, tempDir } from '../helpers.js';
import { type Daemon, fileLines, Lab, type Link, type Run, until } from '../inputs/pcap-lab.js';
import { rollingDoor, writeSecretFile } from '../knocks/support.js';

const lab = new Lab('kcl', 238);
const skip = needs({ root: true, tools: ['ip', 'knock', 'knockd'] });
const TIMEOUT = { timeout: 240_000 };

const FLUSH_PORT = 64998;
const MARKER_PORT = 64999;
const ROLLING_PERIOD = 60;

// In the client namespace, whose /etc/hosts and resolv.conf are the test's (see `before`).
const knock = (args: string[]): Promise<Run> => lab.inClient('knock', args);
const knocktail = (args: string[]): Promise<Run> => lab.inClient(process.execPath, [cliPath, 'knock', ...args]);

/** One line per command knockd ran: `START door ip`. */
const start = (door: string): string => `\tstart_command = echo "START ${door} %IP%" >> cmds.txt\n`;

interface Scenario {
  title: string;
  args: (link: Link) => string[];
  /** Lines knockd must write for each client's run (door and the source address the client knocked from). */
  expect: (link: Link) => string[] | null;
}

const SCENARIOS: Scenario[] = [
  { title: 'TCP', args: (l) => [l.serverIp, '7101', '7102', '7103'], expect: (l) => [`START tcp ${l.clientIp}`] },
  { title: 'UDP with -u', args: (l) => ['-u', l.serverIp, '7201', '7202', '7203'], expect: (l) => [`START udp ${l.clientIp}`] },
  { title: 'mixed, per port', args: (l) => [l.serverIp, '7301', '7302:udp', '7303'], expect: (l) => [`START mixed ${l.clientIp}`] },
  { title: 'IPv6 literal', args: (l) => [l.serverIp6, '7301', '7302:udp', '7303'], expect: (l) => [`START mixed ${l.clientIp6}`] },
  { title: 'host name, -6', args: () => ['-6', 'knockhost', '7101', '7102', '7103'], expect: (l) => [`START tcp ${l.clientIp6}`] },
  { title: 'host name, -4', args: () => ['-4', 'knockhost', '7301', '7302:udp', '7303'], expect: (l) => [`START mixed ${l.clientIp}`] },
  // Which address comes first is the resolver's choice (RFC 6724 and gai.conf); both clients must make the same.
  { title: 'host name with both families', args: () => ['knockhost', '7101', '7102', '7103'], expect: () => null },
  { title: 'IPv4-only name', args: () => ['knockhost4', '7201:udp', '7202:udp', '7203:udp'], expect: (l) => [`START udp ${l.clientIp}`] },
  { title: 'delay within the timeout', args: (l) => ['-d', '300', l.serverIp, '7301', '7302:udp', '7303'], expect: (l) => [`START mixed ${l.clientIp}`] },
  { title: 'eight steps', args: (l) => [l.serverIp, '7601', '7602:udp', '7603', '7604', '7605:udp', '7606:udp', '7607', '7608'], expect: (l) => [`START long ${l.clientIp}`] },
  { title: 'delay beyond Seq_Timeout', args: (l) => ['-d', '2500', l.serverIp, '7401', '7402'], expect: () => [] },
  { title: 'wrong order', args: (l) => [l.serverIp, '7503', '7502', '7501'], expect: () => [] },
];

const DOORS =
  `[tcp]\n\tsequence = 7101,7102,7103\n${start('tcp')}` +
  `[udp]\n\tsequence = 7201:udp,7202:udp,7203:udp\n${start('udp')}` +
  `[mixed]\n\tsequence = 7301,7302:udp,7303\n\ttcpflags = syn,!ack\n${start('mixed')}` +
  `[slow]\n\tsequence = 7401,7402\n\tseq_timeout = 1\n${start('slow')}` +
  `[order]\n\tsequence = 7501,7502,7503\n${start('order')}` +
  `[long]\n\tsequence = 7601,7602:udp,7603,7604,7605:udp,7606:udp,7607,7608\n${start('long')}` +
  `[flush]\n\tsequence = ${FLUSH_PORT}\n${start('flush')}` +
  `[marker]\n\tsequence = ${MARKER_PORT}\n${start('marker')}`;

describe('knocktail knock against knockd 0.8 and its knock client', { skip }, () => {
  const dir = tempDir('knocktail-client-');
  let link: Link;
  let knockd: Daemon;
  let markers = 0;
  let seen = 0;
  /** The doors knockd checks `knocktail knock -c client.conf … rolling` with: one per period around the test. */
  let rolling: RollingSequences;
  const netnsDir = (): string => join('/etc/netns', lab.clientNs);

  const cmds = (): string[] => fileLines(join(dir, 'cmds.txt'));

  /** Flush and marker knocks (by knockd's client), then the lines knockd wrote since the last call, without theirs. */
  async function settle(expected: string[]): Promise<string[]> {
    await knock([link.serverIp6, String(FLUSH_PORT)]);
    await knock([link.serverIp, String(FLUSH_PORT), String(MARKER_PORT)]);
    markers++;
    const fresh = (): string[] => cmds().slice(seen);
    await until(
      () => cmds().filter((line) => line.startsWith('START marker')).length === markers && expected.every((line) => fresh().includes(line)),
      () => `marker ${markers} and ${JSON.stringify(expected)} in cmds.txt:\n${cmds().join('\n')}\n--- knockd:\n${knockd.output.slice(-3000)}`,
    );
    const lines = fresh();
    seen += lines.length;
    return lines.filter((line) => !/^START (flush|marker) /.test(line)).sort();
  }

  before(async () => {
    lab.setUp(1);
    link = lab.links[0]!;
    // `ip netns exec` puts these over /etc/hosts and /etc/resolv.conf: names resolve without the network, and any
    // other name fails at once (no name server listens on the namespace's loopback).
    mkdirSync(netnsDir(), { recursive: true });
    writeFileSync(join(netnsDir(), 'hosts'), `127.0.0.1 localhost\n${link.serverIp} knockhost knockhost4\n${link.serverIp6} knockhost\n`);
    writeFileSync(join(netnsDir(), 'resolv.conf'), 'nameserver 127.0.0.1\noptions attempts:1 timeout:1\n');

    writeSecretFile(dir, undefined, 'rolling.secret');
    writeFileSync(join(dir, 'client.conf'), rollingDoor('rolling', 'rolling.secret', '45000-45999', ['sequence_length = 4', `sequence_period = ${ROLLING_PERIOD}`]));
    rolling = new RollingSequences('rolling', loadConfig(join(dir, 'client.conf')).doors[0]!.rolling!);
    const now = rolling.periodAt(Date.now());
    let rollingDoors = '';
    for (let period = now; period <= now + 3; period++) {
      rollingDoors += `[roll-${period}]\n\tsequence = ${rolling.sequence(period).map((step) => step.port).join(',')}\n${start(`roll-${period}`)}`;
    }
    writeFileSync(join(dir, 'knockd.conf'), `[options]\n\tLogFile = ${join(dir, 'knockd.log')}\n${DOORS}${rollingDoors}`);
    knockd = lab.spawnInServer('/usr/sbin/knockd', ['-c', join(dir, 'knockd.conf'), '-i', link.server, '-v'], { cwd: dir });
    await knockd.waitForOutput('listening on');
    // Neighbour discovery and ARP settle before the first scenario (a lost first SYN would fail it for one client only).
    await settle([]);
  });

  after(async () => {
    await knockd?.stop(20_000);
    lab.tearDown();
    rmSync(netnsDir(), { recursive: true, force: true });
    try {
      if (readdirSync('/etc/netns').length === 0) rmdirSync('/etc/netns');
    } catch {
      // Another test's namespace files are still there, or it was removed meanwhile.
    }
  });

  test('the same doors open for both clients, and -v prints the same lines', TIMEOUT, async () => {
    const report: string[] = [];
    for (const scenario of SCENARIOS) {
      const args = ['-v', ...scenario.args(link)];
      const expected = scenario.expect(link);
      const theirs = await knock(args);
      const theirLines = await settle(expected ?? []);
      const ours = await knocktail(args);
      const ourLines = await settle(expected ?? theirLines);
      const wanted = expected ?? theirLines;
      if (theirs.code !== 0 || ours.code !== 0 || ours.stdout !== theirs.stdout || JSON.stringify(theirLines) !== JSON.stringify(wanted) || JSON.stringify(ourLines) !== JSON.stringify(wanted)) {
        report.push(
          `${scenario.title}: knock ${args.join(' ')}\n  knock:     exit ${theirs.code}, opened ${JSON.stringify(theirLines)}, printed ${JSON.stringify(theirs.stdout)} ${theirs.stderr}` +
            `\n  knocktail: exit ${ours.code}, opened ${JSON.stringify(ourLines)}, printed ${JSON.stringify(ours.stdout)} ${ours.stderr}\n  expected:  ${JSON.stringify(wanted)}`,
        );
      }
    }
    assert.deepEqual(report, [], `\n${report.join('\n')}`);
  });

  test('-c: a door of the knockd.conf by name, over IPv4 and IPv6; a rolling door from a client copy opens the door of its period', TIMEOUT, async () => {
    const conf = join(dir, 'knockd.conf');
    assert.equal((await knocktail(['-c', conf, link.serverIp, 'mixed'])).code, 0);
    assert.deepEqual(await settle([`START mixed ${link.clientIp}`]), [`START mixed ${link.clientIp}`]);
    assert.equal((await knocktail(['-c', conf, '-6', 'knockhost', 'long'])).code, 0);
    assert.deepEqual(await settle([`START long ${link.clientIp6}`]), [`START long ${link.clientIp6}`]);

    const before = rolling.periodAt(Date.now());
    const run = await knocktail(['-c', join(dir, 'client.conf'), '-v', link.serverIp, 'rolling']);
    const after = rolling.periodAt(Date.now());
    assert.equal(run.code, 0, run.stderr);
    // The period may turn while the client starts: then either period's door is right, but exactly one opens.
    const candidates = [...new Set([before, after])];
    await until(() => candidates.some((p) => cmds().includes(`START roll-${p} ${link.clientIp}`)), () => `START roll-(${candidates.join('|')}) in:\n${cmds().join('\n')}`);
    const opened = await settle([]);
    assert.equal(opened.length, 1, JSON.stringify(opened));
    const period = candidates.find((p) => opened[0] === `START roll-${p} ${link.clientIp}`);
    assert.ok(period !== undefined, `${JSON.stringify(opened)} for periods ${candidates.join(', ')}`);
    assert.equal(run.stdout, rolling.sequence(period).map((step) => `hitting tcp ${link.serverIp}:${step.port}\n`).join(''));
  });

  test('exit statuses: the same as knock\'s, except where knocktail refuses to send nonsense or reports a knock that was not sent', TIMEOUT, async () => {
    const cases: Array<{ args: string[]; knock: number; knocktail: number }> = [
      { args: [], knock: 1, knocktail: 1 },
      { args: ['knockhost'], knock: 1, knocktail: 1 },
      { args: ['-x', 'knockhost', '7000'], knock: 1, knocktail: 1 },
      { args: ['-d', '-5', 'knockhost', '7000'], knock: 1, knocktail: 1 },
      { args: ['no-such-host.invalid', '7000'], knock: 1, knocktail: 1 },
      { args: ['-4', link.serverIp6, '7000'], knock: 1, knocktail: 1 },
      { args: ['-6', link.serverIp, '7000'], knock: 1, knocktail: 1 },
      { args: ['-6', 'knockhost4', '7000'], knock: 1, knocktail: 1 },
      { args: ['-V'], knock: 0, knocktail: 0 },
      { args: ['knockhost', '65010', '65011:udp'], knock: 0, knocktail: 0 },
      // Deliberate differences (README, "The client"): help is not an error; port 0, a port over 65535 (knock
      // sends it modulo 65536) and a service name are refused before anything is sent; a knock the system refused
      // to send (no route) is an error, where knock says nothing and exits 0.
      { args: ['-h'], knock: 1, knocktail: 0 },
      { args: ['knockhost', '0'], knock: 0, knocktail: 1 },
      { args: ['knockhost', '70000'], knock: 0, knocktail: 1 },
      { args: ['knockhost', 'ssh'], knock: 0, knocktail: 1 },
      { args: ['192.0.2.1', '7000'], knock: 0, knocktail: 1 },
    ];
    const report: string[] = [];
    for (const c of cases) {
      const [theirs, ours] = [await knock(c.args), await knocktail(c.args)];
      if (theirs.code !== c.knock || ours.code !== c.knocktail) {
        report.push(`${c.args.join(' ') || '(no arguments)'}: knock ${theirs.code} (want ${c.knock}), knocktail ${ours.code} (want ${c.knocktail}): ${ours.stderr.split('\n')[0]}`);
      }
    }
    assert.deepEqual(report, [], `\n${report.join('\n')}`);
    const unreachable = await knocktail(['192.0.2.1', '7000']);
    assert.match(unreachable.stderr, /the TCP knock on 192\.0\.2\.1 port 7000 was not sent: network is unreachable \(ENETUNREACH\)/);
    const unknown = await knocktail(['no-such-host.invalid', '7000']);
    assert.match(unknown.stderr, /cannot resolve host "no-such-host\.invalid"/);
    // Nothing the cases sent opened a door.
    assert.deepEqual(await settle([]), []);
  });
});
