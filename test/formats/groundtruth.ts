/**
 * The ground truth of fixtures/real/, written out from MANIFEST.md's phase tables (what was sent, packet by
 * packet) and groundtruth.tsv (when each step ran). Format tests compare what a format reads from the real
 * log lines with this, so a format that misses, invents, duplicates or misreads a knock fails.
 */
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG, type KnockHit, type Protocol } from '../../src/hit.js';
import { STEP_TIMES } from '../steps.js';

/** What a log line must say about one packet. */
export interface Packet {
  step: string;
  /** The log prefix of the rule that logged it. */
  prefix: string;
  src: string;
  dst: string;
  proto: Protocol;
  dport: number;
  /** TCP flag bits; 0 for UDP. */
  flags: number;
  iface: string;
}

interface Endpoints {
  src: string;
  dst: string;
  iface: string;
}

const V4: Endpoints = { src: '10.66.0.2', dst: '10.66.0.1', iface: 'vfx0' };
const V6: Endpoints = { src: 'fd66::2', dst: 'fd66::1', iface: 'vfx0' };
const LO4: Endpoints = { src: '10.66.0.1', dst: '10.66.0.1', iface: 'lo' };
const LO6: Endpoints = { src: 'fd66::1', dst: 'fd66::1', iface: 'lo' };

const FLAG_LETTERS: Record<string, number> = { F: TCP_FIN, S: TCP_SYN, R: TCP_RST, P: TCP_PSH, A: TCP_ACK, U: TCP_URG };

/** hping3's letters (`SA` = SYN+ACK, `-` = none); knock's TCP packets are plain SYNs. */
function flagBits(letters: string): number {
  return letters === '-' ? 0 : [...letters].reduce((bits, letter) => bits | FLAG_LETTERS[letter]!, 0);
}

/** `7000 8000/udp 9000:FPU` (TCP SYN unless a protocol or flags are given) as packets of one step. */
function step(id: string, ends: Endpoints, packets: string, prefix: string): Packet[] {
  return packets.split(' ').map((text) => {
    const [, port, udp, flags] = /^(\d+)(\/udp)?(?::([A-Z-]+))?$/.exec(text)!;
    const proto: Protocol = udp ? 'udp' : 'tcp';
    return { step: id, prefix, ...ends, proto, dport: Number(port), flags: proto === 'udp' ? 0 : flagBits(flags ?? 'S') };
  });
}

/** One hping3 or raw6tcp.py packet to each of 7000, 8000, 9000 (steps X.7000, X.8000, X.9000). */
function perPort(id: string, ends: Endpoints, flags: string, prefix: string): Packet[] {
  return [7000, 8000, 9000].flatMap((port) => step(`${id}.${port}`, ends, `${port}:${flags}`, prefix));
}

const S1 = '7000 8000 9000';
const S2 = '7000/udp 8000/udp 9000/udp';
const S3 = '2222/udp 3333 4444/udp';
const REVERSED = '9000 8000 7000';

/** Phase A (IPv4, iptables LOG, prefixes "KNOCK " and "FW-IN "); A23 was ICMP, not a TCP/UDP packet. */
export const PHASE_A: Packet[] = [
  ...step('A01', V4, S1, 'KNOCK'),
  ...step('A02', V4, S2, 'KNOCK'),
  ...step('A03', V4, S3, 'KNOCK'),
  ...step('A04', V4, S1, 'KNOCK'),
  ...step('A05', V4, REVERSED, 'KNOCK'),
  ...step('A06', V4, '7000 9000 8000', 'KNOCK'),
  ...step('A07', V4, '7000 8000', 'KNOCK'),
  ...step('A08', V4, '7000 5555 8000 9000', 'KNOCK'),
  ...step('A09', V4, '2222 3333 4444/udp', 'KNOCK'),
  ...step('A10', V4, '2222/udp 3333/udp 4444/udp', 'KNOCK'),
  ...step('A11', V4, '7000 7000 8000 9000', 'KNOCK'),
  ...perPort('A12', V4, 'F', 'KNOCK'),
  ...perPort('A13', V4, 'A', 'KNOCK'),
  ...perPort('A14', V4, 'SA', 'KNOCK'),
  ...perPort('A15', V4, 'R', 'KNOCK'),
  ...perPort('A16', V4, 'P', 'KNOCK'),
  ...perPort('A17', V4, 'U', 'KNOCK'),
  ...perPort('A18', V4, 'FPU', 'KNOCK'),
  ...perPort('A19', V4, '-', 'KNOCK'),
  ...perPort('A20', V4, 'S', 'KNOCK'),
  ...step('A21', V4, '22 80', 'FW-IN'),
  ...step('A22', V4, '53/udp', 'FW-IN'),
  ...step('A24', V4, '5555 6666/udp 7001', 'KNOCK'),
  ...step('A25', V4, S1, 'KNOCK'),
];

