/**
 * What replay reports: one JSON object or table line per event, and the closing summary (what was read, which
 * doors opened for whom, and what the time rules had to do).
 */
import { describeOutcome } from '../actions/runner.js';
import type { DoorConfig } from '../config/types.js';
import { COUNTERS, linesJson, linesText } from '../daemon/status-report.js';
import type { KnockEvent } from '../engine/events.js';
import type { InputTime } from '../engine/time-gate.js';
import { tooLongLines } from '../formats/registry.js';
import type { FileRead, RepeatedPackets } from '../inputs/archive.js';
import { safeText } from '../safe-text.js';
import type { TextOut } from './progress.js';

/** What became of one input: its lines or packets, what the time rules had to do, repeats, where reading stopped. */
export interface InputSummary extends FileRead {
  /** Null when no hit of it reached the doors. */
  time: InputTime | null;
  /** Packets it held that an earlier input had already delivered (they were handed on once). */
  repeats: RepeatedPackets[];
  /** The firewall it is the log of (a collector's archive: replay's --firewall-from or the config's pattern), or null. */
  firewall: string | null;
}

export interface ReplaySummary {
  /** In the order they were read (rotated sets oldest first). */
  inputs: InputSummary[];
  /** TCP/UDP packets handed to the doors. */
  packets: number;
  /** door name → ip (with the firewall, when the logs name one) → number of opens. */
  opens: Map<string, Map<string, number>>;
  /** door name → reason → number of refused one-time knocks (spent rolling sequences, refused encrypted messages). */
  refused: Map<string, Map<string, number>>;
  /** Knocks that gave up before the door's last step (Seq_Timeout passed). */
  timeouts: number;
  events: number;
  /** --execute: commands run, and those that failed (exit status, signal, could not start, time limit). */
  commands: { run: number; failed: number };
}

/** Whether the replay did all it should: every input read to its end and no command failed (else exit status 1). */
export function replayComplete(summary: ReplaySummary): boolean {
  return summary.commands.failed === 0 && summary.inputs.every((input) => input.problem === null);
}

