/**
 * The matcher's extension point for doors that are not a fixed sequence but watch ranges of ports: a rolling door
 * (its Sequence_Ports, docs/rolling-sequences.md) and an encrypted door (its Port_Span, docs/encrypted-knocks.md).
 * The matcher finds the range doors of a hit's port with one lookup (RangeDoors) and hands the hit to each door
 * that admits it; the door keeps its own per-source state, bounded by MaxSources, and reports through the
 * matcher's events. Knocks on a range neither continue nor fail fixed doors' attempts, and fixed doors' knocks
 * do not reach range doors (docs/design.md, "Matching").
 */
import type { DoorConfig, PortRange } from '../config/types.js';
import type { KnockHit } from '../hit.js';
import type { UsedKnocks } from '../knocks/used.js';
import type { AttemptSnapshot, MatchEvent } from './matcher.js';

/** What every range door gets from the matcher. */
export interface RangeDoorContext {
  /** The matcher's event sink (it counts what passes). Called synchronously; must not call back into the matcher. */
  emit: (event: MatchEvent) => void;
  /** Most sources with something in progress on one door; beyond it the oldest is dropped (an `evicted` event). */
  maxSources: number;
  /** Which one-time knocks (rolling sequences, encrypted messages) were used, by door name. */
  used: UsedKnocks;
  /** Destination acceptance for doors without Target (see MatcherOptions.isLocal). */
  isLocal: ((dst: string) => boolean) | null;
}

/** What a range door has in progress, for status. */
export interface RangeProgress {
  /** Sources with something in progress on this door. */
  sources: number;
  /** Attempts (rolling) or messages (encrypted) in progress. */
  attempts: number;
  /** The attempt in progress that started first, when the door can tell. */
  oldest: AttemptSnapshot | null;
}

export interface RangeDoor {
  /** Replaced when a reload keeps the door (same doorIdentity: only its commands changed). */
  config: DoorConfig;
  /** The ports it watches: a hit on any of them, over the range's protocol, goes to knock() if admits() says so. */
  readonly ranges: readonly PortRange[];
  /** Door.admits: TCPFlags, Target or a local destination, Allow_From. */
  admits(hit: KnockHit): boolean;
  /** One admitted hit on one of its ranges, at hit.time (never earlier than the hits before it, bar a few ms across inputs). */
  knock(hit: KnockHit): void;
  /** The earliest time expire() has something to do (ms), or null. */
  nextDeadline(): number | null;
  /** Ends what timed out by `now` (ms), reporting it at its own deadline. */
  expire(now: number): void;
  /** Drops everything in progress without a word (the clock stepped back); returns how many attempts. */
  abandonAll(): number;
  progress(): RangeProgress;
}
