/**
 * `knocktail replay`: drives the same matcher and action layer as the daemon from archived logs, in
 * virtual time taken from the lines themselves, and reports what happened (or would have: commands only
 * run with --execute). Events come out in event-time order; a stop appears Cmd_Timeout after its start.
 */
import { VirtualClock } from './actions/clock.js';
import { describeOutcome, DryRunner, ShellRunner } from './actions/runner.js';
import { MemoryStopStore } from './actions/stop-store.js';
import type { Config, SourceRef } from './config/types.js';
import type { KnockEvent } from './events.js';
import { type DecoderCounters, FormatRegistry, LineDecoder, tooLongLines } from './formats/registry.js';
import type { KnockHit } from './hit.js';
import { readArchives } from './inputs/archive.js';
import { Pipeline } from './pipeline.js';

export interface ReplayOptions {
  config: Config;
  files: string[];
  /** Run the commands (default: only report them). */
  execute: boolean;
  /** One JSON object per line instead of a table. */
  json: boolean;
  /** Also list every stage reached and every timeout (the table; JSON always has them). */
  verbose: boolean;
  /** Log formats to use instead of the config's LogFormat. */
  formats: string[] | null;
  /** When the machine that wrote uptime-stamped lines booted (ms), for dmesg/kmsg formats. */
  bootTime: number;
  /**
   * The capturing host's addresses (canonical): doors without Target then accept only these destinations, as
   * knockd judges a live capture. Default null: every destination counts (a log's LOG rule already chose).
   */
  local?: ReadonlySet<string> | null;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

export interface ReplaySummary {
  files: Array<{ file: string } & DecoderCounters>;
  hits: number;
  /** door name → ip → number of opens. */
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
      return { time, event: 'open', door: event.door.name, ip: event.ip };
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
  }
}

/** One line of the human report, or null for events it leaves out. */
function tableLine(event: KnockEvent, verbose: boolean): string | null {
  // Scanners leave thousands of knocks that time out at stage 1: the table lists them with -v only (and counts them).
  if (!verbose && (event.type === 'stage' || event.type === 'sequence' || event.type === 'timeout')) return null;
  const record = eventRecord(event);
  const head = `${record.time}  ${String(record.event).padEnd(7)}`;
  switch (event.type) {
    case 'stage':
      return verbose ? `${head}  ${event.door.name}  ${event.ip}  stage ${event.stage}/${event.door.sequence.length}` : null;
    case 'open':
      return `${head}  ${event.door.name}  ${event.ip}`;
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
  }
}

export async function replay(options: ReplayOptions): Promise<ReplaySummary> {
  const { config, out } = options;
  const registry = FormatRegistry.load(config);
  const formatsAt: SourceRef = config.optionsAt.logFormats ?? { file: config.path, line: 0 };
  const formats = registry.resolve(options.formats ?? config.options.logFormats, formatsAt);
  const clock = new VirtualClock();
  const summary: ReplaySummary = { files: [], hits: 0, opens: new Map(), timeouts: 0, events: 0 };
  const output = new LineBuffer(out);
  const report = (event: KnockEvent): void => {
    // A dry run's "exit" would only echo the dry runner.
    if (event.type === 'exit' && !options.execute) return;
    summary.events++;
    if (event.type === 'timeout') summary.timeouts++;
    if (event.type === 'open') {
      let byIp = summary.opens.get(event.door.name);
      if (byIp === undefined) summary.opens.set(event.door.name, (byIp = new Map()));
      byIp.set(event.ip, (byIp.get(event.ip) ?? 0) + 1);
    }
    const line = options.json ? JSON.stringify(eventRecord(event)) : tableLine(event, options.verbose);
    if (line !== null) output.write(line);
  };
  const pipeline = new Pipeline(config, {
    clock,
    runner: options.execute ? new ShellRunner() : new DryRunner(),
    store: new MemoryStopStore(),
    isLocal: localPredicate(options.local ?? null),
    sinks: [report],
    onWarning: (message) => options.err.write(`warning: ${message}\n`),
  });
  const { matcher, actions } = pipeline;
  const settle = (): Promise<void> => actions.settled();

  /** Fires, in time order, every sequence timeout and scheduled stop due by `time`. */
  const advance = async (time: number): Promise<void> => {
    for (;;) {
      const deadline = matcher.nextDeadline();
      const due = clock.nextDue();
      const expireFirst = deadline !== null && deadline <= time && (due === null || deadline <= due);
      if (expireFirst) {
        matcher.expire(deadline);
      } else if (due !== null && due <= time) {
        await clock.advanceTo(due, settle);
      } else {
        break;
      }
    }
    if (Number.isFinite(time)) await clock.advanceTo(time, settle);
  };

  const decoders: Array<{ file: string; decoder: LineDecoder }> = [];
  const archiveOptions = {
    decoderFor: (file: string): LineDecoder => {
      const decoder = new LineDecoder(formats, matcher);
      decoders.push({ file, decoder });
      return decoder;
    },
    maxLineLength: config.options.maxLineLength,
    bootTime: options.bootTime,
    onWarning: (message: string) => options.err.write(`warning: ${message}\n`),
    watches: (proto: KnockHit['proto'], port: number) => matcher.watches(proto, port),
  };
  /** Whether a sequence timeout or a scheduled stop falls due by `time`. */
  const dueBy = (time: number): boolean => (matcher.nextDeadline() ?? Infinity) <= time || (clock.nextDue() ?? Infinity) <= time;
  const feed = async (hits: KnockHit[]): Promise<void> => {
    for (const hit of hits) {
      // Most hits find nothing due and start no command: they are handled without a single await.
      if (dueBy(hit.time)) await advance(hit.time);
      else clock.passTo(hit.time);
      summary.hits++;
      pipeline.hit(hit);
      if (actions.busy) await settle();
    }
  };
  for await (const batch of readArchives(options.files, archiveOptions)) await feed(batch);
  await advance(Infinity);
  await settle();
  output.flush();
  summary.files = decoders.map(({ file, decoder }) => ({ file, ...decoder.counters }));
  return summary;
}

function localPredicate(local: ReadonlySet<string> | null): ((dst: string) => boolean) | null {
  return local === null ? null : (dst) => local.has(dst);
}

/** Collects output lines and writes them in large pieces: one write per event would cost more than the replay. */
class LineBuffer {
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
      `${f.file}: ${f.lines} lines: ${f.matched} knock lines parsed, ${f.skipped} skipped (no port any door uses), ${f.ignored} other, ${f.notKnock} not TCP/UDP, ${f.missed} malformed${tooLongLines(f) > 0 ? `, ${tooLongLines(f)} too long` : ''}`,
    );
  }
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
