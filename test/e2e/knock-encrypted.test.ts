/**
 * `knocktail knock` for an encrypted door, on the wire: the client knocks from a client namespace, tcpdump
 * captures what reaches the server side of the veth pair, and the project's own capture reader and KnockDecoder
 * (the daemon's parts) decode the knocks in the order they arrived. The message must decode to the requested port
 * and duration, for the requested address. Behind a real NAT (SNAT in the client namespace towards a public
 * address), the client warns, the message bound to its private address does not authenticate, and --ip with the
 * public address fixes it.
 *
 * Knock counts per message come from the table in docs/encrypted-knocks.md (spans of 2^10 ports: 21 knocks
 * without an address, 25 naming an IPv4 address).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeFileSync } from 'node:fs';
import { loadConfig } from '../../src/config/parse.js';
import { TCP_ACK, TCP_SYN, type KnockHit } from '../../src/hit.js';
import { PcapFileInput } from '../../src/inputs/pcap-file.js';
import { encryptedDoorSpec, KnockDecoder, type KnockOutcome } from '../../src/knocks/decoder.js';
import { MemoryUsedKnocks } from '../../src/knocks/used.js';
import { cliPath, needs, tempDir } from '../helpers.js';
import { ip, Lab, type Link, type Run, sleep } from '../inputs/pcap-lab.js';
import { writeSecretFile } from '../knocks/support.js';

const lab = new Lab('kek', 246);
const skip = needs({ root: true, tools: ['ip', 'tcpdump', 'iptables'] });
const TIMEOUT = { timeout: 120_000 };

/** Stand-ins for public addresses (documentation ranges): the host across the NAT, the NAT's address, another client. */
const PUBLIC_HOST = '203.0.113.77';
const PUBLIC_HOST6 = '2001:db8::77';
const NAT_ADDRESS = '198.51.100.7';
const LAPTOP = '192.0.2.50';

/** `knocktail knock ARGS` in the client namespace. */
const knocktail = (args: string[]): Promise<Run> => lab.inClient(process.execPath, [cliPath, 'knock', ...args]);

