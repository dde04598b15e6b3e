/**
 * Our own packet parser: link layer → IPv4/IPv6 → TCP/UDP ports and the TCP flag byte.
 *
 * Used for live capture and pcap files instead of `pcap.decode`, which hangs on one crafted TCP option
 * and throws on MPTCP/TFO SYNs. Every read is checked against the captured bytes, nothing throws, TCP
 * options are never looked at, and the only allocations are the two address strings of a TCP/UDP packet.
 * The link type is resolved once (`packetParser`), so the per-packet path is a plain function call.
 */
import { endianness } from 'node:os';
import { ipv4FromBytes, ipv6FromBytes } from '../address.js';
import type { Protocol } from '../hit.js';
import { emptyNflogRecord, type NflogRecord, readNflog } from './nflog.js';

/** Link-layer header types (tcpdump.org/linktypes.html), as stored in pcap files and reported by libpcap. */
export const LINKTYPE_NULL = 0;
export const LINKTYPE_ETHERNET = 1;
/** DLT_RAW as most systems number it live; OpenBSD uses 14. Files store LINKTYPE_RAW (101) instead. */
export const DLT_RAW = 12;
export const DLT_RAW_OPENBSD = 14;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LOOP = 108;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;
export const LINKTYPE_LINUX_SLL2 = 276;
/** Linux netfilter log messages (libpcap's `nflog:GROUP` device): src/packet/nflog.ts. */
export const LINKTYPE_NFLOG = 239;

/** What a TCP/UDP packet says about itself. Filled in place by a PacketParser. */
export interface PacketFields {
  /** Addresses as text: filled by fillAddresses() (packetParser does it unless asked not to). */
  src: string;
  dst: string;
  /** IP version and where the source address starts in the buffer (the destination follows it). */
  family: 4 | 6;
  addressAt: number;
  proto: Protocol;
  sport: number;
  dport: number;
  /** The TCP flag byte (FIN…CWR), 0 for UDP. */
  flags: number;
  /** Interface index carried by a LINUX_SLL2 header, else -1. */
  ifindex: number;
}

/** A result object to reuse across calls (the parser overwrites every field it reports). */
export function emptyPacketFields(): PacketFields {
  return { src: '', dst: '', family: 4, addressAt: 0, proto: 'tcp', sport: 0, dport: 0, flags: 0, ifindex: -1 };
}

/**
 * Parses the frame in `buf[start, end)` (end = start + captured length). Returns true and fills `out` for a
 * TCP or UDP packet; returns false for anything else (ARP, ICMP, fragments after the first, truncated or
 * malformed headers), leaving `out` in an unspecified state.
 */
export type PacketParser = (buf: Uint8Array, start: number, end: number, out: PacketFields) => boolean;

const LINK_TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [LINKTYPE_NULL, 'NULL (BSD loopback)'],
  [LINKTYPE_ETHERNET, 'EN10MB (Ethernet)'],
  [DLT_RAW, 'RAW (raw IP)'],
  [DLT_RAW_OPENBSD, 'RAW (raw IP)'],
  [LINKTYPE_RAW, 'RAW (raw IP)'],
  [LINKTYPE_LOOP, 'LOOP (OpenBSD loopback)'],
  [LINKTYPE_LINUX_SLL, 'LINUX_SLL (Linux cooked v1)'],
  [LINKTYPE_IPV4, 'IPV4 (raw IPv4)'],
  [LINKTYPE_IPV6, 'IPV6 (raw IPv6)'],
  [LINKTYPE_LINUX_SLL2, 'LINUX_SLL2 (Linux cooked v2)'],
  [LINKTYPE_NFLOG, 'NFLOG (Linux netfilter log)'],
  [105, 'IEEE802_11 (Wi-Fi)'],
  [127, 'IEEE802_11_RADIOTAP (Wi-Fi monitor mode)'],
  [9, 'PPP'],
  [50, 'PPP_HDLC'],
]);

/** Human-readable name of a link type, for messages. */
export function linkTypeName(linkType: number): string {
  return LINK_TYPE_NAMES.get(linkType) ?? `link type ${linkType}`;
}

/** Raised once, when a capture's link type is resolved, never per packet. */
export class UnsupportedLinkTypeError extends Error {
  readonly linkType: number;
  constructor(linkType: number) {
    super(
      `${linkTypeName(linkType)} (${linkType}) is not a link type knocktail can parse; supported: Ethernet (1, with 802.1Q/802.1ad tags and PPPoE sessions), ` +
        'Linux cooked capture SLL (113) and SLL2 (276), raw IP (101, 228, 229, 12, 14), BSD loopback (0, 108), NFLOG (239). ' +
        'Capture on an interface of one of these types (on Linux, `any` gives SLL).',
    );
    this.name = 'UnsupportedLinkTypeError';
    this.linkType = linkType;
  }
}

