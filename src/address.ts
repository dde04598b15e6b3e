/**
 * IP address text: validation, canonical form and CIDR ranges.
 *
 * Canonical text is what knockd compares and what reaches commands as %IP%:
 * IPv4 as a plain dotted quad, IPv6 as RFC 5952 (lower case, no leading zeros,
 * the longest run of two or more zero groups compressed). Kernel LOG lines print
 * IPv6 fully expanded, packets carry bytes; both end up as the same string.
 */

/** Canonical IPv4 text of `text`, or null. Rejects leading zeros (ambiguous octal) and out-of-range octets. */
export function canonicalIpv4(text: string): string | null {
  const len = text.length;
  if (len < 7 || len > 15) return null;
  let dots = 0;
  let value = 0;
  let digits = 0;
  let leadingZero = false;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return null;
      digits = 0;
      value = 0;
      continue;
    }
    if (c < 48 || c > 57) return null;
    if (digits === 1 && leadingZero) return null;
    if (digits === 0) leadingZero = c === 48;
    value = value * 10 + (c - 48);
    if (++digits > 3 || value > 255) return null;
  }
  if (dots !== 3 || digits === 0) return null;
  return text;
}

/** The eight 16-bit groups of an IPv6 address, or null. Accepts `::`, an IPv4 tail and a `%zone` (dropped). */
export function parseIpv6(input: string): number[] | null {
  if (input.length === EXPANDED_IPV6_LENGTH) {
    const groups = expandedIpv6Groups(input);
    if (groups !== null) return groups;
  }
  let text = input;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  if (text.length < 2 || text.length > 45) return null;
  const gap = text.indexOf('::');
  if (gap >= 0 && text.indexOf('::', gap + 1) >= 0) return null;
  const head = gap >= 0 ? text.slice(0, gap) : text;
  const tail = gap >= 0 ? text.slice(gap + 2) : '';
  const headGroups = head === '' ? [] : parseGroups(head, gap < 0);
  const tailGroups = tail === '' ? [] : parseGroups(tail, true);
  if (headGroups === null || tailGroups === null) return null;
  if (gap < 0) return headGroups.length === 8 ? headGroups : null;
  const missing = 8 - headGroups.length - tailGroups.length;
  if (missing < 1) return null;
  return [...headGroups, ...new Array<number>(missing).fill(0), ...tailGroups];
}

/** `2001:0db8:0000:…:0001`: eight groups of four hex digits, as the kernel logs every IPv6 address. */
const EXPANDED_IPV6_LENGTH = 39;

/** The groups of a fully expanded address without splitting it (the form of every IPv6 knock line), else null. */
function expandedIpv6Groups(text: string): number[] | null {
  const groups = new Array<number>(8);
  for (let g = 0; g < 8; g++) {
    const at = g * 5;
    if (g > 0 && text.charCodeAt(at - 1) !== 58 /* : */) return null;
    const a = hexValue(text.charCodeAt(at));
    const b = hexValue(text.charCodeAt(at + 1));
    const c = hexValue(text.charCodeAt(at + 2));
    const d = hexValue(text.charCodeAt(at + 3));
    if ((a | b | c | d) < 0) return null;
    groups[g] = (a << 12) | (b << 8) | (c << 4) | d;
  }
  return groups;
}

