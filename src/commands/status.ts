/**
 * `knocktail status`: asks the running daemon (through the root-only control socket in its state
 * directory) what it is doing: open doors and when they close, commands running, knocks in progress,
 * each input's position and lag, counters. `-c` names the config whose StateDir to look in.
 */
import { resolve } from 'node:path';
import { loadConfig } from '../config/parse.js';
import { ConfigError } from '../config/types.js';
import { ControlError, type DaemonStatus, requestStatus, type StatusCounters } from '../daemon/control.js';
import { COUNTERS, inputJson, linesText, statusJson } from '../daemon/status-report.js';
import type { InputStatus } from '../inputs/input.js';
import { jsonText, safeText } from '../safe-text.js';
import { DEFAULT_CONFIG, EXIT, parseCommandLine } from './common.js';

export const USAGE = `usage: knocktail status [-c FILE] [--state-dir DIR] [--json]

Shows what the running daemon is doing: open doors (source, since when, when they close), commands
running, knocks in progress, each input's position and lag, and counters.

  -c, --config FILE    the daemon's config, to find its StateDir (default ${DEFAULT_CONFIG})
      --state-dir DIR  ask the daemon of this state directory instead (when the config does not load)
      --json           print the status as one JSON object (documented in the README; times in ms since the epoch)
  -h, --help           print this help

It asks through StateDir/control.sock, which only root can use. Exit status: 0 the daemon answered,
1 no daemon runs there (or it cannot be asked), 2 bad command line.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    {
      config: { type: 'string', short: 'c', default: DEFAULT_CONFIG },
      'state-dir': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (positionals.length > 0) {
    process.stderr.write(`knocktail status: unexpected argument ${JSON.stringify(positionals[0])}\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  let stateDir: string;
  if (values['state-dir'] !== undefined) {
    stateDir = resolve(values['state-dir']);
  } else {
    try {
      stateDir = loadConfig(values.config).options.stateDir;
    } catch (error) {
      const message = error instanceof ConfigError ? error.message : (error as Error).message;
      process.stderr.write(`${message}\nknocktail status: cannot find the StateDir in ${values.config}; name it with --state-dir DIR\n`);
      return EXIT.failure;
    }
  }
  let status: DaemonStatus;
  try {
    status = await requestStatus(stateDir);
  } catch (error) {
    if (!(error instanceof ControlError)) throw error;
    process.stderr.write(`knocktail status: ${error.message}\n`);
    return EXIT.failure;
  }
  process.stdout.write(values.json ? `${jsonText(statusJson(status))}\n` : safeText(formatStatus(status)));
  return EXIT.ok;
}

/** The human-readable report. */
export function formatStatus(status: DaemonStatus): string {
  const { now } = status;
  const out: string[] = [];
  out.push(
    `knocktail ${status.knocktail}, pid ${status.pid}, ${status.state} since ${stamp(status.startedAt)} (${span(now - status.startedAt)})`,
    `config ${status.config}, mode ${status.mode}, state directory ${status.stateDir}`,
    `memory: RSS ${megabytes(status.memory.rss)}, JavaScript heap ${megabytes(status.memory.heapUsed)}`,
    '',
  );

  out.push(status.open.length === 0 ? 'Open doors: none' : `Open doors (${status.open.length}):`);
  for (const door of status.open) {
    const closes = door.closesAt <= now ? `closing now (due ${span(now - door.closesAt)} ago)` : `closes ${stamp(door.closesAt)} (in ${span(door.closesAt - now)})`;
    out.push(`  ${door.door}  ${door.ip}${door.firewall === undefined ? '' : ` on ${door.firewall}`}  open since ${stamp(door.openedAt)}, ${closes}`);
  }

  if (status.running.length > 0) {
    out.push(`Commands running (${status.running.length}):`);
    for (const command of status.running) out.push(`  ${command.door}  ${command.ip}  ${command.action} for ${span(now - command.since)}: ${command.command}`);
  }

  const { attempts } = status;
  if (attempts.oldest === null) {
    out.push('Knocks in progress: none');
  } else {
    const oldest = attempts.oldest;
    out.push(
      `Knocks in progress: ${attempts.count} from ${attempts.sources} source(s); oldest: ${oldest.door} ${oldest.ip} ` +
        `at stage ${oldest.stage}/${oldest.of} since ${stamp(oldest.started)}, gives up ${stamp(oldest.deadline)}`,
    );
  }

  out.push(status.inputs.length === 0 ? 'Inputs: none' : 'Inputs:');
  for (const input of status.inputs) out.push(...describeInput(input).map((line) => `  ${line}`));

  out.push('Counters:', ...counterLines(status.counters).map((line) => `  ${line}`));
  return `${out.join('\n')}\n`;
}

