/**
 * The kernel capture filter for pcap mode, generated from the watch: every sequence a door may use, and the ranges a
 * rolling or encrypted door watches, as `portrange`s (docs/design.md).
 *
 * It lets through exactly the packets that can affect a door (knockd's visibility rule, docs/design.md "Matching"): TCP/UDP to a
 * door's destination (its Target, else a local address) on a port of its sequence, and for IPv4 TCP only with
 * the door's TCPFlags. IPv6 is a superset: BPF cannot find the TCP header behind extension headers, so there
 * the filter checks ports when TCP/UDP follows the fixed header directly, accepts every packet to the door's
 * destinations whose first header is an extension header, and leaves flags to the matcher. Ports are merged
 * per destination set, protocol and flag rule, so a hundred doors on the same address give one clause.
 */
import { isIpv6 } from '../address.js';
import type { DoorConfig } from '../config/types.js';
import type { Protocol } from '../hit.js';
import type { DoorRange, DoorSequence } from '../watch.js';

/** The host's (or the captured interfaces') addresses, canonical text. */
export interface LocalAddresses {
  v4: string[];
  v6: string[];
}

/**
 * Accepts no real packet (no frame is 0 bytes long) yet compiles: libpcap refuses an expression that is
 * constant-false ("expression rejects all packets"). Used when no door can be knocked, instead of knockd's
 * "no filter", which captures everything.
 */
export const MATCH_NOTHING_FILTER = 'len = 0';

/**
 * The filter a capture session on `iface` gets: `filter`, and on a named interface also PPPoE session frames whose
 * packet `filter` accepts (the WAN NIC under a PPPoE link carries knocks that way; README, "Pcap mode"). libpcap's
 * `pppoes` shifts the offsets of what follows it, so it comes last; on link types without PPPoE (raw IP as on
 * WireGuard, cooked capture of a ppp interface) it compiles to "no packet" and the filter stays `filter`. `any`
 * gets no PPPoE part: it sees each such packet again, unwrapped, on the ppp interface, and would count it twice.
 */
export function sessionFilter(filter: string, iface: string): string {
  if (iface === 'any' || filter === MATCH_NOTHING_FILTER || filter === '') return filter;
  return `(${filter}) or (pppoes and (${filter}))`;
}

/** IPv6 next-header values of the extension headers the parser walks: hop-by-hop, routing, fragment, destination options, AH. */
const IPV6_EXTENSION_HEADERS = [0, 43, 44, 60, 51];

interface PortRule {
  proto: Protocol;
  /** TCPFlags masks (IPv4 TCP only; 0/0 = any flags). */
  set: number;
  clear: number;
  /** Ports first-last, inclusive, in no order, possibly overlapping. */
  spans: Array<[number, number]>;
}

interface DestinationGroup {
  family: 4 | 6;
  /** Destination addresses, or null for any destination. */
  destinations: string[] | null;
  rules: Map<string, PortRule>;
}

/**
 * `local` = the addresses doors without Target accept (null = any destination, as in file mode). IPv6 is
 * left out when `ipv4Only`. Returns a libpcap filter expression (pcap-filter(7)).
 */
export function buildCaptureFilter(
  doors: ReadonlyArray<DoorSequence | DoorRange>,
  local: LocalAddresses | null,
  options: { ipv4Only: boolean },
): string {
  const groups = new Map<string, DestinationGroup>();
  const families: Array<4 | 6> = options.ipv4Only ? [4] : [4, 6];
  for (const watched of doors) {
    const { door } = watched;
    const spans = 'ranges' in watched ? watched.ranges : watched.sequence.map((step) => ({ proto: step.proto, first: step.port, last: step.port }));
    if (spans.length === 0) continue;
    for (const family of families) {
      const destinations = doorDestinations(door, local, family);
      if (destinations !== null && destinations.length === 0) continue;
      const groupKey = `${family} ${destinations === null ? '*' : [...destinations].sort().join(' ')}`;
      let group = groups.get(groupKey);
      if (group === undefined) {
        group = { family, destinations, rules: new Map() };
        groups.set(groupKey, group);
      }
      for (const span of spans) {
        // Flags are checked only where BPF can reach the TCP header reliably (IPv4).
        const checksFlags = span.proto === 'tcp' && family === 4;
        const set = checksFlags ? door.tcpFlags.set : 0;
        const clear = checksFlags ? door.tcpFlags.clear : 0;
        const ruleKey = `${span.proto} ${set} ${clear}`;
        let rule = group.rules.get(ruleKey);
        if (rule === undefined) {
          rule = { proto: span.proto, set, clear, spans: [] };
          group.rules.set(ruleKey, rule);
        }
        rule.spans.push([span.first, span.last]);
      }
    }
  }
  if (groups.size === 0) return MATCH_NOTHING_FILTER;
  return [...groups.values()].map(groupExpression).join(' or ');
}

/** The door's destinations of one family: [] = none possible, null = any. */
function doorDestinations(door: DoorConfig, local: LocalAddresses | null, family: 4 | 6): string[] | null {
  if (door.target !== null) return isIpv6(door.target) === (family === 6) ? [door.target] : [];
  if (local === null) return null;
  return family === 4 ? local.v4 : local.v6;
}

function groupExpression(group: DestinationGroup): string {
  const alternatives = [...group.rules.values()].map(ruleExpression);
  if (group.family === 6) alternatives.push(...IPV6_EXTENSION_HEADERS.map((header) => `ip6[6] == ${header}`));
  const selector =
    group.destinations === null
      ? group.family === 4
        ? 'ip'
        : 'ip6'
      : `dst host ${group.destinations.length === 1 ? group.destinations[0] : `(${group.destinations.join(' or ')})`}`;
  return `(${selector} and ${parenthesise(alternatives)})`;
}

function ruleExpression(rule: PortRule): string {
  const ports = portsExpression(rule.proto, rule.spans);
  const mask = rule.set | rule.clear;
  if (mask === 0) return ports;
  return `(${ports} and tcp[tcpflags] & ${hex(mask)} == ${hex(rule.set)})`;
}

/** `tcp dst port (7000 or 8000)`, with runs of three or more ports (a door's range among them) written as a portrange. */
function portsExpression(proto: Protocol, spans: ReadonlyArray<readonly [number, number]>): string {
  const sorted = [...spans].sort((a, b) => a[0] - b[0]);
  // Overlapping and adjacent spans merged: each run once, however many doors and ranges make it up.
  const runs: Array<[number, number]> = [];
  for (const [first, last] of sorted) {
    const previous = runs.at(-1);
    if (previous !== undefined && first <= previous[1] + 1) previous[1] = Math.max(previous[1], last);
    else runs.push([first, last]);
  }
  const singles: number[] = [];
  const parts: string[] = [];
  for (const [first, last] of runs) {
    if (last - first >= 2) parts.push(`${proto} dst portrange ${first}-${last}`);
    else for (let port = first; port <= last; port++) singles.push(port);
  }
  if (singles.length > 0) parts.unshift(`${proto} dst port ${singles.length === 1 ? singles[0] : `(${singles.join(' or ')})`}`);
  return parenthesise(parts);
}

function parenthesise(alternatives: string[]): string {
  return alternatives.length === 1 ? alternatives[0] : `(${alternatives.join(' or ')})`;
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(2, '0')}`;
}