/**
 * The parser for one link type; throws UnsupportedLinkTypeError for any other. With `withAddresses` false the
 * addresses stay bytes until fillAddresses(): a replay skips the text for packets to ports no door uses.
 */
export function packetParser(linkType: number, withAddresses = true): PacketParser {
  const parse = linkParser(linkType);
  if (!withAddresses) return parse;
  return (buf, start, end, out) => {
    if (!parse(buf, start, end, out)) return false;
    fillAddresses(buf, out);
    return true;
  };
}

/** Sets `out.src` and `out.dst` (canonical text) from the packet a parser just read from `buf`. */
export function fillAddresses(buf: Uint8Array, out: PacketFields): void {
  if (out.family === 4) {
    out.src = ipv4FromBytes(buf, out.addressAt);
    out.dst = ipv4FromBytes(buf, out.addressAt + 4);
  } else {
    out.src = ipv6FromBytes(buf, out.addressAt);
    out.dst = ipv6FromBytes(buf, out.addressAt + 16);
  }
}

function linkParser(linkType: number): PacketParser {
  switch (linkType) {
    case LINKTYPE_ETHERNET:
      return parseEthernet;
    case LINKTYPE_LINUX_SLL:
      return parseLinuxSll;
    case LINKTYPE_LINUX_SLL2:
      return parseLinuxSll2;
    case LINKTYPE_RAW:
    case DLT_RAW:
    case DLT_RAW_OPENBSD:
      return parseRawIp;
    case LINKTYPE_IPV4:
      return parseRawIpv4;
    case LINKTYPE_IPV6:
      return parseRawIpv6;
    case LINKTYPE_NULL:
    case LINKTYPE_LOOP:
      return parseBsdLoopback;
    case LINKTYPE_NFLOG:
      return nflogParser(null, false);
    default:
      throw new UnsupportedLinkTypeError(linkType);
  }
}

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_8021Q = 0x8100;
const ETHERTYPE_8021AD = 0x88a8;
/** Pre-standard QinQ outer tag, still sent by some switches. */
const ETHERTYPE_QINQ_LEGACY = 0x9100;
/** PPPoE session stage (RFC 2516): the frames a PPPoE link carries on its Ethernet NIC. */
const ETHERTYPE_PPPOE_SESSION = 0x8864;

const IPPROTO_HOPOPTS = 0;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_ROUTING = 43;
const IPPROTO_FRAGMENT = 44;
const IPPROTO_AH = 51;
const IPPROTO_DSTOPTS = 60;

/** IPv6 extension headers walked before giving up; real packets carry two or three at most. */
const MAX_IPV6_EXTENSION_HEADERS = 8;

/** BSD address-family values for IPv6 in NULL/LOOP headers: Linux, NetBSD/OpenBSD, FreeBSD, macOS. */
const AF_INET = 2;
const AF_INET6_VALUES = new Set([10, 24, 28, 30]);

function parseEthernet(buf: Uint8Array, start: number, end: number, out: PacketFields): boolean {
  if (start + 14 > end) return false;
  out.ifindex = -1;
  return parseEthertype(buf, (buf[start + 12] << 8) | buf[start + 13], start + 14, end, out);
}

function parseLinuxSll(buf: Uint8Array, start: number, end: number, out: PacketFields): boolean {
  if (start + 16 > end) return false;
  out.ifindex = -1;
  return parseEthertype(buf, (buf[start + 14] << 8) | buf[start + 15], start + 16, end, out);
}

function parseLinuxSll2(buf: Uint8Array, start: number, end: number, out: PacketFields): boolean {
  if (start + 20 > end) return false;
  out.ifindex = ((buf[start + 4] << 24) | (buf[start + 5] << 16) | (buf[start + 6] << 8) | buf[start + 7]) >>> 0;
  return parseEthertype(buf, (buf[start] << 8) | buf[start + 1], start + 20, end, out);
}

function parseRawIp(buf: Uint8Array, start: number, end: number, out: PacketFields): boolean {
  if (start >= end) return false;
  out.ifindex = -1;
  const version = buf[start] >> 4;
  if (version === 4) return parseIpv4(buf, start, end, out);
  if (version === 6) return parseIpv6(buf, start, end, out);
  return false;
}

