/** The status counters the daemon keeps from the engine's events (the matcher and the inputs keep the others). */
import { commandFailed } from '../actions/runner.js';
import type { KnockEvent } from '../engine/events.js';
import type { MatcherCounters } from '../matcher/matcher.js';
import type { StatusCounters } from './control.js';

export type EventCounters = Omit<StatusCounters, keyof MatcherCounters | 'linesRead' | 'linesMatched' | 'reloads' | 'failedReloads'>;

export function emptyEventCounters(): EventCounters {
  return { commandsRun: 0, commandsFailed: 0, stopsRun: 0, stopsLate: 0, extended: 0, knocksStale: 0, knocksFuture: 0, knocksReordered: 0, clockSteps: 0, errors: 0 };
}

/** Counts one event (an EventSink for the engine). */
export function countEvent(counters: EventCounters, event: KnockEvent): void {
  switch (event.type) {
    case 'start':
      counters.commandsRun++;
      return;
    case 'stop':
      counters.stopsRun++;
      if (event.lateMs >= 1000) counters.stopsLate++;
      if (event.command !== '') counters.commandsRun++;
      return;
    case 'exit':
      if (commandFailed(event.result)) counters.commandsFailed++;
      return;
    case 'extend':
      counters.extended++;
      return;
    case 'stale':
      counters.knocksStale++;
      return;
    case 'future':
      counters.knocksFuture++;
      return;
    case 'reordered':
      counters.knocksReordered++;
      return;
    case 'clock-step':
      counters.clockSteps++;
      return;
    case 'error':
      counters.errors++;
      return;
    default:
      return;
  }
}
