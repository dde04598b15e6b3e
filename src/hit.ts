/**
 * The one event type every input produces: a packet that may be a knock.
 * Everything downstream of the inputs (matcher, actions, logging) sees only this.
 */

export type Protocol = 'tcp' | 'udp';

/** TCP flag bits, as in the TCP header's flag byte. */
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

/** Flag names in knockd's order (FIN SYN RST PSH ACK URG), then the two knockd lacks. */
export const TCP_FLAG_NAMES: ReadonlyArray<readonly [name: string, bit: number]> = [
  ['FIN', TCP_FIN],
  ['SYN', TCP_SYN],
  ['RST', TCP_RST],
  ['PSH', TCP_PSH],
  ['ACK', TCP_ACK],
  ['URG', TCP_URG],
  ['ECE', TCP_ECE],
  ['CWR', TCP_CWR],
];

const FLAG_BIT_BY_NAME = new Map<string, number>(TCP_FLAG_NAMES);

export interface KnockHit {
  /**
   * Event time in ms since the Unix epoch, from the log line or the packet header (a whole-second log stamp
   * read within its second is refined with the arrival time).
   */
  time: number;
  /** Source address, canonical text (IPv4 dotted quad, IPv6 RFC 5952). */
  src: string;
  /** Destination address, canonical text. */
  dst: string;
  proto: Protocol;
  dport: number;
  /** Source port, or null when the input cannot tell. */
  sport: number | null;
  /** TCP flag bits (0 for UDP), or null when the input cannot tell. */
  flags: number | null;
  /** Id of the input that saw it (a log path, `journal`, `pcap:eth0`, …). */
  input: string;
  /** Interface the packet arrived on, or null when unknown. */
  iface: string | null;
  /**
   * The firewall that logged it, canonical (address.ts canonicalFirewall): the `{firewall}` part of the followed
   * file's path on a syslog collector. Absent for this host's own logs and captures.
   */
  firewall?: string;
}

/** Turns the kernel's space-separated flag words (`ACK SYN`, `URG PSH FIN`, ``) into bits; null on an unknown word. */
export function parseFlagWords(text: string): number | null {
  let bits = 0;
  let start = 0;
  const end = text.length;
  while (start < end) {
    while (start < end && text.charCodeAt(start) === 32) start++;
    if (start >= end) break;
    let stop = start;
    while (stop < end && text.charCodeAt(stop) !== 32) stop++;
    const bit = FLAG_BIT_BY_NAME.get(text.slice(start, stop));
    if (bit === undefined) return null;
    bits |= bit;
    start = stop;
  }
  return bits;
}

/** `SYN,ACK`-style text of a flag mask, in header order. */
export function formatFlags(bits: number): string {
  const names: string[] = [];
  for (const [name, bit] of TCP_FLAG_NAMES) if (bits & bit) names.push(name);
  return names.join(',');
}
