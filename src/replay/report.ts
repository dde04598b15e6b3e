/**
 * What replay reports: one JSON object or table line per event, and the closing summary (what was read, which
 * doors opened for whom, and what the time rules had to do).
 */
import { describeOutcome } from '../actions/runner.js';
import type { KnockEvent } from '../engine/events.js';
import type { InputTime } from '../engine/time-gate.js';
import { type DecoderCounters, tooLongLines } from '../formats/registry.js';

export interface ReplaySummary {
  /** Log files read, with the firewall each is the log of (null: none) and what their lines held (captures are not listed). */
  files: Array<{ file: string; firewall: string | null } & DecoderCounters>;
  /** Per input: hits out of time order and long gaps (docs/design.md, "Time"). */
  time: InputTime[];
  hits: number;
  /** door name → ip (with the firewall, when the logs name one) → number of opens. */
  opens: Map<string, Map<string, number>>;
  /** Knocks that gave up before the door's last step (Seq_Timeout passed). */
  timeouts: number;
  events: number;
}

/** The JSON object of one event (replay --json). */
export function eventRecord(event: KnockEvent): Record<string, unknown> {
  const time = new Date(event.time).toISOString();
  switch (event.type) {
    case 'stage':
      return { time, event: 'stage', door: event.door.name, ip: event.ip, stage: event.stage, of: event.door.sequence.length };
    case 'open':
      return { time, event: 'open', door: event.door.name, ip: event.ip, ...(event.firewall === undefined ? {} : { firewall: event.firewall }) };
    case 'timeout':
      return { time, event: 'timeout', door: event.door.name, ip: event.ip, stage: event.stage };
    case 'sequence':
      return { time, event: 'sequence', door: event.door.name, sequence: event.sequence.map((s) => `${s.port}:${s.proto}`).join(',') };
    case 'exhausted':
      return { time, event: 'exhausted', door: event.door.name };
    case 'evicted':
      return { time, event: 'evicted', ip: event.ip, count: event.count };
    case 'start':
      return { time, event: 'start', door: event.door, ip: event.ip, command: event.command };
    case 'stop':
      return { time, event: 'stop', door: event.door, ip: event.ip, command: event.command };
    case 'extend':
      return { time, event: 'extend', door: event.door, ip: event.ip, until: new Date(event.until).toISOString() };
    case 'exit':
      return {
        time,
        event: 'exit',
        door: event.door,
        ip: event.ip,
        action: event.action,
        command: event.command,
        status: event.result.status,
        signal: event.result.signal,
        ...(event.result.error !== null ? { error: event.result.error } : {}),
        ...(event.result.output !== '' ? { output: event.result.output } : {}),
      };
    case 'error':
      return { time, event: 'error', message: event.message };
    case 'stale':
    case 'future':
    case 'reordered':
      return { time, event: event.type, input: event.input, ip: event.ip, stamp: new Date(event.stamp).toISOString() };
    case 'clock-step':
      return { time, event: 'clock-step', stepMs: event.stepMs, abandoned: event.abandoned };
  }
}

/** One line of the human report, or null for events it leaves out. */
export function tableLine(event: KnockEvent, verbose: boolean): string | null {
  // Scanners leave thousands of knocks that time out at stage 1: the table lists them with -v only (and counts them).
  if (!verbose && (event.type === 'stage' || event.type === 'sequence' || event.type === 'timeout' || event.type === 'reordered' || event.type === 'stale')) return null;
  const record = eventRecord(event);
  const head = `${record.time}  ${String(record.event).padEnd(7)}`;
  switch (event.type) {
    case 'stage':
      return verbose ? `${head}  ${event.door.name}  ${event.ip}  stage ${event.stage}/${event.door.sequence.length}` : null;
    case 'open':
      return `${head}  ${event.door.name}  ${event.ip}${event.firewall === undefined ? '' : ` on firewall ${event.firewall}`}`;
    case 'timeout':
      return `${head}  ${event.door.name}  ${event.ip}  gave up at stage ${event.stage}`;
    case 'start':
    case 'stop':
      return `${head}  ${event.door}  ${event.ip}  ${event.command === '' ? '(empty command)' : event.command}`;
    case 'extend':
      return `${head}  ${event.door}  ${event.ip}  stop postponed to ${record.until}`;
    case 'exit':
      return event.result.status === 0 && !verbose ? null : `${head}  ${event.door}  ${event.ip}  ${event.action} command: ${describeOutcome(event.result)}`;
    case 'exhausted':
      return `${head}  ${event.door.name}  one-time sequences used up; door disabled`;
    case 'sequence':
      return verbose ? `${head}  ${event.door.name}  next one-time sequence ${record.sequence}` : null;
    case 'evicted':
      return `${head}  ${event.count} source(s) dropped (MaxSources)`;
    case 'error':
      return `${head}  ${event.message}`;
    case 'reordered':
      return `${head}  ${event.input}  ${event.ip}  stamped ${record.stamp}, before the knock read before it: counted at this time`;
    case 'stale':
      return `${head}  ${event.input}  ${event.ip}  stamped ${record.stamp}, more than MaxKnockAge before the knocks read before it: ignored, as the daemon would`;
    case 'future':
    case 'clock-step':
      return null; // replay has no wall clock: these never happen here
  }
}