/** The JSON object of one event (replay --json). */
export function eventRecord(event: KnockEvent): Record<string, unknown> {
  const time = new Date(event.time).toISOString();
  switch (event.type) {
    case 'stage':
      return { time, event: 'stage', door: event.door.name, ip: event.ip, stage: event.stage, of: stepsOf(event.door) };
    case 'open':
      return {
        time,
        event: 'open',
        door: event.door.name,
        ip: event.ip,
        ...(event.request === undefined ? {} : { port: event.request.port, duration: event.request.duration, knockIp: event.request.knockIp }),
        ...(event.period === undefined ? {} : { period: event.period }),
        ...(event.firewall === undefined ? {} : { firewall: event.firewall }),
      };
    case 'refused':
      return { time, event: 'refused', door: event.door.name, ip: event.ip, reason: event.reason, detail: event.detail };
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
  // Scanners leave thousands of knocks that time out at stage 1 (or, on an encrypted door's span, messages that never
  // complete): the table lists them with -v only (and counts them).
  if (!verbose && (event.type === 'stage' || event.type === 'sequence' || event.type === 'timeout' || event.type === 'reordered' || event.type === 'stale')) return null;
  if (!verbose && event.type === 'refused' && event.reason === 'incomplete') return null;
  const record = eventRecord(event);
  const head = `${record.time}  ${String(record.event).padEnd(7)}`;
  switch (event.type) {
    case 'stage':
      return verbose ? `${head}  ${event.door.name}  ${event.ip}  stage ${event.stage}/${stepsOf(event.door)}` : null;
    case 'open':
      return `${head}  ${event.door.name}  ${event.ip}${openNote(event)}${event.firewall === undefined ? '' : ` on firewall ${event.firewall}`}`;
    case 'refused':
      return `${head}  ${event.door.name}  ${event.ip}  ${event.reason}: ${event.detail}`;
    case 'timeout':
      return `${head}  ${event.door.name}  ${event.ip}  gave up at stage ${event.stage}`;
    case 'start':
    case 'stop':
      return `${head}  ${event.door}  ${event.ip}  ${event.command === '' ? '(empty command)' : event.command}`;
    case 'extend':
      return `${head}  ${event.door}  ${event.ip}  stop postponed to ${record.until}`;
    case 'exit':
      // Only --execute runs commands: each one's status and output are shown.
      return `${head}  ${event.door}  ${event.ip}  ${event.action} command: ${describeOutcome(event.result)}${commandOutput(event.result.output)}`;
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

/** A command's output under its exit line, indented and made safe for a terminal. */
function commandOutput(output: string): string {
  const text = output.replace(/\n$/, '');
  return text === '' ? '' : text.split('\n').map((line) => `\n    | ${safeText(line)}`).join('');
}

/** Knocks of the door's sequence: a rolling door's Sequence_Length, else its (current) sequence's. */
function stepsOf(door: DoorConfig): number {
  return door.rolling?.length ?? door.sequence.length;
}

/** What the table adds to an open: the request of an encrypted message, the period of a rolling sequence. */
function openNote(event: Extract<KnockEvent, { type: 'open' }>): string {
  if (event.request !== undefined) {
    const { port, duration, knockIp } = event.request;
    return `  port ${port} for ${duration} s${knockIp === event.ip ? '' : ` (knocked from ${knockIp})`}`;
  }
  return event.period === undefined ? '' : `  sequence of period ${event.period}`;
}

/** Collects output lines and writes them in large pieces: one write per event would cost more than the replay. */
export class LineBuffer {
  private lines: string[] = [];
  private size = 0;

  constructor(private readonly out: TextOut) {}

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

/**
 * The closing summary as one JSON object (replay --json prints it last, as `{"summary": …}`). Its shape is
 * documented in README.md ("Replay: what would have opened"); counters have the names of `status --json`.
 */
export function summaryRecord(summary: ReplaySummary): Record<string, unknown> {
  return {
    inputs: summary.inputs.map((input) => ({
      input: input.source.name,
      kind: input.source.kind,
      firewall: input.firewall,
      lines: input.lines === null ? null : { ...linesJson(input.lines), tooLong: tooLongLines(input.lines) },
      capture: input.capture === null ? null : { packets: input.capture.packets, knockPorts: input.capture.hits },
      time: {
        [COUNTERS.knocksStale.name]: input.time?.stale ?? 0,
        [COUNTERS.knocksReordered.name]: input.time?.reordered ?? 0,
        largestStepBackMs: input.time?.largestStepBackMs ?? 0,
        longGaps: input.time?.longGaps ?? 0,
        firstLongGaps: (input.time?.firstGaps ?? []).map((gap) => ({ from: new Date(gap.from).toISOString(), to: new Date(gap.to).toISOString() })),
      },
      repeats: input.repeats.map((repeat) => ({ of: repeat.of, packets: repeat.packets })),
      problem: input.problem,
    })),
    packets: summary.packets,
    opens: [...summary.opens].flatMap(([door, byIp]) => [...byIp].map(([ip, count]) => ({ door, ip, count }))),
    refused: [...summary.refused].flatMap(([door, byReason]) => [...byReason].map(([reason, count]) => ({ door, reason, count }))),
    timeouts: summary.timeouts,
    events: summary.events,
    commands: summary.commands,
    complete: replayComplete(summary),
  };
}

/** The closing summary: what was read, and which doors opened for whom. */
export function formatSummary(summary: ReplaySummary): string {
  const lines: string[] = [];
  for (const input of summary.inputs) {
    const label = `${input.source.label}${input.firewall === null ? '' : ` (firewall ${input.firewall})`}`;
    if (input.lines !== null) {
      const tooLong = tooLongLines(input.lines);
      lines.push(`${label}: lines: ${linesText(linesJson(input.lines))}${tooLong > 0 ? `, too long (over MaxLineLength, skipped unread) ${tooLong}` : ''}`);
    }
    if (input.capture !== null) lines.push(`${label}: packets read ${input.capture.packets}, to a port a door watches ${input.capture.hits}`);
    if (input.problem !== null) lines.push(input.problem);
    for (const repeat of input.repeats) lines.push(repeatLine(label, repeat, summary));
    if (input.time !== null) lines.push(...timeLines(label, input.time));
  }
  if (summary.timeouts > 0) lines.push(`${summary.timeouts} knock${summary.timeouts === 1 ? '' : 's'} timed out before the last step (-v lists them)`);
  if (summary.commands.run > 0) {
    lines.push(`${summary.commands.run} command${summary.commands.run === 1 ? '' : 's'} run, ${summary.commands.failed} failed${summary.commands.failed > 0 ? ' (their exit lines above say how)' : ''}`);
  }
  for (const [door, byReason] of summary.refused) {
    const total = [...byReason.values()].reduce((a, b) => a + b, 0);
    const reasons = [...byReason].map(([reason, n]) => `${n} ${reason}`).join(', ');
    lines.push(`door ${door} refused ${total} one-time knock${total === 1 ? '' : 's'}: ${reasons}${byReason.has('incomplete') ? ' (-v lists the incomplete ones)' : ''}`);
  }
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
  // File names come from the command line and may hold anything.
  return lines.map(safeText).join('\n');
}

/** An input that holds packets of another: a copy, or two logs of one firewall. */
function repeatLine(label: string, repeat: RepeatedPackets, summary: ReplaySummary): string {
  const of = summary.inputs.find((input) => input.source.name === repeat.of)?.source.label ?? repeat.of;
  const all = repeat.packets === repeat.total;
  return (
    `${label}: ${all ? 'all' : `${repeat.packets} of`} its ${repeat.total} knock packets are also in ${of} (the same packet in the same second): each was counted once. ` +
    (all ? `${label} looks like a copy of ${of}: give one of them` : 'Two logs of one firewall (kern.log and syslog both get the kernel\'s lines)? Give one of them')
  );
}

/** What the ordering rule had to do for one input, and gaps that hint at a wrong year or a missing stretch of log. */
function timeLines(label: string, input: InputTime): string[] {
  const lines: string[] = [];
  if (input.stale > 0) {
    lines.push(`${label}: ${input.stale} knock${input.stale === 1 ? '' : 's'} stamped more than MaxKnockAge before the knocks read before ${input.stale === 1 ? 'it' : 'them'}: ignored, as the daemon would (-v lists them)`);
  }
  if (input.reordered > 0) {
    lines.push(
      `${label}: ${input.reordered} knock${input.reordered === 1 ? '' : 's'} stamped before the knock read before ${input.reordered === 1 ? 'it' : 'them'} ` +
        `(up to ${duration(input.largestStepBackMs)} back): counted at that later time, so no sequence outlives its Seq_Timeout (-v lists them)`,
    );
  }
  if (input.longGaps > 0) {
    const shown = input.firstGaps.map((gap) => `${new Date(gap.from).toISOString()} → ${new Date(gap.to).toISOString()}`).join(', ');
    lines.push(`${label}: ${input.longGaps} gap${input.longGaps === 1 ? '' : 's'} of more than a day between knocks: ${shown}${input.longGaps > input.firstGaps.length ? ', …' : ''}`);
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
