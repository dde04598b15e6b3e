/**
 * The daemon's warnings about what its inputs lost (Input.lost): one per input and cause when the count grew,
 * at most one per input every `intervalMs`, naming the input, how many, why, and the remedy. A flood that loses
 * lines for an hour gives sixty lines, not millions, and none is silent.
 */
import type { Input, Loss } from '../inputs/input.js';

const DEFAULT_INTERVAL_MS = 60_000;

export class LossWarnings {
  /** Per input: the counts last reported, by cause, and when. */
  private readonly reported = new Map<string, { counts: Map<string, number>; at: number }>();

  constructor(private readonly intervalMs = DEFAULT_INTERVAL_MS) {}

  /** Warnings (one per cause) for inputs whose losses grew since they were last reported, at most once per input per interval. */
  check(inputs: readonly Input[], now: number): string[] {
    const messages: string[] = [];
    for (const input of inputs) {
      const losses = input.lost?.() ?? [];
      if (losses.length === 0) continue;
      const last = this.reported.get(input.id);
      if (last !== undefined && now - last.at < this.intervalMs) continue;
      const grown = losses.filter((loss) => loss.count > (last?.counts.get(key(loss)) ?? 0));
      if (grown.length === 0) continue;
      for (const loss of grown) {
        const before = last?.counts.get(key(loss)) ?? 0;
        const more = before === 0 ? `${loss.count} ${loss.unit}` : `${loss.count - before} more ${loss.unit} since ${new Date(last!.at).toISOString()} (${loss.count} in all)`;
        messages.push(`${input.id} lost ${more}: ${loss.cause}; fix: ${loss.remedy}`);
      }
      this.reported.set(input.id, { counts: new Map(losses.map((loss) => [key(loss), loss.count])), at: now });
    }
    return messages;
  }
}

function key(loss: Loss): string {
  return `${loss.unit}\n${loss.cause}`;
}
