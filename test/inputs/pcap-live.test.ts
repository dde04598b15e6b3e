/**
 * Live capture against real traffic: two network namespaces of our own joined by two veth pairs, the real
 * `knock` client and raw packets from python3. The capture runs in the server namespace through
 * pcap-live-driver.js (Node cannot enter a namespace itself); this file sends traffic and reads its events.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TCP_ACK, TCP_FIN, TCP_SYN } from '../../src/hit.js';
import { needs, repoRoot, tempDir, isAlive } from '../helpers.js';
import { ip, Lab, type Link, type RawEvent, SENDER } from './pcap-lab.js';
import { Driver, DRIVER } from './pcap-live-client.js';
import type { DriverConfig, DriverDoor } from './pcap-live-driver.js';


const lab = new Lab('ktp', 231);
let IF1 = '';
let IF2 = '';
let SERVER1 = '';
let CLIENT1 = '';
let EXTRA1 = '';
let SERVER2 = '';
let CLIENT2 = '';
let SERVER6 = '';
let CLIENT6 = '';

function setUpNetwork(): void {
  lab.setUp(2);
  const [link1, link2] = lab.links as [Link, Link];
  ({ server: IF1, serverIp: SERVER1, clientIp: CLIENT1, serverIp6: SERVER6, clientIp6: CLIENT6 } = link1);
  ({ server: IF2, serverIp: SERVER2, clientIp: CLIENT2 } = link2);
  EXTRA1 = `${link1.net4}.9`;
}

/** The stream of the filter-switch test plays in the background, so it is spawned here rather than through lab.send. */
function rawSpec(packets: RawEvent[], interval = 0): string {
  return JSON.stringify({ interval, packets });
}

const doorSyn: DriverDoor = { sequence: '7000,8000,9000', set: TCP_SYN, clear: TCP_ACK };
const doorUdp: DriverDoor = { sequence: '7100:udp,7200:udp' };
const MARKER_PORT = 9000;
/** The knock client's source ports come from the kernel's ephemeral range (32768 and up); raw packets use ports below it. */
const EPHEMERAL_PORTS = 32768;

/** A raw SYN to the door's last port with a recognisable source port: once it arrives, everything sent before it has too. */
async function marker(driver: Driver, sport: number, dst = SERVER1, src = CLIENT1, dport = MARKER_PORT): Promise<void> {
  await lab.send([{ src, dst, proto: 'tcp', sport, dport, flags: 'S' }]);
  await driver.hit((h) => h.sport === sport, `marker ${sport}`);
}


const skipLive = needs({ root: true, tools: ['ip', 'knock', 'python3'] });

