/**
 * The public face of the daemon's status: `knocktail status --json` (its shape is documented in README.md,
 * "`knocktail status`", and stays stable) and the labels of the text view. The control socket carries the
 * daemon's own DaemonStatus; this module maps its internal names to the documented ones, so renaming an
 * internal field never renames a public one, and a counter added to StatusCounters or DecoderCounters does
 * not compile until it has a public name and a label here.
 */
import type { DecoderCounters } from '../formats/registry.js';
import type { FollowerStatus } from '../inputs/follower.js';
import type { InputStatus, Loss } from '../inputs/input.js';
import type { JournalStatus } from '../inputs/journal.js';
import type { LogFilesStatus } from '../inputs/log-files.js';
import type { DaemonStatus, StatusCounters } from './control.js';

/** Version of the `status --json` shape: raised when a field is renamed or removed (additions keep it). */
export const STATUS_FORMAT = 1;

/** A counter's public name and what the text view calls it. */
export interface CounterName {
  name: string;
  label: string;
}

/** The daemon's counters, in the order the text view shows them. */
export const COUNTERS: { readonly [K in keyof StatusCounters]: CounterName } = {
  linesRead: { name: 'logLinesRead', label: 'log lines read' },
  linesMatched: { name: 'logLinesRecognised', label: 'recognised as TCP/UDP packets by a log format' },
  hits: { name: 'packets', label: 'TCP/UDP packets (from log lines or capture)' },
  visible: { name: 'knocks', label: "knocks (packets a door could see: its port, flags, source, destination)" },
  stages: { name: 'stagesReached', label: 'stages reached' },
  opens: { name: 'opens', label: 'doors opened' },
  timeouts: { name: 'sequenceTimeouts', label: 'sequence timeouts' },
  evicted: { name: 'sourcesDropped', label: 'sources dropped by MaxSources' },
  refused: { name: 'knocksRefused', label: 'one-time knocks refused (a spent rolling sequence; an encrypted message: replay, auth, window…)' },
  commandsRun: { name: 'commandsRun', label: 'commands run' },
  commandsFailed: { name: 'commandsFailed', label: 'commands failed' },
  stopsRun: { name: 'stopsRun', label: 'stops run' },
  stopsLate: { name: 'stopsLate', label: 'stops run late (a second or more)' },
  extended: { name: 'stopsPostponed', label: 'stops postponed by a repeat knock (On_Reopen = extend)' },
  knocksStale: { name: 'knocksTooOld', label: 'knocks ignored: stamped more than MaxKnockAge ago (an old log line read again)' },
  knocksFuture: { name: 'knocksFromTheFuture', label: "knocks ignored: stamped ahead of this host's clock" },
  knocksReordered: { name: 'knocksOutOfOrder', label: 'knocks stamped before the knock read before them (counted at that later time)' },
  clockSteps: { name: 'clockSteps', label: 'steps of the wall clock (NTP, suspend)' },
  errors: { name: 'errors', label: 'errors' },
  reloads: { name: 'reloads', label: 'reloads' },
  failedReloads: { name: 'reloadsFailed', label: 'reloads failed' },
};

/**
 * What became of the lines a log input read (its decoder's counters). "Skipped" lines hold no port any door
 * watches and were never parsed (binary junk included); "ignored" ones no log format recognised.
 */
export const LINE_COUNTERS: { readonly [K in keyof DecoderCounters]: CounterName } = {
  lines: { name: 'read', label: 'read' },
  matched: { name: 'packets', label: 'TCP/UDP packets' },
  skipped: { name: 'skipped', label: 'skipped unparsed (no port a door watches in them)' },
  ignored: { name: 'ignored', label: 'ignored (no log format recognised them)' },
  notKnock: { name: 'otherProtocols', label: 'other protocols (ICMP…)' },
  missed: { name: 'malformed', label: 'malformed (a format claimed them, a field was missing or invalid)' },
};

/** A log input's line counts under their public names (status --json `inputs[].lines`, replay's summary). */
export function linesJson(counters: DecoderCounters): Record<string, number> {
  return renamed(counters, LINE_COUNTERS);
}

/** A log input's line counts as the text views say them (status, replay): "read 4, TCP/UDP packets 3, …". */
export function linesText(lines: Record<string, number>): string {
  return Object.values(LINE_COUNTERS)
    .map(({ name, label }) => `${label} ${lines[name] ?? 0}`)
    .join(', ');
}

/** A followed file's fields under their public names (the follower's own names are internal). */
interface FileJson {
  path: string;
  missing: boolean;
  /** Bytes of the current file read, and its size when last looked at. */
  offset: number;
  size: number;
  /** Bytes still to read, in the current file and in rotated ones being finished. */
  lagBytes: number;
  rotations: number;
  truncations: number;
  oldFilesDraining: number;
  /** Lines dropped unread: longer than MaxLineLength. */
  linesDropped: number;
}

/** One file of a FirewallLog pattern: the firewall it names, where reading is, what became of its lines. */
interface PatternFileJson {
  firewall: string | null;
  file: FileJson;
  lines: Record<string, number>;
}

/** A FirewallLog pattern's files under their public names. */
interface PatternJson {
  pattern: string;
  maxFollowedFiles: number;
  followed: PatternFileJson[];
  /** Files of the pattern beyond MaxFollowedFiles: how many, the first few. */
  notFollowed: { count: number; first: string[] };
  /** Files refused: a {firewall} part that is no address or host name, or writable by anybody. */
  refused: { count: number; first: Array<{ path: string; reason: string }> };
}