/** The counters in groups, one line each; a counter no group names (a new one) goes on a last line. */
const COUNTER_GROUPS: ReadonlyArray<ReadonlyArray<keyof StatusCounters>> = [
  ['linesRead', 'linesMatched'],
  ['hits', 'visible'],
  ['stages', 'opens', 'timeouts', 'evicted'],
  ['commandsRun', 'commandsFailed', 'stopsRun', 'stopsLate', 'extended'],
  ['errors', 'reloads', 'failedReloads'],
];

function counterLines(counters: StatusCounters): string[] {
  const grouped = new Set(COUNTER_GROUPS.flat());
  const rest = (Object.keys(COUNTERS) as Array<keyof StatusCounters>).filter((key) => !grouped.has(key));
  return [...COUNTER_GROUPS, rest]
    .filter((group) => group.length > 0)
    .map((group) => group.map((key) => `${COUNTERS[key].label} ${counters[key] ?? 0}`).join(', '));
}

/** One input: its id and kind, where it is, what became of its lines; an input of another kind, its fields as they come. */
function describeInput(input: InputStatus): string[] {
  const json = inputJson(input);
  const lines = [`${json.id} (${json.kind})`];
  const { file, files, journal, capture } = json;
  if (file !== undefined) {
    lines.push(
      `  position ${file.offset} of ${file.size} bytes, lag ${file.lagBytes} bytes${file.missing ? ' (the file is missing)' : ''}`,
      `  rotations ${file.rotations}, truncations ${file.truncations}, rotated files still being read ${file.oldFilesDraining}, ` +
        `lines dropped (longer than MaxLineLength, or cut off in a rotated file) ${file.linesDropped}`,
    );
  }
  if (files !== undefined) {
    lines.push(`  files followed ${files.followed.length} (MaxFollowedFiles ${files.maxFollowedFiles}), not followed ${files.notFollowed.count}, refused ${files.refused.count}`);
    for (const { firewall, file: f } of files.followed) {
      lines.push(`  ${firewall === null ? '' : `${firewall}: `}${f.path}: lag ${f.lagBytes} bytes, position ${f.offset} of ${f.size}${f.missing ? ' (the file is missing)' : ''}`);
    }
    if (files.notFollowed.count > 0) lines.push(`  not followed (MaxFollowedFiles): ${files.notFollowed.first.join(', ')}${more(files.notFollowed.count, files.notFollowed.first.length)}`);
    for (const { path, reason } of files.refused.first) lines.push(`  refused: ${path}: ${reason}`);
    if (files.refused.count > files.refused.first.length) lines.push(`  refused:${more(files.refused.count, files.refused.first.length)}`);
  }
  if (journal !== undefined) {
    lines.push(
      `  journalctl ${journal.running ? `running (pid ${journal.pid})` : 'not running'}, entries read ${journal.entries}, ` +
        `rejected (not kernel messages, or no usable text or time) ${journal.rejected}, restarts ${journal.restarts}`,
    );
  }
  if (capture !== undefined) {
    lines.push(`  filter: ${capture.filter}`);
    for (const i of capture.interfaces) {
      lines.push(`  ${i.name}${i.linkType === null ? '' : ` (${i.linkType})`}: ${i.received} packets received, ${i.droppedByKernel} dropped by the kernel, ${i.droppedByInterface} by the interface${i.error === null ? '' : `; error: ${i.error}`}`);
    }
    lines.push(`  knock packets ${capture.packets}, discarded (knocktail could not keep up) ${capture.discarded}, capture restarts ${capture.restarts}, knock packets received twice during them ${capture.receivedTwice}${capture.lastError === null ? '' : `; last error: ${capture.lastError}`}`);
  }
  if (json.lines !== undefined) lines.push(`  lines: ${linesText(json.lines)}`);
  if (file === undefined && files === undefined && journal === undefined && capture === undefined) {
    const { id: _id, kind: _kind, lines: _lines, ...fields } = json;
    for (const [key, value] of Object.entries(fields)) lines.push(`  ${key}: ${flat(value)}`);
  }
  return lines;
}

function more(count: number, listed: number): string {
  return count > listed ? ` and ${count - listed} more` : '';
}

function flat(value: unknown): string {
  if (value === null || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return value.map(flat).join(', ');
  return Object.entries(value)
    .map(([key, inner]) => `${key} ${flat(inner)}`)
    .join(', ');
}

function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** Local time, to the second. */
function stamp(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A duration, roughly: 42 s, 5 min 3 s, 2 h 10 min, 3 d 4 h. */
function span(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}
