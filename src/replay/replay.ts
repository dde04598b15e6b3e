/**
 * `knocktail replay`: a driver of the same engine as the daemon (docs/design.md), fed from archived logs and
 * captures in event time: the stamps are the clock, so it tells what would have happened (commands run only with
 * --execute). Events come out in event-time order; a stop appears Cmd_Timeout after its start. One-time sequence
 * files are marked in memory only, and so are spent rolling sequences and used encrypted messages: replay never
 * changes a file of the user's or the daemon's.
 */
import { VirtualClock } from '../actions/clock.js';
import { commandFailed, DryRunner, ShellRunner } from '../actions/runner.js';
import { MemoryStopStore } from '../actions/stop-store.js';
import { resolve } from 'node:path';
import { canonicalFirewall } from '../address.js';
import { FIREWALL_PLACEHOLDER, LogPattern } from '../config/log-pattern.js';
import type { Config, SourceRef } from '../config/types.js';
import { Engine } from '../engine/engine.js';
import type { KnockEvent } from '../engine/events.js';
import { LineDecoder, resolveFormats } from '../formats/registry.js';
import type { BootTime } from '../formats/timestamp.js';
import { type FileRead, liveLogName, readArchives, type RepeatedPackets } from '../inputs/archive.js';
import type { ArchiveSource } from '../inputs/archive-source.js';
import { MemoryUsedKnocks } from '../knocks/used.js';
import { MemoryOneTimeFiles } from '../matcher/one-time-files.js';
import type { ProgressLine, TextOut } from './progress.js';
import { eventRecord, LineBuffer, type ReplaySummary, tableLine } from './report.js';

export interface ReplayOptions {
  config: Config;
  /** The inputs, opened (inputs/archive-source.ts); each is read once. */
  sources: ArchiveSource[];
  /** Run the commands (default: only report them). */
  execute: boolean;
  /** One JSON object per line instead of a table. */
  json: boolean;
  /** Also list every stage reached and every timeout (the table; JSON always has them). */
  verbose: boolean;
  /** Log formats to use instead of the config's LogFormat, and where they were named. */
  formats: { names: string[]; at: SourceRef } | null;
  /** When the machine that wrote uptime-stamped lines booted, for dmesg/kmsg formats. */
  bootTime: BootTime;
  /**
   * `--firewall-from`: patterns with `{firewall}` (absolute) that tell which firewall each file is the log of.
   * Default (null or absent): the config's FirewallLog patterns with `{firewall}`.
   */
  firewallFrom?: string[] | null;
  /**
   * The capturing host's addresses (canonical): doors without Target then accept only these destinations, as
   * knockd judges a live capture. Default null: every destination counts (a log's LOG rule already chose).
   */
  local?: ReadonlySet<string> | null;
  out: TextOut;
  /** Warnings, and where reading an input stopped early. */
  err: TextOut;
  /** Told how far reading has come (a terminal's progress line), or null. */
  progress?: ProgressLine | null;
}

/**
 * Which firewall each replayed file is the log of (README, "Many firewalls, one knocktail"): its path, or the path
 * it had before rotation (`kern.log` for `kern.log.2.gz`), matched against the patterns; the first that matches
 * names it. A `{firewall}` part that is neither an address nor a host name is reported, and the file then names no
 * firewall. Remembered per file.
 */
function archiveFirewalls(patterns: readonly string[], warn: (message: string) => void): (file: string) => string | undefined {
  const compiled = patterns.map((pattern) => new LogPattern(pattern));
  const known = new Map<string, string | undefined>();
  return (file) => {
    if (known.has(file)) return known.get(file);
    let firewall: string | undefined;
    const path = resolve(file);
    for (const pattern of compiled) {
      const raw = pattern.match(path) ?? pattern.match(liveLogName(path));
      if (raw === null) continue;
      firewall = canonicalFirewall(raw) ?? undefined;
      if (firewall === undefined) warn(`${file}: its {firewall} part ${JSON.stringify(raw)} (${pattern.text}) is neither an IP address nor a host name; read as a log that names no firewall`);
      break;
    }
    known.set(file, firewall);
    return firewall;
  };
}

export async function replay(options: ReplayOptions): Promise<ReplaySummary> {
  const { config } = options;
  const formats = resolveFormats(config, options.formats ?? undefined);
  const summary: ReplaySummary = { inputs: [], packets: 0, opens: new Map(), refused: new Map(), timeouts: 0, events: 0, commands: { run: 0, failed: 0 } };
  const output = new LineBuffer(options.out);
  const report = (event: KnockEvent): void => {
    // A dry run's "exit" would only echo the dry runner.
    if (event.type === 'exit' && !options.execute) return;
    summary.events++;
    if (event.type === 'timeout') summary.timeouts++;
    if (event.type === 'exit') {
      summary.commands.run++;
      if (commandFailed(event.result)) summary.commands.failed++;
    }
    if (event.type === 'open') {
      let byIp = summary.opens.get(event.door.name);
      if (byIp === undefined) summary.opens.set(event.door.name, (byIp = new Map()));
      const knocker = event.firewall === undefined ? event.ip : `${event.ip} on firewall ${event.firewall}`;
      byIp.set(knocker, (byIp.get(knocker) ?? 0) + 1);
    }
    if (event.type === 'refused') {
      let byReason = summary.refused.get(event.door.name);
      if (byReason === undefined) summary.refused.set(event.door.name, (byReason = new Map()));
      byReason.set(event.reason, (byReason.get(event.reason) ?? 0) + 1);
    }
    const line = options.json ? JSON.stringify(eventRecord(event)) : tableLine(event, options.verbose);
    if (line !== null) output.write(line);
  };
  const warn = (message: string): void => void options.err.write(`warning: ${message}\n`);
  const local = options.local ?? null;
  const engine = new Engine(config, {
    time: { kind: 'event', clock: new VirtualClock() },
    runner: options.execute ? new ShellRunner() : new DryRunner(),
    store: new MemoryStopStore(),
    oneTimeFiles: new MemoryOneTimeFiles(),
    usedKnocks: new MemoryUsedKnocks(),
    isLocal: local === null ? null : (dst) => local.has(dst),
    sinks: [report],
    onWarning: warn,
  });
  const watch = engine.watch();
  const read: FileRead[] = [];
  let repeats: RepeatedPackets[] = [];
  const firewalls = archiveFirewalls(options.firewallFrom ?? config.options.firewallLogs.filter((log) => log.includes(FIREWALL_PLACEHOLDER)), warn);
  const archive = {
    decoderFor: () => new LineDecoder(formats, watch),
    maxLineLength: config.options.maxLineLength,
    bootTime: options.bootTime,
    onWarning: warn,
    watch,
    onRead: options.progress ? (lines: number) => options.progress!.read(lines) : undefined,
    onFileRead: (file: FileRead) => {
      read.push(file);
      if (file.problem !== null) options.err.write(`knocktail: ${file.problem}\n`);
    },
    onRepeats: (found: RepeatedPackets[]) => void (repeats = found),
    firewallOf: firewalls,
  };
  for await (const batch of readArchives(options.sources, archive)) {
    summary.packets += batch.length;
    await engine.feed(batch);
  }
  await engine.finish();
  output.flush();
  options.progress?.clear();
  const time = engine.status().inputs;
  summary.inputs = read.map((file) => ({
    ...file,
    time: time.find((input) => input.input === file.source.name) ?? null,
    repeats: repeats.filter((repeat) => repeat.input === file.source.name),
    firewall: firewalls(file.source.name) ?? null,
  }));
  return summary;
}