describe('knocktail knock: an encrypted door\'s message on the wire', { skip }, () => {
  const dir = tempDir('knocktail-knock-wire-');
  let link: Link;
  let captures = 0;

  /** A client's copy of an encrypted door. */
  function door(name: string, span: string, extra = ''): string {
    const conf = join(dir, `${name}.conf`);
    writeFileSync(conf, `[${name}]\n\tKnock_Key = ${writeSecretFile(dir, undefined, `${name}.key`)}\n\tPort_Span = ${span}\n\tAllowed_Ports = 22, 2222\n${extra}`);
    return conf;
  }

  /**
   * Runs the client with `args` while tcpdump captures, on the server side, the first `count` packets that come in
   * for ports `low`-`high`; returns the run and the captured knocks (TCP SYNs and UDP datagrams), in arrival order.
   */
  async function onWire(args: string[], count: number, low: number, high: number): Promise<{ run: Run; knocks: KnockHit[] }> {
    const pcap = join(dir, `capture-${++captures}.pcap`);
    const tcpdump = await lab.capture(link.server, pcap, `dst portrange ${low}-${high}`, ['-c', String(count)]);
    try {
      const run = await knocktail(args);
      assert.equal(run.code, 0, `knocktail knock ${args.join(' ')}: ${run.stderr}`);
      const done = await Promise.race([tcpdump.exited, sleep(20_000).then(() => null)]);
      assert.ok(done !== null, `tcpdump did not capture ${count} knocks:\n${tcpdump.output}`);
      const knocks: KnockHit[] = [];
      for await (const batch of new PcapFileInput(pcap).batches()) knocks.push(...batch.filter((hit) => hit.proto === 'udp' || ((hit.flags ?? 0) & (TCP_SYN | TCP_ACK)) === TCP_SYN));
      assert.equal(knocks.length, count, 'every captured packet is a knock');
      return { run, knocks };
    } finally {
      await tcpdump.stop();
    }
  }

  /** What the door in `conf` (Trust_Knock_IP as `trust`) makes of `knocks`: the opens, and the reasons of the refusals. */
  function decode(conf: string, knocks: readonly KnockHit[], trust?: boolean): { opens: unknown[]; reasons: string[] } {
    const spec = encryptedDoorSpec(loadConfig(conf).doors[0]!);
    const decoder = new KnockDecoder({ ...spec, trustKnockIp: trust ?? spec.trustKnockIp }, new MemoryUsedKnocks(), 10);
    const outcomes: KnockOutcome[] = knocks.flatMap((hit) => decoder.knock(hit.src, decoder.valueOf(hit.proto, hit.dport), hit.time));
    outcomes.push(...decoder.expire(knocks.at(-1)!.time + 3_600_000));
    return {
      opens: outcomes.flatMap((outcome) => (outcome.type === 'open' ? [{ openFor: outcome.openFor, source: outcome.source, request: outcome.request }] : [])),
      reasons: outcomes.flatMap((outcome) => (outcome.type === 'refused' ? [outcome.reason] : [])),
    };
  }

  /** `hitting PROTO ADDRESS:PORT` lines of -v, as PROTO:PORT. */
  const printed = (stdout: string): string[] => [...stdout.matchAll(/^hitting (tcp|udp) \S+:(\d+)$/gm)].map((match) => `${match[1]}:${match[2]}`);
  const arrived = (knocks: readonly KnockHit[]): string[] => knocks.map((hit) => `${hit.proto}:${hit.dport}`);

  before(() => {
    lab.setUp(1);
    link = lab.links[0]!;
    // The public host lies behind the server's end of the link; the client's packets to it leave through a NAT.
    for (const address of [PUBLIC_HOST, PUBLIC_HOST6]) {
      ip('-n', lab.clientNs, 'route', 'add', address, 'dev', link.client);
      lab.routeToServer(link, address);
    }
    ip('netns', 'exec', lab.clientNs, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-d', PUBLIC_HOST, '-j', 'SNAT', '--to-source', NAT_ADDRESS);
  });

  after(() => lab.tearDown());

  test('TCP knocks over IPv4 arrive in the order sent and decode to the request, for the address they came from', TIMEOUT, async () => {
    const conf = door('ssh', '40000-41023');
    const { run, knocks } = await onWire(['-c', conf, '-v', link.serverIp, 'ssh', '--port', '22', '--for', '300'], 21, 40000, 41023);
    assert.equal(run.stderr, '', 'no warning: both addresses are private');
    assert.equal(run.stdout.split('\n')[0], `door [ssh]: asking to open port 22 for 300 s for ${link.clientIp} (the address the knocks come from), 21 knocks`);
    assert.deepEqual(arrived(knocks), printed(run.stdout));
    assert.ok(knocks.every((hit) => hit.src === link.clientIp && hit.dst === link.serverIp && hit.proto === 'tcp'));
    assert.deepEqual(decode(conf, knocks), { opens: [{ openFor: link.clientIp, source: link.clientIp, request: { port: 22, duration: 300, address: null } }], reasons: [] });
  });

  test('TCP and UDP ranges over IPv6, -d 0: decode to the request, for the IPv6 address they came from', TIMEOUT, async () => {
    const conf = door('v6', '42000-42511, 42000-42511:udp');
    const { run, knocks } = await onWire(['-c', conf, '-v', '-d', '0', link.serverIp6, 'v6', '--port', '2222', '--for', '3600'], 21, 42000, 42511);
    assert.equal(run.stderr, '');
    assert.deepEqual(arrived(knocks), printed(run.stdout));
    assert.ok(knocks.every((hit) => hit.src === link.clientIp6));
    assert.deepEqual(new Set(knocks.map((hit) => hit.proto)).size, 2, 'a message of 21 knocks on this span uses both halves (a 1 in 2^20 chance of a false failure)');
    assert.deepEqual(decode(conf, knocks), { opens: [{ openFor: link.clientIp6, source: link.clientIp6, request: { port: 2222, duration: 3600, address: null } }], reasons: [] });
  });

  test('behind NAT: a warning with the reason and the fix; bound to the private address, the message does not authenticate', TIMEOUT, async () => {
    const conf = door('nat', '43000-44023:udp');
    const { run, knocks } = await onWire(['-c', conf, PUBLIC_HOST, 'nat', '--port', '22', '--for', '60'], 21, 43000, 44023);
    assert.equal(
      run.stderr,
      `knocktail knock: warning: this host knocks ${PUBLIC_HOST} from ${link.clientIp}, a private address: a NAT router on the way will give the knocks ` +
        `another source address, and a message bound to ${link.clientIp} will not open the door (the server logs "auth"). Give your public address ` +
        'with --ip ADDRESS; the door then opens if the knocks arrive from that address, or, with Trust_Knock_IP = yes on the door, wherever they arrive from\n',
    );
    assert.ok(knocks.every((hit) => hit.src === NAT_ADDRESS), 'the NAT replaced the source address');
    const decoded = decode(conf, knocks);
    assert.deepEqual(decoded.opens, []);
    assert.ok(decoded.reasons.includes('auth'), decoded.reasons.join());
    // The same over IPv6 from a unique local address (the knocks are not captured here).
    const v6 = await knocktail(['-c', conf, PUBLIC_HOST6, 'nat', '--port', '22', '--for', '60']);
    assert.equal(v6.code, 0, v6.stderr);
    assert.match(v6.stderr, new RegExp(`^knocktail knock: warning: this host knocks ${PUBLIC_HOST6} from ${link.clientIp6}, a private address: `));
  });

  test('behind NAT with --ip: the public address opens; another address opens only with Trust_Knock_IP', TIMEOUT, async () => {
    const conf = door('natip', '45000-46023:udp');
    const request = (address: string) => ({ port: 22, duration: 60, address });
    const own = await onWire(['-c', conf, PUBLIC_HOST, 'natip', '--port', '22', '--for', '60', '--ip', NAT_ADDRESS], 25, 45000, 46023);
    assert.equal(own.run.stderr, '', 'no warning: the message names the address');
    assert.deepEqual(decode(conf, own.knocks, false), { opens: [{ openFor: NAT_ADDRESS, source: NAT_ADDRESS, request: request(NAT_ADDRESS) }], reasons: [] });

    const laptop = await onWire(['-c', conf, PUBLIC_HOST, 'natip', '--port', '22', '--for', '60', '--ip', LAPTOP], 25, 45000, 46023);
    assert.deepEqual(decode(conf, laptop.knocks, true), { opens: [{ openFor: LAPTOP, source: NAT_ADDRESS, request: request(LAPTOP) }], reasons: [] });
    const untrusted = decode(conf, laptop.knocks, false);
    assert.deepEqual(untrusted.opens, []);
    assert.ok(untrusted.reasons.includes('address'), untrusted.reasons.join());
  });

  test('no route to the host: the source address cannot be known, exit 1 and nothing sent; with --ip, the knock is refused', TIMEOUT, async () => {
    const conf = door('lost', '47000-47255:udp');
    const run = await knocktail(['-c', conf, '-v', '192.0.2.1', 'lost', '--port', '22', '--for', '60']);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.equal(run.stderr, 'knocktail knock: cannot tell which address this host knocks 192.0.2.1 from: ENETUNREACH (give the address to open for with --ip)\n');
    // With --ip there is nothing to find out: the first knock is refused by the system, as for other knocks.
    const named = await knocktail(['-c', conf, '192.0.2.1', 'lost', '--port', '22', '--for', '60', '--ip', LAPTOP]);
    assert.equal(named.code, 1);
    assert.match(named.stderr, /^knocktail knock: the UDP knock on 192\.0\.2\.1 port 47\d{3} was not sent: .*\(ENETUNREACH\)\n$/);
  });
});
