/**
 * Everything the engine reports: the matcher's events, the action layer's, and its own about time. Sinks
 * (knockd-style log, replay report, status counters) are one-function consumers of this stream.
 */
import type { ActionEvent } from '../actions/events.js';
import type { MatchEvent } from '../matcher/matcher.js';

/** Why a hit was not handed to the matcher, or was handed over at another time than its stamp (docs/design.md, "Time"). */
export type TimeEvent =
  /** Stamped more than MaxKnockAge behind the clock (daemon): never advances a sequence. */
  | { type: 'stale'; time: number; input: string; stamp: number; ip: string }
  /** Stamped further ahead of the clock than the allowed skew (daemon): never advances a sequence. */
  | { type: 'future'; time: number; input: string; stamp: number; ip: string }
  /** Stamped before a hit this input delivered earlier: handled at that earlier hit's time instead. */
  | { type: 'reordered'; time: number; input: string; stamp: number; ip: string }
  /** The wall clock stepped (NTP, suspend, an admin) by `stepMs` (negative: backwards). */
  | { type: 'clock-step'; time: number; stepMs: number; abandoned: number };

export type KnockEvent = MatchEvent | ActionEvent | TimeEvent;

export type EventSink = (event: KnockEvent) => void;
