/**
 * An encrypted door in the matcher (docs/encrypted-knocks.md): every admitted knock on the door's Port_Span goes,
 * as its span value, to the door's KnockDecoder, which puts each source's messages together and judges them.
 * A message that opens becomes an `open` event carrying the request (port, duration, the address the knocks came
 * from), so the actions fill %PORT%, %DURATION% and %KNOCK_IP% and stop after the requested duration; a refused
 * one becomes a `refused` event with its reason; a source the decoder dropped at MaxSources an `evicted` event.
 */
import type { DoorConfig, PortRange } from '../config/types.js';
import type { KnockHit } from '../hit.js';
import { encryptedDoorSpec, type EncryptedDoorSpec, KnockDecoder, type KnockOutcome } from '../knocks/decoder.js';
import { DoorVisibility } from './door.js';
import type { RangeDoor, RangeDoorContext, RangeProgress } from './range-door.js';
import { firewallSourceKey, scopedFirewall } from './scope.js';

export class EncryptedDoor implements RangeDoor {
  config: DoorConfig;
  readonly ranges: readonly PortRange[];
  private readonly visibility: DoorVisibility;
  private readonly spec: EncryptedDoorSpec;
  private decoder: KnockDecoder;

  constructor(
    config: DoorConfig,
    private readonly context: RangeDoorContext,
  ) {
    this.config = config;
    this.spec = encryptedDoorSpec(config);
    this.ranges = this.spec.span.ranges;
    this.visibility = new DoorVisibility(config, context.isLocal);
    this.decoder = new KnockDecoder(this.spec, context.used, context.maxSources);
  }

  admits(hit: KnockHit): boolean {
    return this.visibility.admits(hit);
  }

  knock(hit: KnockHit): void {
    // Under Knock_Scope = firewall, the knocks of one address through two firewalls are two sources' knocks.
    const firewall = scopedFirewall(this.config, hit);
    const key = firewall === undefined ? hit.src : firewallSourceKey(hit.src, firewall);
    const outcomes = this.decoder.knock(hit.src, this.decoder.valueOf(hit.proto, hit.dport), hit.time, key);
    for (const outcome of outcomes) this.report(outcome);
  }

  nextDeadline(): number | null {
    return this.decoder.nextDeadline();
  }

  expire(now: number): void {
    for (const outcome of this.decoder.expire(now)) this.report(outcome);
  }

  abandonAll(): number {
    const count = this.decoder.size;
    this.decoder = new KnockDecoder(this.spec, this.context.used, this.context.maxSources);
    return count;
  }

  progress(): RangeProgress {
    const sources = this.decoder.size;
    return { sources, attempts: sources, oldest: null };
  }

  private report(outcome: KnockOutcome): void {
    const { emit } = this.context;
    if (outcome.type === 'open') {
      const { port, duration } = outcome.request;
      emit({ type: 'open', time: outcome.time, door: this.config, ip: outcome.openFor, request: { port, duration, knockIp: outcome.source } });
    } else if (outcome.reason === 'evicted') {
      emit({ type: 'evicted', time: outcome.time, ip: outcome.source, count: 1 });
    } else {
      emit({ type: 'refused', time: outcome.time, door: this.config, ip: outcome.source, reason: outcome.reason, detail: outcome.detail });
    }
  }
}
