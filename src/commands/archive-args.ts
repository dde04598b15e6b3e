/**
 * What replay and test-format share on their command lines: the FILE… arguments (files, `-` for standard input),
 * --boot-time and --format.
 */
import type { SourceRef } from '../config/types.js';
import { type BootTime, thisMachineBootTime } from '../formats/timestamp.js';
import { type ArchiveSource, openArchives } from '../inputs/archive-source.js';
import { safeText } from '../safe-text.js';
import { UsageError } from './common.js';

/**
 * `--boot-time ISO`: when the machine that wrote uptime stamps (dmesg, kmsg) booted. Without it, this machine's boot
 * time is assumed, and marked as a guess: replay and test-format then warn for every file whose dates depend on it.
 * A UsageError when the text is no date.
 */
export function bootTimeOption(text: string | undefined): BootTime {
  if (text === undefined) return { ms: thisMachineBootTime(), guessed: true };
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new UsageError(`--boot-time "${text}" is not a date (use ISO 8601, e.g. 2026-11-21T04:09:00Z)`);
  return { ms, guessed: false };
}

/** Where a --format list came from, for its errors: the command line, not the config. */
export const FORMAT_OPTION: SourceRef = { file: 'the command line (--format)', line: 0 };

/** `--format a,b` as names. */
export function formatNames(text: string): string[] {
  return text.split(',').map((name) => name.trim());
}

/**
 * Opens the FILE… arguments of replay and test-format (`-` is standard input), all of them before any is read.
 * A file given twice is a UsageError; when some cannot be opened, each problem is written to `err` (naming the file
 * and what to do) and the result is null.
 */
export async function openInputs(names: readonly string[], err: NodeJS.WritableStream): Promise<ArchiveSource[] | null> {
  const { sources, problems, twice } = await openArchives(names);
  if (twice.length > 0 || problems.length > 0) await Promise.all(sources.map((source) => source.close()));
  if (twice.length > 0) throw new UsageError(twice.map(safeText).join('\n'));
  if (problems.length === 0) return sources;
  err.write(problems.map((problem) => `knocktail: ${safeText(problem)}\n`).join(''));
  return null;
}