function parseRawIpv4(buf: Uint8Array, start: number, end: number, out: PacketFields): boolean {
  out.ifindex = -1;
  return parseIpv4(buf, start, end, out);
}

function parseRawIpv6(buf: Uint8Array, start: number, end: number, out: PacketFields): boolean {
  out.ifindex = -1;
  return parseIpv6(buf, start, end, out);
}

/** NULL stores the family in the capturing host's byte order, LOOP in network order: accept either. */
function parseBsdLoopback(buf: Uint8Array, start: number, end: number, out: PacketFields): boolean {
  if (start + 4 > end) return false;
  out.ifindex = -1;
  const first = buf[start];
  const last = buf[start + 3];
  if (buf[start + 1] !== 0 || buf[start + 2] !== 0 || (first !== 0 && last !== 0)) return false;
  const family = first | last;
  if (family === AF_INET) return parseIpv4(buf, start + 4, end, out);
  if (AF_INET6_VALUES.has(family)) return parseIpv6(buf, start + 4, end, out);
  return false;
}

/** Skips any number of VLAN tags (each one is 4 bytes, so the walk ends at the captured length). */
function parseEthertype(buf: Uint8Array, etherType: number, offset: number, end: number, out: PacketFields): boolean {
  let type = etherType;
  let at = offset;
  while (type === ETHERTYPE_8021Q || type === ETHERTYPE_8021AD || type === ETHERTYPE_QINQ_LEGACY) {
    if (at + 4 > end) return false;
    type = (buf[at + 2] << 8) | buf[at + 3];
    at += 4;
  }
  if (type === ETHERTYPE_IPV4) return parseIpv4(buf, at, end, out);
  if (type === ETHERTYPE_IPV6) return parseIpv6(buf, at, end, out);
  if (type === ETHERTYPE_PPPOE_SESSION) return parsePppoeSession(buf, at, end, out);
  return false;
}

/** PPPoE version 1, type 1 (RFC 2516). */
const PPPOE_VERSION_TYPE = 0x11;
/** The code of session data; discovery codes never carry IP. */
const PPPOE_CODE_SESSION = 0x00;
const PPPOE_HEADER = 6;
/**
 * PPP protocol numbers (RFC 1332, RFC 5072), two bytes: RFC 2516 advises against protocol field compression, and
 * libpcap's `pppoes` filter matches the two-byte form only, so a compressed one could not pass the live filter.
 */
const PPP_IPV4 = 0x0021;
const PPP_IPV6 = 0x0057;

/**
 * A PPPoE session frame: version/type, code, session id, payload length, then the PPP protocol and the
 * datagram. The payload length bounds the datagram (Ethernet pads short frames); a length beyond the frame
 * only means a snapped capture.
 */
function parsePppoeSession(buf: Uint8Array, at: number, end: number, out: PacketFields): boolean {
  if (at + PPPOE_HEADER + 2 > end) return false;
  if (buf[at] !== PPPOE_VERSION_TYPE || buf[at + 1] !== PPPOE_CODE_SESSION) return false;
  const payloadLength = (buf[at + 4] << 8) | buf[at + 5];
  if (payloadLength < 2) return false;
  const payloadEnd = Math.min(end, at + PPPOE_HEADER + payloadLength);
  const protocol = (buf[at + PPPOE_HEADER] << 8) | buf[at + PPPOE_HEADER + 1];
  const ipAt = at + PPPOE_HEADER + 2;
  if (protocol === PPP_IPV4) return parseIpv4(buf, ipAt, payloadEnd, out);
  if (protocol === PPP_IPV6) return parseIpv6(buf, ipAt, payloadEnd, out);
  return false;
}

function parseIpv4(buf: Uint8Array, at: number, capturedEnd: number, out: PacketFields): boolean {
  if (at + 20 > capturedEnd) return false;
  const versionAndLength = buf[at];
  if (versionAndLength >> 4 !== 4) return false;
  const headerLength = (versionAndLength & 15) << 2;
  const totalLength = (buf[at + 2] << 8) | buf[at + 3];
  if (headerLength < 20 || headerLength > totalLength) return false;
  // Fragments after the first carry no transport header, only payload bytes that would read as ports.
  if ((((buf[at + 6] << 8) | buf[at + 7]) & 0x1fff) !== 0) return false;
  const datagramEnd = at + totalLength;
  if (!parseTransport(buf, buf[at + 9], at + headerLength, Math.min(datagramEnd, capturedEnd), datagramEnd, out)) return false;
  out.family = 4;
  out.addressAt = at + 12;
  return true;
}

