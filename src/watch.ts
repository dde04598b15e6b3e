/**
 * What the inputs need to know of the doors, as a value: which (protocol, port) pairs can matter (the per-line
 * pre-check of the log decoders) and every sequence each door may use, or for a door that watches ranges of
 * ports (a rolling or encrypted door) its ranges (the capture filter). It covers every
 * sequence a door can move to without a reload (each unused line of a one-time file), so it never lags behind the
 * matcher: using a one-time sequence changes nothing here (docs/design.md, "The pre-filter is never staler than
 * the matcher"). Built from the doors at load and at reload, never per hit.
 */
import type { DoorConfig, KnockStep, PortRange } from './config/types.js';
import type { Protocol } from './hit.js';

/** A sequence a door accepts (now, or later without a reload), with the door whose destination and flag rules apply. */
export interface DoorSequence {
  door: DoorConfig;
  sequence: readonly KnockStep[];
}

/** The ranges a rolling door (its Sequence_Ports) or an encrypted door (its Port_Span) watches: any port of them may be a knock. */
export interface DoorRange {
  door: DoorConfig;
  ranges: readonly PortRange[];
}

/** Which ports matter: lines and packets for other ports need not be decoded. */
export interface PortWatch {
  /** Some door may use this protocol and port. */
  watches(proto: Protocol, port: number): boolean;
  /** Some door may use this port over either protocol: the cheap pre-check before a line is parsed. */
  watchesPort(port: number): boolean;
}

const TCP_BIT = 1;
const UDP_BIT = 2;

export class Watch implements PortWatch {
  /** Per port: TCP_BIT when some sequence or range uses it over TCP, UDP_BIT over UDP. */
  private readonly ports = new Uint8Array(65536);

  constructor(
    readonly sequences: readonly DoorSequence[],
    readonly ranges: readonly DoorRange[] = [],
  ) {
    for (const { sequence } of sequences) for (const step of sequence) this.ports[step.port]! |= bitOf(step.proto);
    for (const { ranges: doorRanges } of ranges) {
      for (const range of doorRanges) for (let port = range.first; port <= range.last; port++) this.ports[port]! |= bitOf(range.proto);
    }
  }

  watches(proto: Protocol, port: number): boolean {
    return (this.ports[port]! & bitOf(proto)) !== 0;
  }

  watchesPort(port: number): boolean {
    return this.ports[port] !== 0;
  }

  /** Whether every step of `sequence` is watched (a one-time file edited since the watch was built may hold new ports). */
  covers(sequence: readonly KnockStep[]): boolean {
    return sequence.every((step) => this.watches(step.proto, step.port));
  }

  /** The same watch plus `extra`. */
  with(extra: DoorSequence): Watch {
    return new Watch([...this.sequences, extra], this.ranges);
  }
}

function bitOf(proto: Protocol): number {
  return proto === 'tcp' ? TCP_BIT : UDP_BIT;
}
