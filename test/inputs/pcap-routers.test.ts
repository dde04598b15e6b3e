/**
 * Live capture where routers receive knocks: PPPoE session frames on the WAN NIC, a ppp interface, a WireGuard-type
 * interface, and all of them at once, with real libpcap sessions on real interfaces in network namespaces.
 *
 * This kernel has neither PPP (CONFIG_PPP) nor WireGuard (CONFIG_WIREGUARD), so pppd/pppoe-server and
 * `ip link add type wireguard` cannot run here. What a capture depends on is the interface's hardware type
 * (libpcap picks the link type from it) and the frames on the wire, so the tests build exactly those: tun
 * devices of type ARPHRD_PPP (what pppd's ppp0 is; libpcap: cooked capture) and ARPHRD_NONE (what wg0 is;
 * libpcap: raw IP), and PPPoE session frames (RFC 2516) sent with an AF_PACKET socket on a veth pair, as a
 * PPPoE link carries them on its Ethernet NIC (test/inputs/tun-link.py, test/inputs/pcap-send.py).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { TCP_ACK, TCP_SYN } from '../../src/hit.js';
import { needs } from '../helpers.js';
import { Lab, type Link, type RawEvent, type Via } from './pcap-lab.js';
import { Driver, type HitEvent } from './pcap-live-client.js';
import type { DriverConfig, DriverDoor } from './pcap-live-driver.js';

const lab = new Lab('ktr', 233);
let link: Link;
/** The PPP link's address (the router's public address under PPPoE), and a WireGuard-type interface's. */
let ppp = { name: '', v4: '', v6: '' };
let wg = { name: '', v4: '', v6: '' };
let pppoe: Via;

const doorSyn: DriverDoor = { sequence: '7000,8000,9000', set: TCP_SYN, clear: TCP_ACK };
const doorUdp: DriverDoor = { sequence: '7100:udp,7200:udp' };
const KNOCKER = '192.0.2.77';
const KNOCKER6 = '2001:db8:77::7';

const skip = needs({ root: true, tools: ['ip', 'python3'] }) || (existsSync('/dev/net/tun') ? false : 'needs /dev/net/tun (tun devices stand in for ppp and wg interfaces)');

/** A few hits and what they must look like (the source port tells them apart). */
function seen(hits: HitEvent[]): Array<Pick<HitEvent, 'src' | 'dst' | 'proto' | 'sport' | 'dport' | 'flags' | 'iface'>> {
  return hits.map(({ src, dst, proto, sport, dport, flags, iface }) => ({ src, dst, proto, sport, dport, flags, iface })).sort((a, b) => a.sport - b.sport);
}

function syn(src: string, dst: string, sport: number, dport: number, flags = 'S'): RawEvent {
  return { src, dst, proto: 'tcp', sport, dport, flags };
}

