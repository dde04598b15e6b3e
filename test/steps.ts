/**
 * fixtures/real/groundtruth.tsv: when each step of the real knocks ran (MANIFEST.md). Tests place what
 * knocktail reports (an open, a hit) in the step whose time window holds it.
 */
import { readFileSync } from 'node:fs';
import { fixture } from './helpers.js';

export interface StepTime {
  /** UTC start and end of the step's command, ms since the epoch. */
  start: number;
  end: number;
}

/** Every timed step by id (`A01`, and `A12.7000` for one port of a multi-command step). */
export const STEP_TIMES: ReadonlyMap<string, StepTime> = new Map(
  readFileSync(fixture('real', 'groundtruth.tsv'), 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split('\t'))
    .filter((columns) => columns[2] !== '-')
    .map((columns) => [columns[0]!, { start: Date.parse(columns[1]!), end: Date.parse(columns[2]!) }]),
);

/**
 * The step (main id: `A12` for `A12.7000`) during which `time` falls. With `wholeSeconds` the window is widened
 * for logs stamped to the second and read a little later: from the start's second to one second after the end.
 */
export function stepAt(time: number, wholeSeconds = false): string {
  for (const [id, { start, end }] of STEP_TIMES) {
    const from = wholeSeconds ? Math.floor(start / 1000) * 1000 : start;
    if (time >= from && time <= (wholeSeconds ? end + 1000 : end)) return id.split('.')[0]!;
  }
  return `none@${new Date(time).toISOString()}`;
}