function parseGroups(text: string, mayEndWithIpv4: boolean): number[] | null {
  const parts = text.split(':');
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (i === parts.length - 1 && mayEndWithIpv4 && part.includes('.')) {
      const v4 = canonicalIpv4(part);
      if (v4 === null) return null;
      const o = v4.split('.').map(Number);
      groups.push((o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!);
      continue;
    }
    if (part.length < 1 || part.length > 4) return null;
    let value = 0;
    for (let j = 0; j < part.length; j++) {
      const h = hexValue(part.charCodeAt(j));
      if (h < 0) return null;
      value = (value << 4) | h;
    }
    groups.push(value);
  }
  return groups;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** RFC 5952 text of eight 16-bit groups (IPv4-mapped addresses keep their dotted tail). */
export function formatIpv6(groups: ArrayLike<number>): string {
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `::ffff:${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (i > 0 && i !== bestStart + bestLen) out += ':';
    out += groups[i]!.toString(16);
  }
  return out;
}

/** Canonical IPv6 text of `text`, or null. */
export function canonicalIpv6(text: string): string | null {
  const groups = parseIpv6(text);
  return groups === null ? null : formatIpv6(groups);
}

/** Canonical text of an IPv4 or IPv6 address, or null when `text` is neither. */
export function canonicalIp(text: string): string | null {
  return text.includes(':') ? canonicalIpv6(text) : canonicalIpv4(text);
}

export function isIpv6(canonical: string): boolean {
  return canonical.includes(':');
}

/** Canonical IPv4 text of 4 bytes at `offset`. */
export function ipv4FromBytes(buf: Uint8Array, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

/** Canonical IPv6 text of 16 bytes at `offset`. */
export function ipv6FromBytes(buf: Uint8Array, offset: number): string {
  const groups = new Array<number>(8);
  for (let i = 0; i < 8; i++) groups[i] = (buf[offset + 2 * i]! << 8) | buf[offset + 2 * i + 1]!;
  return formatIpv6(groups);
}

/** An address range, e.g. 192.0.2.0/24 or 2001:db8::/32. */
export interface Cidr {
  /** Canonical text as written back to users, e.g. `192.0.2.0/24`. */
  text: string;
  v6: boolean;
  /** Network address as 16-bit groups (two for IPv4, eight for IPv6). */
  groups: number[];
  prefix: number;
}

/** Parses `ADDR[/PREFIX]`; throws an Error with a readable message. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const addrText = (slash >= 0 ? text.slice(0, slash) : text).trim();
  const prefixText = slash >= 0 ? text.slice(slash + 1).trim() : '';
  const v6 = addrText.includes(':');
  const canonical = canonicalIp(addrText);
  if (canonical === null) throw new Error(`"${addrText}" is not an IPv4 or IPv6 address`);
  const bits = v6 ? 128 : 32;
  let prefix = bits;
  if (slash >= 0) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) {
      throw new Error(`"/${prefixText}" is not a prefix length for ${v6 ? 'IPv6 (0-128)' : 'IPv4 (0-32)'}`);
    }
    prefix = Number(prefixText);
  }
  const groups = addressGroups(canonical)!;
  const masked = groups.map((g, i) => g & groupMask(prefix, i));
  const network = v6 ? formatIpv6(masked) : `${masked[0]! >> 8}.${masked[0]! & 255}.${masked[1]! >> 8}.${masked[1]! & 255}`;
  return { text: `${network}/${prefix}`, v6, groups: masked, prefix };
}

function groupMask(prefix: number, index: number): number {
  const bitsBefore = index * 16;
  if (prefix >= bitsBefore + 16) return 0xffff;
  if (prefix <= bitsBefore) return 0;
  return (0xffff << (16 - (prefix - bitsBefore))) & 0xffff;
}

function addressGroups(canonical: string): number[] | null {
  if (canonical.includes(':')) return parseIpv6(canonical);
  const o = canonical.split('.').map(Number);
  return [(o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!];
}

/** Whether canonical address `ip` lies in `cidr` (families never mix). */
export function cidrContains(cidr: Cidr, ip: string): boolean {
  return cidrSetMatcher([cidr])(ip);
}

/**
 * A test for "is `ip` (canonical) in any of `cidrs`", with the masks worked out once: the address is parsed
 * once per call, not once per range, and the last answer is remembered (a knock's steps share a source).
 */
export function cidrSetMatcher(cidrs: readonly Cidr[]): (ip: string) => boolean {
  const ranges = cidrs.map((cidr) => ({ v6: cidr.v6, network: cidr.groups, mask: cidr.groups.map((_, i) => groupMask(cidr.prefix, i)) }));
  let lastIp = '';
  let lastAnswer = false;
  return (ip) => {
    if (ip === lastIp) return lastAnswer;
    const v6 = ip.includes(':');
    const groups = addressGroups(ip);
    let answer = false;
    if (groups !== null) {
      for (const range of ranges) {
        if (range.v6 !== v6) continue;
        let inside = true;
        for (let i = 0; i < groups.length && inside; i++) inside = (groups[i]! & range.mask[i]!) === range.network[i];
        if (inside) {
          answer = true;
          break;
        }
      }
    }
    lastIp = ip;
    lastAnswer = answer;
    return answer;
  };
}

/**
 * A copy of `text` that does not share memory with the string it was cut from. A regex capture is a
 * slice of its whole log line: keeping such an address in a long-lived table would keep the line too.
 */
export function detachedCopy(text: string): string {
  return (` ${text}`).slice(1);
}

/** A DNS label: letters, digits and inner hyphens, at most 63 characters (RFC 1123). */
const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Canonical text of a firewall's name (README, "Many firewalls, one knocktail"): an IP address in canonical form,
 * or a host name in lower case without a final dot; null for anything else. What this returns reaches commands
 * as %FIREWALL%, so it holds only letters, digits, `.`, `-` and `:`, and never starts with `-`. Dotted digits that
 * are no canonical IPv4 address (`010.0.0.1`, `1.2.3`) are refused rather than taken for a host name.
 */
export function canonicalFirewall(text: string): string | null {
  const ip = canonicalIp(text);
  if (ip !== null) return ip;
  const name = (text.endsWith('.') ? text.slice(0, -1) : text).toLowerCase();
  if (name.length === 0 || name.length > 253 || /^[0-9.]+$/.test(name)) return null;
  return name.split('.').every((label) => HOST_LABEL.test(label)) ? name : null;
}