function parseIpv6(buf: Uint8Array, at: number, capturedEnd: number, out: PacketFields): boolean {
  if (at + 40 > capturedEnd) return false;
  if (buf[at] >> 4 !== 6) return false;
  const payloadLength = (buf[at + 4] << 8) | buf[at + 5];
  // Payload length 0 means a jumbogram (or a segmentation-offload packet): only the capture bounds it.
  const datagramEnd = payloadLength === 0 ? capturedEnd : at + 40 + payloadLength;
  const end = Math.min(datagramEnd, capturedEnd);
  let next = buf[at + 6];
  let offset = at + 40;
  for (let headers = 0; headers <= MAX_IPV6_EXTENSION_HEADERS; headers++) {
    switch (next) {
      case IPPROTO_TCP:
      case IPPROTO_UDP:
        if (!parseTransport(buf, next, offset, end, datagramEnd, out)) return false;
        out.family = 6;
        out.addressAt = at + 8;
        return true;
      case IPPROTO_HOPOPTS:
      case IPPROTO_ROUTING:
      case IPPROTO_DSTOPTS:
        if (offset + 2 > end) return false;
        next = buf[offset];
        offset += (buf[offset + 1] + 1) << 3;
        break;
      case IPPROTO_FRAGMENT:
        if (offset + 8 > end) return false;
        if ((((buf[offset + 2] << 8) | buf[offset + 3]) & 0xfff8) !== 0) return false;
        next = buf[offset];
        offset += 8;
        break;
      case IPPROTO_AH:
        if (offset + 2 > end) return false;
        next = buf[offset];
        offset += (buf[offset + 1] + 2) << 2;
        break;
      default:
        // ESP hides what follows, 59 means nothing follows, everything else is not TCP/UDP.
        return false;
    }
  }
  return false;
}

/**
 * `end` bounds reads (captured and inside the datagram); `datagramEnd` is what the IP header claims,
 * used to validate the TCP data offset without requiring a snapped capture to hold the TCP options.
 */
function parseTransport(buf: Uint8Array, protocol: number, at: number, end: number, datagramEnd: number, out: PacketFields): boolean {
  if (protocol === IPPROTO_TCP) {
    if (at + 20 > end) return false;
    const dataOffset = (buf[at + 12] >> 4) << 2;
    if (dataOffset < 20 || at + dataOffset > datagramEnd) return false;
    out.proto = 'tcp';
    out.flags = buf[at + 13];
  } else if (protocol === IPPROTO_UDP) {
    if (at + 8 > end) return false;
    out.proto = 'udp';
    out.flags = 0;
  } else {
    return false;
  }
  out.sport = (buf[at] << 8) | buf[at + 1];
  out.dport = (buf[at + 2] << 8) | buf[at + 3];
  return true;
}

// ---- NFLOG (239) ----------------------------------------------------------------------------------

/** What an NFLOG parser reports besides the packet: when the kernel logged it and the message's sequence number (NaN: not said). */
export interface NflogFields extends PacketFields {
  time: number;
  /** Set for every NFLOG message read, also one that is then refused (another prefix, not TCP/UDP). */
  seq: number;
}

/** NFLOG TLV headers are in the capturing host's byte order (capture files: assumed to be this host's). */
const HOST_LITTLE_ENDIAN = endianness() === 'LE';

/**
 * Parses NFLOG messages: the logged packet as raw IP, its log time into `out.time` when `out` has the field.
 * With `prefix`, only messages whose rule prefix matches it (nflog.ts, prefixMatcher) count; the others
 * return false, like packets that are not TCP/UDP. `withAddresses` as for packetParser.
 */
export function nflogParser(
  prefix: ((buf: Uint8Array, record: NflogRecord) => boolean) | null,
  withAddresses = true,
): (buf: Uint8Array, start: number, end: number, out: PacketFields | NflogFields) => boolean {
  const record = emptyNflogRecord();
  return (buf, start, end, out) => {
    if (!readNflog(buf, start, end, HOST_LITTLE_ENDIAN, record)) return false;
    if ('seq' in out) out.seq = record.seq;
    if (prefix !== null && !prefix(buf, record)) return false;
    if (!parseRawIp(buf, record.payloadAt, record.payloadEnd, out)) return false;
    if (withAddresses) fillAddresses(buf, out);
    if ('time' in out) out.time = record.time;
    return true;
  };
}