/** Collects output lines and writes them in large pieces: one write per event would cost more than the replay. */
export class LineBuffer {
  private lines: string[] = [];
  private size = 0;

  constructor(private readonly out: NodeJS.WritableStream) {}

  write(line: string): void {
    this.lines.push(line);
    this.size += line.length;
    if (this.size >= 64 * 1024) this.flush();
  }

  flush(): void {
    if (this.lines.length === 0) return;
    this.out.write(`${this.lines.join('\n')}\n`);
    this.lines = [];
    this.size = 0;
  }
}

/** How many knockers the summary names per door before it only counts the rest. */
const SUMMARY_NAMES = 10;

/** The closing summary: what was read, and which doors opened for whom. */
export function formatSummary(summary: ReplaySummary): string {
  const lines: string[] = [];
  for (const f of summary.files) {
    lines.push(
      `${f.file}${f.firewall === null ? '' : ` (firewall ${f.firewall})`}: ${f.lines} lines: ${f.matched} knock lines parsed, ${f.skipped} skipped (no port any door uses), ${f.ignored} other, ${f.notKnock} not TCP/UDP, ${f.missed} malformed${tooLongLines(f) > 0 ? `, ${tooLongLines(f)} too long` : ''}`,
    );
  }
  for (const input of summary.time) lines.push(...timeLines(input));
  if (summary.timeouts > 0) lines.push(`${summary.timeouts} knock${summary.timeouts === 1 ? '' : 's'} timed out before the last step (-v lists them)`);
  if (summary.opens.size === 0) {
    lines.push('no door opened');
  } else {
    for (const [door, byIp] of summary.opens) {
      const total = [...byIp.values()].reduce((a, b) => a + b, 0);
      const named = [...byIp].slice(0, SUMMARY_NAMES).map(([ip, n]) => (n > 1 ? `${ip} (${n}x)` : ip));
      const whom = byIp.size > SUMMARY_NAMES ? `${named.join(', ')} and ${byIp.size - SUMMARY_NAMES} more sources (--json lists every event)` : named.join(', ');
      lines.push(`door ${door} opened ${total} time${total === 1 ? '' : 's'} for ${whom}`);
    }
  }
  return lines.join('\n');
}

/** What the ordering rule had to do for one input, and gaps that hint at a wrong year or a missing stretch of log. */
function timeLines(input: InputTime): string[] {
  const lines: string[] = [];
  if (input.stale > 0) {
    lines.push(`${input.input}: ${input.stale} knock${input.stale === 1 ? '' : 's'} stamped more than MaxKnockAge before the knocks read before ${input.stale === 1 ? 'it' : 'them'}: ignored, as the daemon would (-v lists them)`);
  }
  if (input.reordered > 0) {
    lines.push(
      `${input.input}: ${input.reordered} knock${input.reordered === 1 ? '' : 's'} stamped before the knock read before ${input.reordered === 1 ? 'it' : 'them'} ` +
        `(up to ${duration(input.largestStepBackMs)} back): counted at that later time, so no sequence outlives its Seq_Timeout (-v lists them)`,
    );
  }
  if (input.longGaps > 0) {
    const shown = input.firstGaps.map((gap) => `${new Date(gap.from).toISOString()} → ${new Date(gap.to).toISOString()}`).join(', ');
    lines.push(`${input.input}: ${input.longGaps} gap${input.longGaps === 1 ? '' : 's'} of more than a day between knocks: ${shown}${input.longGaps > input.firstGaps.length ? ', …' : ''}`);
  }
  return lines;
}

function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 172_800_000) return `${Math.round(ms / 3_600_000)} h`;
  return `${Math.round(ms / 86_400_000)} days`;
}