describe('live capture on routers', { skip }, () => {
  const drivers: Driver[] = [];
  async function start(config: DriverConfig): Promise<Driver> {
    const driver = Driver.inNamespace(lab.serverNs, config);
    drivers.push(driver);
    const ready = await driver.until((e) => e.event === 'ready' || e.event === 'start-failed', 'ready');
    assert.equal(ready.event, 'ready', JSON.stringify(ready));
    return driver;
  }

  before(async () => {
    lab.setUp(1);
    link = lab.links[0]!;
    const octet = Number(link.net4.split('.')[2]);
    const hex = octet.toString(16);
    ppp = { name: '', v4: `10.234.${octet}.1`, v6: `fdea:0:0:${hex}::1` };
    ppp.name = await lab.addTun('ppp', [`${ppp.v4}/32`, `${ppp.v6}/128`]);
    wg = { name: '', v4: `10.235.${octet}.1`, v6: `fdeb:0:0:${hex}::1` };
    wg.name = await lab.addTun('none', [`${wg.v4}/32`, `${wg.v6}/128`]);
    pppoe = { pppoe: link.client, mac: lab.mac(lab.serverNs, link.server), session: 0x2a };
  });
  after(() => {
    for (const driver of drivers) driver.kill();
    lab.tearDown();
  });

  test('PPPoE on the WAN NIC: knocks to the PPP link\'s address inside PPPoE frames are seen, with the same filter rules', { timeout: 60_000 }, async () => {
    const d = await start({ interfaces: [link.server], doors: [doorSyn, doorUdp] });
    const status = await d.status();
    const local = status.localAddresses as { v4: string[]; v6: string[] };
    // The ppp interface's addresses count as the NIC's: its packets cross the NIC in PPPoE frames.
    assert.ok(local.v4.includes(ppp.v4) && local.v6.includes(ppp.v6), JSON.stringify(local));
    assert.ok(local.v4.includes(link.serverIp), 'the NIC keeps its own addresses');
    const [iface] = status.interfaces as Array<{ linkType: string; filter: string }>;
    assert.equal(iface!.linkType, 'EN10MB (Ethernet)');
    assert.match(iface!.filter, /^\(.*\) or \(pppoes and \(.*\)\)$/);

    await lab.send(
      [
        syn(KNOCKER, ppp.v4, 11001, 7000),
        { src: KNOCKER, dst: ppp.v4, proto: 'udp', sport: 11002, dport: 7100 },
        syn(KNOCKER6, ppp.v6, 11003, 8000),
        syn(KNOCKER, ppp.v4, 11004, 9000, 'SA'), // ACK must be clear: the filter drops it
        syn(KNOCKER, ppp.v4, 11005, 7001), // no door's port
        syn(KNOCKER, '10.236.0.9', 11006, 7000), // not an address of this host
      ],
      lab.clientNs,
      pppoe,
    );
    // An LCP frame (PPP protocol 0xc021) that happens to hold a TCP packet to a door port: not IP, not a knock.
    await lab.send([syn(KNOCKER, ppp.v4, 11007, 7000)], lab.clientNs, { ...(pppoe as object), ppp: 0xc021 } as Via);
    // A plain knock on the same wire last: once it is seen, everything before it has been.
    await lab.send([syn(link.clientIp, link.serverIp, 11999, 9000)]);
    await d.hit((h) => h.sport === 11999, 'the plain marker');
    assert.deepEqual(seen(d.hits()), [
      { src: KNOCKER, dst: ppp.v4, proto: 'tcp', sport: 11001, dport: 7000, flags: TCP_SYN, iface: link.server },
      { src: KNOCKER, dst: ppp.v4, proto: 'udp', sport: 11002, dport: 7100, flags: 0, iface: link.server },
      { src: KNOCKER6, dst: ppp.v6, proto: 'tcp', sport: 11003, dport: 8000, flags: TCP_SYN, iface: link.server },
      { src: link.clientIp, dst: link.serverIp, proto: 'tcp', sport: 11999, dport: 9000, flags: TCP_SYN, iface: link.server },
    ]);
    assert.deepEqual(await d.stop(), { code: 0, signal: null });
  });

  test('a ppp interface (cooked capture), a WireGuard-type one (raw IP) and the NIC at once: each its own session and link type', { timeout: 60_000 }, async () => {
    const d = await start({ interfaces: [link.server, ppp.name, wg.name], doors: [doorSyn, doorUdp] });
    const status = await d.status();
    const sessions = status.interfaces as Array<{ name: string; linkType: string; filter: string; error: string | null }>;
    assert.deepEqual(
      sessions.map(({ name, linkType, error }) => ({ name, linkType, error })),
      [
        { name: link.server, linkType: 'EN10MB (Ethernet)', error: null },
        { name: ppp.name, linkType: 'LINUX_SLL (Linux cooked v1)', error: null },
        { name: wg.name, linkType: 'RAW (raw IP)', error: null },
      ],
    );
    // One filter text for every named interface: its PPPoE part matches nothing where there is no PPPoE.
    for (const session of sessions) assert.match(session.filter, /pppoes/);
    const local = status.localAddresses as { v4: string[]; v6: string[] };
    for (const address of [link.serverIp, ppp.v4, wg.v4]) assert.ok(local.v4.includes(address), address);

    await lab.send([syn(KNOCKER, ppp.v4, 12001, 7000), syn(KNOCKER6, ppp.v6, 12002, 8000), syn(KNOCKER, ppp.v4, 12003, 7001), syn(KNOCKER, ppp.v4, 12901, 9000)], lab.serverNs, { tun: ppp.name });
    await lab.send([{ src: KNOCKER, dst: wg.v4, proto: 'udp', sport: 12004, dport: 7200 }, syn(KNOCKER6, wg.v6, 12005, 7000, 'SA'), syn(KNOCKER6, wg.v6, 12902, 9000)], lab.serverNs, { tun: wg.name });
    await lab.send([syn(KNOCKER, ppp.v4, 12006, 8000), syn(KNOCKER, ppp.v4, 12903, 9000)], lab.clientNs, pppoe);
    for (const marker of [12901, 12902, 12903]) await d.hit((h) => h.sport === marker, `marker ${marker}`);
    assert.deepEqual(seen(d.hits()), [
      { src: KNOCKER, dst: ppp.v4, proto: 'tcp', sport: 12001, dport: 7000, flags: TCP_SYN, iface: ppp.name },
      { src: KNOCKER6, dst: ppp.v6, proto: 'tcp', sport: 12002, dport: 8000, flags: TCP_SYN, iface: ppp.name },
      { src: KNOCKER, dst: wg.v4, proto: 'udp', sport: 12004, dport: 7200, flags: 0, iface: wg.name },
      // IPv6: BPF cannot check flags behind possible extension headers; they reach the matcher.
      { src: KNOCKER6, dst: wg.v6, proto: 'tcp', sport: 12005, dport: 7000, flags: TCP_SYN | TCP_ACK, iface: wg.name },
      { src: KNOCKER, dst: ppp.v4, proto: 'tcp', sport: 12006, dport: 8000, flags: TCP_SYN, iface: link.server },
      { src: KNOCKER, dst: ppp.v4, proto: 'tcp', sport: 12901, dport: 9000, flags: TCP_SYN, iface: ppp.name },
      { src: KNOCKER6, dst: wg.v6, proto: 'tcp', sport: 12902, dport: 9000, flags: TCP_SYN, iface: wg.name },
      { src: KNOCKER, dst: ppp.v4, proto: 'tcp', sport: 12903, dport: 9000, flags: TCP_SYN, iface: link.server },
    ]);
    assert.deepEqual(await d.stop(), { code: 0, signal: null });
  });

  test('`any` gets no PPPoE part: it sees the unwrapped packet on the ppp interface, and would count a knock twice', { timeout: 60_000 }, async () => {
    const d = await start({ interfaces: ['any'], doors: [doorSyn] });
    const [session] = (await d.status()).interfaces as Array<{ linkType: string; filter: string }>;
    assert.equal(session!.linkType, 'LINUX_SLL (Linux cooked v1)');
    assert.doesNotMatch(session!.filter, /pppoes/);
    await lab.send([syn(KNOCKER, ppp.v4, 13001, 7000)], lab.clientNs, pppoe);
    // A plain knock on the same wire after the PPPoE frame, and one on the ppp interface.
    await lab.send([syn(link.clientIp, link.serverIp, 13003, 9000)]);
    await lab.send([syn(KNOCKER, ppp.v4, 13002, 7000)], lab.serverNs, { tun: ppp.name });
    for (const marker of [13002, 13003]) await d.hit((h) => h.sport === marker, `marker ${marker}`);
    assert.deepEqual(seen(d.hits()).map((h) => [h.sport, h.iface]), [[13002, null], [13003, null]]);
    assert.deepEqual(await d.stop(), { code: 0, signal: null });
  });
});
