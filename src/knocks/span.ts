/**
 * A door's port span: the ranges of `Port_Span` laid end to end in the order written, so that value v
 * (0 <= v < 2^k) is the v-th port of the span. Spans have a few ranges, so both directions walk them.
 */
import type { PortRange } from '../config/types.js';
import type { Protocol } from '../hit.js';

export interface SpanPort {
  proto: Protocol;
  port: number;
}

export class PortSpan {
  /** Number of ports, 2^bits. */
  readonly size: number;
  readonly bits: number;
  /** Span value of each range's first port. */
  private readonly offsets: number[] = [];

  /** `ranges` as checked by the config parser: no overlaps, 2^k ports in all. */
  constructor(readonly ranges: readonly PortRange[]) {
    let size = 0;
    for (const range of ranges) {
      this.offsets.push(size);
      size += range.last - range.first + 1;
    }
    this.size = size;
    this.bits = Math.log2(size);
    if (!Number.isInteger(this.bits)) throw new Error(`a port span has a power of two ports, not ${size}`);
  }

  /** The span value of a knock, or -1 when it is not on the span. */
  valueOf(proto: Protocol, port: number): number {
    const ranges = this.ranges;
    for (let i = 0; i < ranges.length; i++) {
      const range = ranges[i]!;
      if (port >= range.first && port <= range.last && proto === range.proto) return this.offsets[i]! + port - range.first;
    }
    return -1;
  }

  portOf(value: number): SpanPort {
    for (let i = this.ranges.length - 1; i >= 0; i--) {
      if (value >= this.offsets[i]!) {
        const range = this.ranges[i]!;
        if (value - this.offsets[i]! > range.last - range.first) break;
        return { proto: range.proto, port: range.first + value - this.offsets[i]! };
      }
    }
    throw new Error(`${value} is not a value of this span`);
  }
}
