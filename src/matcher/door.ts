/**
 * A door as the matcher uses it: the config plus everything a hit is tested against, computed once.
 */
import { createHmac } from 'node:crypto';
import { cidrSetMatcher } from '../address.js';
import { formatSequence } from '../config/sequence.js';
import type { SecretFile } from '../config/secret-file.js';
import type { DoorConfig, KnockStep } from '../config/types.js';
import type { KnockHit, Protocol } from '../hit.js';
import type { Attempt } from './attempts.js';
import type { ExpiryQueue } from './expiry.js';

/** One number per (protocol, port): the key of every lookup table. */
export function stepKey(proto: Protocol, port: number): number {
  return proto === 'tcp' ? port : port + 0x10000;
}

/** Which hits a door can see at all (knockd's BPF filter, plus Allow_From): TCPFlags, destination, source. The port is the caller's. */
export class DoorVisibility {
  readonly acceptsDestination: (dst: string) => boolean;
  readonly allowsSource: (src: string) => boolean;
  private readonly flagsSet: number;
  private readonly flagsClear: number;

  constructor(config: DoorConfig, isLocal: ((dst: string) => boolean) | null) {
    const target = config.target;
    this.acceptsDestination = target !== null ? (dst) => dst === target : (isLocal ?? (() => true));
    const allowed = config.allowFrom;
    this.allowsSource = allowed.length === 0 ? () => true : cidrSetMatcher(allowed);
    this.flagsSet = config.tcpFlags.set;
    this.flagsClear = config.tcpFlags.clear;
  }

  /** TCPFlags rule; UDP hits and hits whose flags the input cannot tell always match. */
  matchesFlags(hit: KnockHit): boolean {
    const flags = hit.flags;
    return hit.proto !== 'tcp' || flags === null || ((flags & this.flagsSet) === this.flagsSet && (flags & this.flagsClear) === 0);
  }

  /** Whether this door would see the hit at all (knockd's BPF filter, plus Allow_From); the port is checked by the caller. */
  admits(hit: KnockHit): boolean {
    return this.matchesFlags(hit) && this.acceptsDestination(hit.dst) && this.allowsSource(hit.src);
  }
}

export class Door extends DoorVisibility {
  /** Replaced on reload when the door survives (same matching settings, possibly other commands). */
  config: DoorConfig;
  /** Current sequence: the config's, or the current line of the one-time file. */
  sequence: readonly KnockStep[];
  /** The current sequence and those that may follow it without a reload (a one-time file's other unused lines). */
  upcoming: ReadonlyArray<readonly KnockStep[]>;
  /** `stepKey` of each step of `sequence`. */
  stepKeys: number[];
  /** False for a one-time door whose file is used up or could not be written. */
  enabled: boolean;
  readonly timeoutMs: number;
  readonly queue: ExpiryQueue<Attempt>;

  constructor(config: DoorConfig, upcoming: ReadonlyArray<readonly KnockStep[]>, isLocal: ((dst: string) => boolean) | null, queue: ExpiryQueue<Attempt>) {
    super(config, isLocal);
    this.config = config;
    this.sequence = upcoming[0] ?? [];
    this.upcoming = upcoming;
    this.stepKeys = this.sequence.map((step) => stepKey(step.proto, step.port));
    this.enabled = this.sequence.length > 0;
    this.timeoutMs = config.seqTimeout * 1000;
    this.queue = queue;
  }

  setSequence(sequence: readonly KnockStep[], upcoming: ReadonlyArray<readonly KnockStep[]>): void {
    this.sequence = sequence;
    this.upcoming = upcoming;
    this.stepKeys = sequence.map((step) => stepKey(step.proto, step.port));
  }
}

/**
 * Everything that decides which hits advance a door: doors with the same identity before and after a reload
 * are the same door, and attempts on it keep their progress.
 */
export function doorIdentity(config: DoorConfig, sequence: readonly KnockStep[]): string {
  return JSON.stringify([
    config.name,
    formatSequence(sequence),
    config.oneTimeSequences,
    config.tcpFlags.set,
    config.tcpFlags.clear,
    config.target,
    config.allowFrom.map((cidr) => cidr.text),
    config.seqTimeout,
    config.ignoreRepeats,
    config.rolling && [config.rolling.ports, config.rolling.length, config.rolling.period, keyIdentity(config.rolling.secret)],
    config.encrypted && [
      config.encrypted.span,
      config.encrypted.allowedPorts,
      config.encrypted.maxDuration,
      config.encrypted.window,
      config.encrypted.trustKnockIp,
      keyIdentity(config.encrypted.key),
    ],
    config.knockScope,
  ]);
}

/** Tells keys apart without showing them: an HMAC under the key itself. */
function keyIdentity(secret: SecretFile): string {
  return createHmac('sha256', secret.key).update('knocktail door identity').digest('base64');
}