describe('pcap live input', { skip: skipLive }, () => {
  const drivers: Driver[] = [];
  const driver = (config: DriverConfig): Driver => {
    const started = Driver.inNamespace(lab.serverNs, config);
    drivers.push(started);
    return started;
  };

  before(setUpNetwork);
  after(() => {
    for (const d of drivers) d.kill();
    lab.tearDown();
  });

  test('knock client over TCP, UDP and IPv6, raw packets with chosen flags, a second interface: exactly the hits the filter lets through', async () => {
    const d = driver({ interfaces: [IF1, IF2], doors: [doorSyn, doorUdp] });
    const ready = await d.until((e) => e.event === 'ready' || e.event === 'start-failed', 'ready');
    assert.equal(ready.event, 'ready', JSON.stringify(ready));
    const sendingFrom = Date.now();
    lab.knock('-v', SERVER1, '7000', '8000', '9000');
    lab.knock('-v', '-u', SERVER1, '7100', '7200');
    lab.knock('-v', '-6', SERVER6, '7000', '8000', '9000');
    await lab.send([
      { src: CLIENT1, dst: SERVER1, proto: 'tcp', sport: 11001, dport: 7000, flags: 'F' }, // flags: not SYN → filtered
      { src: CLIENT1, dst: SERVER1, proto: 'tcp', sport: 11002, dport: 8000, flags: 'SA' }, // ACK must be clear → filtered
      { src: CLIENT1, dst: SERVER1, proto: 'tcp', sport: 11003, dport: 9000, flags: 'S' },
      { src: CLIENT1, dst: SERVER1, proto: 'tcp', sport: 11004, dport: 7001, flags: 'S' }, // no door port → filtered
      { src: CLIENT1, dst: SERVER1, proto: 'udp', sport: 11005, dport: 7000 }, // UDP 7000 is in no door → filtered
      // IPv6: BPF checks ports only; flags reach the matcher. Behind an extension header BPF checks nothing more.
      { src: CLIENT6, dst: SERVER6, proto: 'tcp', sport: 11006, dport: 7000, flags: 'F' },
      { src: CLIENT6, dst: SERVER6, proto: 'tcp', sport: 11007, dport: 8000, flags: 'A', ext: true },
      { src: CLIENT6, dst: SERVER6, proto: 'udp', sport: 11008, dport: 7200, ext: true },
    ]);
    lab.knock('-v', SERVER2, '7000');
    await marker(d, 11999, SERVER2, CLIENT2);
    const seen = d.hits().map((h) => ({ src: h.src, dst: h.dst, proto: h.proto, dport: h.dport, flags: h.flags, iface: h.iface, input: h.input, ...(h.sport < EPHEMERAL_PORTS ? { sport: h.sport } : {}) }));
    const input = `pcap:${IF1},${IF2}`;
    const v4 = (dport: number, proto = 'tcp', flags = TCP_SYN) => ({ src: CLIENT1, dst: SERVER1, proto, dport, flags, iface: IF1, input });
    const v6 = (dport: number, proto = 'tcp', flags = TCP_SYN) => ({ src: CLIENT6, dst: SERVER6, proto, dport, flags, iface: IF1, input });
    assert.deepEqual(seen, [
      v4(7000),
      v4(8000),
      v4(9000),
      v4(7100, 'udp', 0),
      v4(7200, 'udp', 0),
      v6(7000),
      v6(8000),
      v6(9000),
      { ...v4(9000), sport: 11003 },
      { ...v6(7000, 'tcp', TCP_FIN), sport: 11006 },
      { ...v6(8000, 'tcp', TCP_ACK), sport: 11007 },
      { ...v6(7200, 'udp', 0), sport: 11008 },
      { src: CLIENT2, dst: SERVER2, proto: 'tcp', dport: 7000, flags: TCP_SYN, iface: IF2, input },
      { src: CLIENT2, dst: SERVER2, proto: 'tcp', dport: 9000, flags: TCP_SYN, iface: IF2, input, sport: 11999 },
    ]);
    // Packet time is the capture time: after the first packet was sent, before the hits were read.
    const readBy = Date.now();
    for (const hit of d.hits()) assert.ok(hit.time >= sendingFrom && hit.time <= readBy, `hit at ${hit.time}, sent from ${sendingFrom}, read by ${readBy}`);
    // Statistics come from the capture process about once a second.
    let status = await d.status();
    for (let i = 0; i < 50 && (status.interfaces as Array<{ received: number }>)[0].received === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = await d.status();
    }
    const [first, second] = status.interfaces as Array<{ name: string; linkType: string; received: number; dropped: number; ifdropped: number; error: string | null }>;
    assert.deepEqual([first.name, first.linkType, first.error, second.name, second.error], [IF1, 'EN10MB (Ethernet)', null, IF2, null]);
    assert.ok(first.received >= 12, `received ${first.received}`);
    assert.equal(first.dropped, 0);
    assert.equal(status.hits, 14);
    assert.match(String(status.filter), new RegExp(`dst host \\(${SERVER1.replace(/\./g, '\\.')} or ${SERVER2.replace(/\./g, '\\.')}\\)`));
    assert.equal((await d.stop()).code, 0);
  });

  test('a rolling or encrypted door\'s ranges: the filter takes every port of them as a portrange, and nothing beside', async () => {
    const rangeDoor: DriverDoor = { sequence: '', ranges: '40000-40999,50000-50255:udp', set: TCP_SYN, clear: TCP_ACK };
    const d = driver({ interfaces: [IF1], doors: [rangeDoor, doorSyn] });
    assert.equal((await d.until((e) => e.event === 'ready' || e.event === 'start-failed', 'ready')).event, 'ready');
    const raw = (sport: number, proto: 'tcp' | 'udp', dport: number, flags = 'S'): RawEvent => ({ src: CLIENT1, dst: SERVER1, proto, sport, dport, ...(proto === 'tcp' ? { flags } : {}) });
    await lab.send([
      raw(13001, 'tcp', 40000),
      raw(13002, 'tcp', 40999),
      raw(13003, 'tcp', 40517),
      raw(13004, 'tcp', 39999), // below the range
      raw(13005, 'tcp', 41000), // above it
      raw(13006, 'tcp', 40500, 'SA'), // the door's TCPFlags: ACK must be clear
      raw(13007, 'udp', 40500), // the TCP range, over UDP
      raw(13008, 'udp', 50000),
      raw(13009, 'udp', 50255),
      raw(13010, 'tcp', 50100), // the UDP range, over TCP
      raw(13011, 'udp', 50256),
    ]);
    await marker(d, 13999);
    assert.deepEqual(
      d.hits().map((h) => `${h.sport} ${h.proto}/${h.dport}`),
      ['13001 tcp/40000', '13002 tcp/40999', '13003 tcp/40517', '13008 udp/50000', '13009 udp/50255', '13999 tcp/9000'],
    );
    // The range shares its flag rule with the fixed door: one clause for both.
    assert.match(String((await d.status()).filter), /\(tcp dst port \(7000 or 8000 or 9000\) or tcp dst portrange 40000-40999\) and tcp\[tcpflags\] & 0x12 == 0x02\) or udp dst portrange 50000-50255\)/);
    assert.equal((await d.stop()).code, 0);
  });

  test('an address added after start counts: the hook reports it and the filter follows', async () => {
    const d = driver({ interfaces: [IF1], doors: [doorSyn], addressRefreshMs: 200 });
    await d.until((e) => e.event === 'ready', 'ready');
    lab.routeToServer(lab.links[0]!, EXTRA1);
    await lab.send([{ src: CLIENT1, dst: EXTRA1, proto: 'tcp', sport: 12001, dport: 7000, flags: 'S' }]);
    await marker(d, 12002);
    assert.equal(d.hits().filter((h) => h.dst === EXTRA1).length, 0, 'not a local address yet: filtered out');
    ip('-n', lab.serverNs, 'addr', 'add', `${EXTRA1}/24`, 'dev', IF1);
    const changed = await d.until((e) => e.event === 'addresses' && e.local!.v4.includes(EXTRA1), 'address change');
    assert.deepEqual(changed.local!.v4, [SERVER1, EXTRA1].sort());
    let status = await d.status();
    for (let i = 0; i < 100 && !String(status.filter).includes(EXTRA1); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = await d.status();
    }
    assert.match(String(status.filter), new RegExp(EXTRA1.replace(/\./g, '\\.')));
    await lab.send([{ src: CLIENT1, dst: EXTRA1, proto: 'tcp', sport: 12003, dport: 7000, flags: 'S' }]);
    const hit = await d.hit((h) => h.sport === 12003, 'knock on the new address');
    assert.equal(hit.hit!.dst, EXTRA1);
    assert.equal((await d.stop()).code, 0);
    ip('-n', lab.serverNs, 'addr', 'del', `${EXTRA1}/24`, 'dev', IF1);
  });

  test('refreshFilter switches filters while packets stream in: none lost, none repeated, order kept', async () => {
    const d = driver({ interfaces: [IF1], doors: [{ sequence: '7000' }] });
    await d.until((e) => e.event === 'ready', 'ready');
    // A stream (one SYN per ms, source ports counting up) that runs until both switches are over.
    const stream: RawEvent = { src: CLIENT1, dst: SERVER1, proto: 'tcp', sport: 20000, dport: 7000, flags: 'S', count: 10000 };
    const sender = spawn('ip', ['netns', 'exec', lab.clientNs, 'python3', SENDER, rawSpec([stream], 0.001)], { stdio: 'inherit' });
    const sent = new Promise((resolve) => sender.once('exit', resolve));
    await d.hit((h) => h.sport === 20000, 'first streamed packet');
    d.command(`refilter ${JSON.stringify([{ sequence: '7000,7300' }])}`);
    await d.until((e) => e.event === 'refiltered', 'first switch');
    d.command(`refilter ${JSON.stringify([{ sequence: '7000' }, { sequence: '7300:udp' }])}`);
    await d.until((e) => e.event === 'refiltered' && (e.status!.restarts as number) === 2, 'second switch');
    const streamed = (): number[] => d.hits().filter((h) => h.sport >= 20000 && h.sport < 30000).map((h) => h.sport);
    const afterSwitches = Math.max(...streamed()) + 200;
    await d.hit((h) => h.sport === afterSwitches, 'the stream going on after the switches');
    sender.kill();
    await sent;
    await marker(d, 19999, SERVER1, CLIENT1, 7000);
    const ports = streamed();
    assert.deepEqual(ports, Array.from({ length: ports.length }, (_, i) => 20000 + i), 'each packet once, in order, none missing');
    const status = await d.status();
    assert.equal(status.restarts, 2);
    await lab.send([
      { src: CLIENT1, dst: SERVER1, proto: 'tcp', sport: 19001, dport: 7300, flags: 'S' }, // TCP 7300 left with the second switch
      { src: CLIENT1, dst: SERVER1, proto: 'udp', sport: 19002, dport: 7300 },
    ]);
    await marker(d, 19998, SERVER1, CLIENT1, 7000);
    assert.deepEqual(d.hits().filter((h) => h.dport === 7300).map((h) => [h.proto, h.sport]), [['udp', 19002]]);
    assert.equal((await d.stop()).code, 0);
    // Every packet was a knock, and a stream of one per ms cannot miss the overlaps: the kernel's counts (one per
    // capture process) hold the hits and the packets both processes received, and perhaps a few more that the old
    // process received but had not read when it stopped (the new one delivered those).
    const final = d.events.find((e) => e.event === 'stopped')!.status!;
    const received = (final.interfaces as Array<{ received: number }>)[0]!.received;
    const [hits, twice] = [final.hits as number, final.receivedTwice as number];
    assert.ok(twice > 0, JSON.stringify(final));
    assert.ok(received >= hits + twice, JSON.stringify(final));
  });

  test('`any`: Linux cooked capture on every interface, interface unknown per packet', async () => {
    const d = driver({ interfaces: ['any'], doors: [doorSyn] });
    const ready = await d.until((e) => e.event === 'ready', 'ready');
    assert.equal((ready.status!.interfaces as Array<{ linkType: string }>)[0].linkType, 'LINUX_SLL (Linux cooked v1)');
    assert.ok((ready.status!.localAddresses as { v4: string[] }).v4.includes(SERVER2), 'addresses of all interfaces');
    lab.knock('-v', SERVER1, '7000');
    lab.knock('-v', SERVER2, '8000');
    await marker(d, 13001);
    assert.deepEqual(
      d.hits().map((h) => [h.dst, h.dport, h.iface, h.input]),
      [
        [SERVER1, 7000, null, 'pcap:any'],
        [SERVER2, 8000, null, 'pcap:any'],
        [SERVER1, 9000, null, 'pcap:any'],
      ],
    );
    assert.equal((await d.stop()).code, 0);
  });

  test('an interface that disappears is reported, and captured again once it is back', async () => {
    const d = driver({ interfaces: [IF1, IF2], doors: [doorSyn], addressRefreshMs: 200 });
    await d.until((e) => e.event === 'ready', 'ready');
    ip('-n', lab.serverNs, 'link', 'del', IF2);
    const lost = await d.until((e) => e.event === 'error', 'error for the deleted interface');
    assert.match(lost.message!, new RegExp(`capture on ${IF2} stopped`));
    lab.knock('-v', SERVER1, '7000');
    await marker(d, 14001);
    lab.createLink(lab.links[1]!);
    // Capture may restart before the interface is up, when its address is not yet listed: wait for the filter
    // in force to include it too.
    const back = (status: { [key: string]: unknown }): boolean =>
      (status.interfaces as Array<{ error: string | null }>)[1].error === null && new RegExp(`[ (]${SERVER2.replaceAll('.', '\\.')}[ )]`).test(String(status.filter));
    let status = await d.status();
    for (let i = 0; i < 100 && !back(status); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = await d.status();
    }
    assert.ok(back(status), JSON.stringify(status));
    await marker(d, 14002, SERVER2, CLIENT2);
    assert.deepEqual(
      d.hits().map((h) => [h.iface, h.dport]),
      [
        [IF1, 7000],
        [IF1, 9000],
        [IF2, 9000],
      ],
    );
    assert.equal((await d.stop()).code, 0);
  });

  test('stop() with no traffic at all: the process exits on its own', async () => {
    const d = driver({ interfaces: [IF1, 'lo'], doors: [doorSyn] });
    await d.until((e) => e.event === 'ready', 'ready');
    const exit = await d.stop();
    assert.deepEqual(exit, { code: 0, signal: null });
  });

  test('a daemon killed with SIGKILL leaves no capture process behind', async () => {
    const d = driver({ interfaces: [IF1], doors: [doorSyn] });
    const ready = await d.until((e) => e.event === 'ready', 'ready');
    const pid = ready.status!.capturePid as number;
    assert.ok(Number.isInteger(pid) && isAlive(pid), 'the capture process runs');
    d.kill();
    await d.exited;
    // It notices the closed IPC channel and leaves; wait for that, as long as it takes.
    for (let i = 0; i < 200 && isAlive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(isAlive(pid), false, `capture process ${pid} outlived its parent`);
  });

  test('start() rejects with the capture error and its fix for an interface that does not exist', async () => {
    const d = driver({ interfaces: ['ktp-nonexist'], doors: [doorSyn] });
    const failed = await d.until((e) => e.event === 'start-failed', 'start failure');
    assert.match(failed.message!, /^capture on ktp-nonexist failed: .*\n {2}fix: check Interface = /);
    assert.equal((await d.exitedOnItsOwn()).code, 0);
  });
});

