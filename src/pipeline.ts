/**
 * The core every mode shares: KnockHits go into the matcher, its events go to the sinks, and an open
 * runs the door's commands through the action layer, whose events go to the same sinks.
 */
import type { Clock } from './actions/clock.js';
import { DoorActions } from './actions/doors.js';
import type { CommandRunner } from './actions/runner.js';
import type { StopStore } from './actions/stop-store.js';
import type { Config } from './config/types.js';
import type { EventSink, KnockEvent } from './events.js';
import type { KnockHit } from './hit.js';
import { type MatchEvent, Matcher } from './matcher/matcher.js';

export interface PipelineOptions {
  clock: Clock;
  runner: CommandRunner;
  store: StopStore;
  /** Destination check for doors without Target; null = any destination (file mode, replay). */
  isLocal: ((dst: string) => boolean) | null;
  sinks: EventSink[];
  /** Problems that are not events (a bad one-time sequence line, …). */
  onWarning: (message: string) => void;
  /** The daemon's state file for one-time marks that could not be written (MatcherOptions.unmarkedFile). */
  unmarkedFile?: string | null;
}

export class Pipeline {
  readonly matcher: Matcher;
  readonly actions: DoorActions;
  private readonly sinks: EventSink[];

  constructor(config: Config, options: PipelineOptions) {
    this.sinks = options.sinks;
    const emit = (event: KnockEvent): void => {
      for (const sink of this.sinks) sink(event);
    };
    this.actions = new DoorActions(config.doors, {
      clock: options.clock,
      runner: options.runner,
      store: options.store,
      emit,
      commandLimit: config.options.commandLimit,
    });
    const matcherOptions = { maxSources: config.options.maxSources, isLocal: options.isLocal, onWarning: options.onWarning, unmarkedFile: options.unmarkedFile ?? null };
    this.matcher = new Matcher(config.doors, matcherOptions, (event: MatchEvent) => {
      emit(event);
      if (event.type === 'open') this.actions.open(event.door, event.ip);
    });
  }

  /** The HitSink of every input. */
  readonly hit = (hit: KnockHit): void => {
    this.matcher.handle(hit);
  };

  /** Applies a reloaded config: doors (unchanged doors keep their knocks in progress), their commands and CommandLimit. */
  reload(config: Config): void {
    this.matcher.reload(config.doors);
    this.actions.setDoors(config.doors, config.options.commandLimit);
  }
}