/** What the live capture input reports (inputs/pcap-live.ts, status()). */
interface PcapFields {
  filter: string;
  promiscuous: boolean;
  snapLength: number;
  localAddresses: { v4: string[]; v6: string[] };
  hits: number;
  capturePid: number | null;
  restarts: number;
  receivedTwice: number;
  discarded: number;
  lastError: string | null;
  interfaces: Array<{ name: string; linkType: string | null; error: string | null; received: number; dropped: number; ifdropped: number }>;
}

/** A live capture's fields under their public names. */
interface CaptureJson {
  filter: string;
  promiscuous: boolean;
  snapLength: number;
  localAddresses: { v4: string[]; v6: string[] };
  /** Packets handed on as knock hits. */
  packets: number;
  /** Packets knocktail could not keep up with. */
  discarded: number;
  capturePid: number | null;
  restarts: number;
  /**
   * Knock packets both capture processes received while a filter change overlapped them, delivered once: the
   * interfaces' `received` counts them twice (and may count twice a few more the old process had not read yet).
   */
  receivedTwice: number;
  lastError: string | null;
  interfaces: Array<{ name: string; linkType: string | null; error: string | null; received: number; droppedByKernel: number; droppedByInterface: number }>;
}

export interface InputJson {
  id: string;
  kind: string;
  /** Log inputs: what became of their lines (LINE_COUNTERS names). */
  lines?: Record<string, number>;
  file?: FileJson;
  files?: PatternJson;
  journal?: JournalStatus;
  capture?: CaptureJson;
  /** Inputs that can lose what they read: what they lost so far, by cause (count, unit, cause, remedy); [] when nothing. */
  lost?: Loss[];
  /** Any other input: its fields as it reports them (not yet part of the stable shape). */
  [field: string]: unknown;
}

/** `knocktail status --json`. Times are ms since the epoch. */
export interface StatusJson {
  statusFormat: number;
  knocktail: string;
  pid: number;
  state: DaemonStatus['state'];
  startedAt: number;
  now: number;
  config: string;
  mode: DaemonStatus['mode'];
  stateDir: string;
  openDoors: DaemonStatus['open'];
  runningCommands: DaemonStatus['running'];
  knocksInProgress: DaemonStatus['attempts'];
  inputs: InputJson[];
  counters: Record<string, number>;
  memory: { rssBytes: number; heapUsedBytes: number };
}

export function statusJson(status: DaemonStatus): StatusJson {
  return {
    statusFormat: STATUS_FORMAT,
    knocktail: status.knocktail,
    pid: status.pid,
    state: status.state,
    startedAt: status.startedAt,
    now: status.now,
    config: status.config,
    mode: status.mode,
    stateDir: status.stateDir,
    openDoors: status.open,
    runningCommands: status.running,
    knocksInProgress: status.attempts,
    inputs: status.inputs.map(inputJson),
    counters: renamed(status.counters, COUNTERS),
    memory: { rssBytes: status.memory.rss, heapUsedBytes: status.memory.heapUsed },
  };
}

function fileJson(f: FollowerStatus): FileJson {
  return {
    path: f.path,
    missing: f.missing,
    offset: f.offset,
    size: f.size,
    lagBytes: f.lagBytes,
    rotations: f.rotations,
    truncations: f.truncations,
    oldFilesDraining: f.oldFilesDraining,
    linesDropped: f.droppedLines,
  };
}

function renamed<K extends string>(values: { readonly [key in K]: number }, names: { readonly [key in K]: CounterName }): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of Object.keys(names) as K[]) out[names[key].name] = values[key] ?? 0;
  return out;
}

export function inputJson(input: InputStatus): InputJson {
  const { id, kind, decoder, lost, ...fields } = input as InputStatus & { decoder?: DecoderCounters; lost?: Loss[] };
  const json: InputJson = { id, kind };
  if (decoder !== undefined) json.lines = linesJson(decoder);
  if (lost !== undefined) json.lost = lost;
  if (kind === 'file') {
    json.file = fileJson(fields as unknown as FollowerStatus);
  } else if (kind === 'files') {
    const p = fields as unknown as LogFilesStatus;
    json.files = {
      pattern: p.pattern,
      maxFollowedFiles: p.maxFiles,
      followed: p.files.map((f) => ({ firewall: f.firewall, file: fileJson(f), lines: renamed(f.decoder, LINE_COUNTERS) })),
      notFollowed: p.notFollowed,
      refused: p.refused,
    };
  } else if (kind === 'journal') {
    const j = fields as unknown as JournalStatus;
    json.journal = { running: j.running, pid: j.pid, cursor: j.cursor, entries: j.entries, rejected: j.rejected, restarts: j.restarts, missed: j.missed };
  } else if (kind === 'pcap') {
    const p = fields as unknown as PcapFields;
    json.capture = {
      filter: p.filter,
      promiscuous: p.promiscuous,
      snapLength: p.snapLength,
      localAddresses: p.localAddresses,
      packets: p.hits,
      discarded: p.discarded,
      capturePid: p.capturePid,
      restarts: p.restarts,
      receivedTwice: p.receivedTwice,
      lastError: p.lastError,
      interfaces: p.interfaces.map((i) => ({ name: i.name, linkType: i.linkType, error: i.error, received: i.received, droppedByKernel: i.dropped, droppedByInterface: i.ifdropped })),
    };
  } else {
    Object.assign(json, fields);
  }
  return json;
}
