/**
 * The NFLOG link type (DLT_NFLOG, 239): what libpcap's `nflog:GROUP` device delivers, one netfilter log
 * message per packet. Layout (tcpdump.org/linktypes/LINKTYPE_NFLOG.html): a 4-byte header (address family,
 * version 0, group in network order), then TLVs, each a 16-bit length (header included) and a 16-bit type in
 * the capturing host's byte order, padded to 4 bytes. The values keep the kernel's order: the timestamp is
 * big-endian, the payload is the packet from its IP header on.
 *
 * The walk is bounded by the captured bytes and by the TLV lengths (each at least 4 bytes, so at most one
 * step per 4 bytes); a TLV other than the payload that claims more than there is ends the walk with no
 * result. Nothing throws.
 */

/** TLV types used here (linux/netfilter/nfnetlink_log.h). */
const NFULA_TIMESTAMP = 3;
const NFULA_PAYLOAD = 9;
const NFULA_PREFIX = 10;
const NFULA_SEQ = 12;
/** The kernel may set NLA_F_NESTED / NLA_F_NET_BYTEORDER in the type's top bits. */
const NLA_TYPE_MASK = 0x3fff;

const AF_INET = 2;
const AF_INET6 = 10;

/** Where the parts of one NFLOG message lie in the buffer. Filled in place by readNflog. */
export interface NflogRecord {
  /** The logged packet: [payloadAt, payloadEnd), from its IP header on. */
  payloadAt: number;
  payloadEnd: number;
  /** The rule's log prefix without its NUL: [prefixAt, prefixEnd); empty (prefixAt === prefixEnd) when the rule set none. */
  prefixAt: number;
  prefixEnd: number;
  /** When the kernel logged the packet (ms since the epoch), or NaN when the message carries no timestamp. */
  time: number;
  /** The group's sequence number of the message (with NFULNL_CFG_F_SEQ set on the group), or NaN. */
  seq: number;
}

export function emptyNflogRecord(): NflogRecord {
  return { payloadAt: 0, payloadEnd: 0, prefixAt: 0, prefixEnd: 0, time: NaN, seq: NaN };
}

/**
 * Reads the NFLOG message in `buf[start, end)`. Returns true and fills `out` when it is an IPv4/IPv6 message
 * with a payload; false otherwise (`out` is then unspecified). `littleEndian`: the byte order of the TLV
 * headers (the capturing host's).
 */
export function readNflog(buf: Uint8Array, start: number, end: number, littleEndian: boolean, out: NflogRecord): boolean {
  if (start + 4 > end || end > buf.length) return false;
  const family = buf[start];
  if ((family !== AF_INET && family !== AF_INET6) || buf[start + 1] !== 0) return false;
  out.payloadAt = out.payloadEnd = out.prefixAt = out.prefixEnd = 0;
  out.time = NaN;
  out.seq = NaN;
  let payload = false;
  let at = start + 4;
  while (at + 4 <= end) {
    const length = littleEndian ? buf[at] | (buf[at + 1] << 8) : (buf[at] << 8) | buf[at + 1];
    const type = (littleEndian ? buf[at + 2] | (buf[at + 3] << 8) : (buf[at + 2] << 8) | buf[at + 3]) & NLA_TYPE_MASK;
    if (length < 4) return false;
    const value = at + 4;
    const valueEnd = at + length;
    if (type === NFULA_PAYLOAD) {
      // The kernel puts the payload last; a capture cut short by its snap length keeps what it has.
      out.payloadAt = value;
      out.payloadEnd = Math.min(valueEnd, end);
      payload = true;
    } else if (valueEnd > end) {
      return false;
    } else if (type === NFULA_PREFIX) {
      let stop = value;
      while (stop < valueEnd && buf[stop] !== 0) stop++;
      out.prefixAt = value;
      out.prefixEnd = stop;
    } else if (type === NFULA_TIMESTAMP && length >= 20) {
      // Two big-endian 64-bit numbers, seconds and microseconds: the high words are 0 until 2106.
      const seconds = readU32Be(buf, value + 4) + readU32Be(buf, value) * 2 ** 32;
      const micros = readU32Be(buf, value + 12);
      if (micros < 1_000_000) out.time = seconds * 1000 + micros / 1000;
    } else if (type === NFULA_SEQ && length >= 8) {
      out.seq = readU32Be(buf, value);
    }
    at += (length + 3) & ~3;
  }
  return payload;
}

function readU32Be(buf: Uint8Array, at: number): number {
  return ((buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3]) >>> 0;
}

/**
 * The rule prefix a knock must carry (`NflogPrefix`), as bytes, compared with what the kernel sent: exactly,
 * except that blanks at the end of either side do not count (an NFLOG prefix needs no separating blank, while
 * LOG prefixes usually end in one, and config values lose theirs).
 */
export function prefixMatcher(prefix: string): (buf: Uint8Array, record: NflogRecord) => boolean {
  const wanted = Buffer.from(prefix.replace(/ +$/, ''), 'utf8');
  return (buf, record) => {
    let end = record.prefixEnd;
    while (end > record.prefixAt && buf[end - 1] === 32) end--;
    if (end - record.prefixAt !== wanted.length) return false;
    for (let i = 0; i < wanted.length; i++) if (buf[record.prefixAt + i] !== wanted[i]) return false;
    return true;
  };
}