/** Phase B (IPv6, ip6tables LOG). */
export const PHASE_B: Packet[] = [
  ...step('B01', V6, S1, 'KNOCK'),
  ...step('B02', V6, S2, 'KNOCK'),
  ...step('B03', V6, S3, 'KNOCK'),
  ...step('B04', V6, REVERSED, 'KNOCK'),
  ...step('B05', V6, '22', 'FW-IN'),
  ...step('B06', V6, '7000 5555 8000 9000', 'KNOCK'),
  ...perPort('B07', V6, 'F', 'KNOCK'),
  ...perPort('B08', V6, 'A', 'KNOCK'),
  ...perPort('B09', V6, 'SA', 'KNOCK'),
  ...perPort('B10', V6, 'R', 'KNOCK'),
  ...step('B11', V6, S1, 'KNOCK'),
];

/** Phase C (loopback inside the server: source = destination). */
export const PHASE_C4: Packet[] = [...step('C01', LO4, S1, 'KNOCK'), ...step('C02', LO4, S2, 'KNOCK'), ...step('C04', LO4, REVERSED, 'KNOCK')];
export const PHASE_C6: Packet[] = step('C03', LO6, S1, 'KNOCK');

/** Phase D (nftables `log prefix "knock "`; a second rule logs each of these packets again as "knock-all "). */
export const PHASE_D: Packet[] = [
  ...step('D01', V4, S1, 'knock'),
  ...step('D02', V4, S2, 'knock'),
  ...step('D03', V4, S3, 'knock'),
  ...step('D04', V4, REVERSED, 'knock'),
  ...perPort('D05', V4, 'F', 'knock'),
  ...perPort('D06', V4, 'SA', 'knock'),
  ...step('D07', V4, '22', 'fw-in'),
  ...step('D08', V6, S1, 'knock'),
  ...step('D09', V6, S2, 'knock'),
  ...step('D10', V4, '7000', 'knock'),
  ...step('D11', V4, S1, 'knock'),
];

/** Phase E (NFLOG → ulogd2 LOGEMU), one file per address family. */
export const PHASE_E4: Packet[] = [
  ...step('E01', V4, S1, 'KNOCK'),
  ...step('E02', V4, S2, 'KNOCK'),
  ...step('E03', V4, S3, 'KNOCK'),
  ...step('E04', V4, REVERSED, 'KNOCK'),
  ...perPort('E05', V4, 'F', 'KNOCK'),
  ...step('E06', V4, '22', 'FW-IN'),
  ...step('E10', V4, S1, 'KNOCK'),
];
export const PHASE_E6: Packet[] = [...step('E07', V6, S1, 'KNOCK'), ...step('E08', V6, S2, 'KNOCK'), ...step('E09', V6, '22', 'FW-IN')];

/**
 * Phase F as ufw logged it: its rate limit let through F01–F03, only the first packet of F04 (9000), no FIN of F05,
 * the IPv6 F06/F07, and only the first packet of F08 (7000). ufw-knocks.pcap has everything that was sent.
 */
export const PHASE_F_LOGGED: Packet[] = [
  ...step('F01', V4, S1, '[UFW BLOCK]'),
  ...step('F02', V4, S2, '[UFW BLOCK]'),
  ...step('F03', V4, S3, '[UFW BLOCK]'),
  ...step('F04', V4, '9000', '[UFW BLOCK]'),
  ...step('F06', V6, S1, '[UFW BLOCK]'),
  ...step('F07', V6, S2, '[UFW BLOCK]'),
  ...step('F08', V4, '7000', '[UFW BLOCK]'),
];

/** The one real kernel line of phase G (the others are forgeries from 6.6.6.6). */
export const PHASE_G_REAL: Packet[] = step('G07', V4, '7000', 'KNOCK');

/** The kernel ring buffer during phases A–C in time order (dmesg, kmsg and journalctl -k show all of them). */
export const RING_ABC: Packet[] = [...PHASE_A, ...PHASE_B, ...PHASE_C4.slice(0, 6), ...PHASE_C6, ...PHASE_C4.slice(6)];

/** The printk clock's zero: printk 446.351538 s was the packet captured at 04:16:16.716852Z (README, "Boot-time mapping"). */
export const FIXTURE_BOOT_TIME = Date.parse('2026-11-21T04:16:16.716Z') + 0.852 - 446_351.538;

/** The fields of a hit the ground truth speaks about. */
export function observed(hit: KnockHit): Omit<Packet, 'step' | 'prefix'> {
  return { src: hit.src, dst: hit.dst, proto: hit.proto, dport: hit.dport, flags: hit.flags ?? -1, iface: hit.iface ?? '' };
}

export function described(packet: Packet): Omit<Packet, 'step' | 'prefix'> {
  const { step: _step, prefix: _prefix, ...rest } = packet;
  return rest;
}

/**
 * Hits whose time lies outside their step's run (widened by `early`/`late` ms: whole-second stamps are cut down
 * to the second, dmesg --time-format iso is 0.365 s early, rsyslog and journald stamp a few ms late).
 */
export function mistimed(hits: readonly KnockHit[], packets: readonly Packet[], early = 1000, late = 500): string[] {
  const problems: string[] = [];
  hits.forEach((hit, index) => {
    const packet = packets[index];
    const window = packet && STEP_TIMES.get(packet.step);
    if (!window) return;
    if (hit.time < window.start - early || hit.time > window.end + late) {
      problems.push(`${packet.step} ${packet.dport}/${packet.proto}: ${new Date(hit.time).toISOString()} is outside ${new Date(window.start).toISOString()}..${new Date(window.end).toISOString()}`);
    }
  });
  return problems;
}