describe('pcap live input without the pcap module', () => {
  test('start() rejects with the exact fix, and says that file mode works without it', async () => {
    // A copy of the compiled sources where no node_modules can be found.
    const dir = tempDir();
    cpSync(join(repoRoot, 'dist', 'src'), join(dir, 'dist', 'src'), { recursive: true });
    cpSync(DRIVER, join(dir, 'dist', 'test', 'inputs', 'pcap-live-driver.js'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    const config: DriverConfig = { interfaces: ['lo'], doors: [doorSyn] };
    const d = new Driver(process.execPath, [join(dir, 'dist', 'test', 'inputs', 'pcap-live-driver.js'), '--driver', JSON.stringify(config)], dir);
    const failed = await d.until((e) => e.event === 'start-failed', 'start failure');
    assert.equal(failed.event, 'start-failed');
    assert.match(failed.message!, /needs the optional npm module "pcap", which is missing or failed to build \(Cannot find package 'pcap'/);
    assert.match(failed.message!, /fix: apt-get install libpcap-dev && cd \S+ && npm install --no-save pcap {3}\(building it needs python3, make, g\+\+\)/);
    assert.match(failed.message!, /Reading capture files \(knocktail replay FILE\.pcap\) and following firewall logs \(Mode = file\) work without it/);
    assert.equal((await d.exitedOnItsOwn()).code, 0);
  });
});
