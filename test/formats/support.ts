/** Shared by the format tests: a decode context, and the hit a decoded line yielded (if any). */
import { type DecodeContext, type Decoded, Outcome } from '../../src/formats/logformat.js';
import type { KnockHit } from '../../src/hit.js';
import { type PortWatch, Watch } from '../../src/watch.js';
import type { Protocol } from '../../src/hit.js';
import type { DoorConfig } from '../../src/config/types.js';

/** The hit of a decoded line, or null (not a knock line, or a port no door watches). */
export function hitOf(decoded: Decoded): KnockHit | null {
  return decoded.outcome === Outcome.Matched ? decoded.hit : null;
}

/** A replay-style context (no arrival time). */
export function replayContext(settings: Partial<DecodeContext> = {}): DecodeContext {
  return { input: 'test', reference: 0, bootTime: 0, fallbackTime: 0, arrival: null, ...settings };
}

/** A watch of exactly these protocol/port pairs. */
export function watchOf(steps: Array<{ proto: Protocol; port: number }>): Watch {
  return new Watch([{ door: {} as DoorConfig, sequence: steps }]);
}

/** A PortWatch from a (protocol, port) predicate. */
export function portWatch(watches: (proto: Protocol, port: number) => boolean): PortWatch {
  return { watches, watchesPort: (port) => watches('tcp', port) || watches('udp', port) };
}
