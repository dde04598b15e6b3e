/**
 * A map from source address to a value, made for a flood of distinct sources, and the compact key it uses.
 *
 * A JS Map never reuses the slot of a deleted key: every few thousand deletions it allocates a new table, and
 * under a flood (a new source per packet, each one evicted or expired a second later) those tables reach V8's
 * old generation before they are garbage; so does every address string kept per source. Together that grew
 * the daemon's heap by over 100 MB per million sources, although MaxSources bounds what is live. Here an IPv4
 * source is a number (no object at all) and the slots live in fixed arrays that only grow (doubling) with the
 * number of keys held at once: adding and removing IPv4 sources allocates nothing.
 *
 * Open addressing with linear probing and backward-shift deletion (no tombstones). Slots come from simple
 * tabulation hashing with random tables made per map: sources are chosen by whoever sends the packets, and
 * nobody who does not know the tables can choose addresses that land on the same slots.
 */
import { randomFillSync } from 'node:crypto';
import { detachedCopy } from '../address.js';

/** An IPv4 address as a signed 32-bit number (a V8 small integer), any other address as its canonical text. */
export type SourceKey = number | string;

/** The key of canonical address text, for lookups (IPv6 text is used as it is). */
export function sourceKey(ip: string): SourceKey {
  const v4 = ipv4Number(ip);
  return v4 === null ? ip : v4;
}

/** The key to store, from a lookup key: IPv6 text is copied off the log line it may be a slice of. */
export function storedSourceKey(key: SourceKey): SourceKey {
  return typeof key === 'number' ? key : detachedCopy(key);
}

/** The canonical text of a key. */
export function sourceText(key: SourceKey): string {
  return typeof key === 'string' ? key : `${key >>> 24}.${(key >>> 16) & 255}.${(key >>> 8) & 255}.${key & 255}`;
}

/** Canonical dotted-quad text (no leading zeros) as a signed 32-bit number, else null. */
function ipv4Number(ip: string): number | null {
  if (ip.length > 15) return null;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i <= ip.length; i++) {
    const c = i < ip.length ? ip.charCodeAt(i) : 46; /* a final '.' closes the last octet */
    if (c === 46) {
      if (digits === 0 || octet > 255) return null;
      value = (value << 8) | octet;
      octet = 0;
      digits = 0;
      dots++;
    } else {
      const d = c - 48;
      // A leading zero is not canonical ("010"): such text stays text, so sourceText gives back the same.
      if (d < 0 || d > 9 || (digits === 1 && octet === 0)) return null;
      octet = octet * 10 + d;
      digits++;
    }
  }
  return dots === 4 ? value | 0 : null;
}

/** Characters of text keys hashed by position (canonical addresses have at most 39). */
const HASHED_POSITIONS = 40;
/** Where the hash table's words for the four bytes of number keys start (after those for text). */
const NUMBER_PART = HASHED_POSITIONS * 128;
const INITIAL_CAPACITY = 1024;

export class AddressMap<V> {
  private keys: Array<SourceKey | undefined>;
  private values: Array<V | undefined>;
  /** Hash of the key in each slot (its home slot is hash & mask). */
  private hashes: Uint32Array;
  private mask: number;
  private count = 0;
  /** Random 32-bit words: per (text position, character code 0-127), then per (byte index, byte value) of numbers. */
  private readonly table = randomFillSync(new Uint32Array(NUMBER_PART + 4 * 256));

  constructor() {
    this.keys = new Array<SourceKey | undefined>(INITIAL_CAPACITY).fill(undefined);
    this.values = new Array<V | undefined>(INITIAL_CAPACITY).fill(undefined);
    this.hashes = new Uint32Array(INITIAL_CAPACITY);
    this.mask = INITIAL_CAPACITY - 1;
  }

  get size(): number {
    return this.count;
  }

  get(key: SourceKey): V | undefined {
    const slot = this.find(key, this.hash(key));
    return slot < 0 ? undefined : this.values[slot];
  }

  /** Adds or replaces. */
  set(key: SourceKey, value: V): void {
    const hash = this.hash(key);
    const found = this.find(key, hash);
    if (found >= 0) {
      this.values[found] = value;
      return;
    }
    // At most half full: probe sequences stay short.
    if ((this.count + 1) * 2 > this.keys.length) this.grow();
    let slot = hash & this.mask;
    while (this.keys[slot] !== undefined) slot = (slot + 1) & this.mask;
    this.keys[slot] = key;
    this.values[slot] = value;
    this.hashes[slot] = hash;
    this.count++;
  }

  delete(key: SourceKey): boolean {
    let hole = this.find(key, this.hash(key));
    if (hole < 0) return false;
    this.count--;
    // Backward shift: later keys of the same probe run move up into the hole, so lookups never stop early.
    for (let slot = (hole + 1) & this.mask; this.keys[slot] !== undefined; slot = (slot + 1) & this.mask) {
      const home = this.hashes[slot]! & this.mask;
      // The key at `slot` may move to `hole` unless its home lies cyclically in (hole, slot].
      const stays = hole <= slot ? home > hole && home <= slot : home > hole || home <= slot;
      if (stays) continue;
      this.keys[hole] = this.keys[slot];
      this.values[hole] = this.values[slot];
      this.hashes[hole] = this.hashes[slot]!;
      hole = slot;
    }
    this.keys[hole] = undefined;
    this.values[hole] = undefined;
    return true;
  }

  /** The values, in no particular order: a copy, so the map may change while the caller walks it. */
  valuesCopy(): V[] {
    const out: V[] = [];
    for (let slot = 0; slot < this.keys.length; slot++) if (this.keys[slot] !== undefined) out.push(this.values[slot]!);
    return out;
  }

  private find(key: SourceKey, hash: number): number {
    for (let slot = hash & this.mask; ; slot = (slot + 1) & this.mask) {
      const stored = this.keys[slot];
      if (stored === undefined) return -1;
      if (this.hashes[slot] === hash && stored === key) return slot;
    }
  }

  private hash(key: SourceKey): number {
    const table = this.table;
    if (typeof key === 'number') {
      const at = NUMBER_PART;
      return (table[at + (key & 255)]! ^ table[at + 256 + ((key >>> 8) & 255)]! ^ table[at + 512 + ((key >>> 16) & 255)]! ^ table[at + 768 + (key >>> 24)]!) >>> 0;
    }
    let hash = 0;
    for (let i = 0; i < key.length; i++) hash ^= table[(i % HASHED_POSITIONS) * 128 + (key.charCodeAt(i) & 127)]!;
    return hash >>> 0;
  }

  private grow(): void {
    const { keys, values, hashes } = this;
    const capacity = keys.length * 2;
    this.keys = new Array<SourceKey | undefined>(capacity).fill(undefined);
    this.values = new Array<V | undefined>(capacity).fill(undefined);
    this.hashes = new Uint32Array(capacity);
    this.mask = capacity - 1;
    for (let old = 0; old < keys.length; old++) {
      const key = keys[old];
      if (key === undefined) continue;
      let slot = hashes[old]! & this.mask;
      while (this.keys[slot] !== undefined) slot = (slot + 1) & this.mask;
      this.keys[slot] = key;
      this.values[slot] = values[old];
      this.hashes[slot] = hashes[old]!;
    }
  }
}
