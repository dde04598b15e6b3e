/**
 * The progress line replay keeps on a terminal while it reads a large input: bytes and lines read, the rate and
 * the time left. Redrawn in place a few times a second and erased before anything else is written there, and at
 * the end. The command makes one only when standard error is a terminal and the output is not JSON.
 */
import type { ArchiveSource } from '../inputs/archive-source.js';

/** Inputs smaller than this are read too fast for a progress line to help. */
export const LARGE_INPUT_BYTES = 64 * 1024 * 1024;
const REDRAW_MS = 250;
const ERASE_LINE = '\r\x1b[K';

/** Where replay writes text: a stream, or a wrapper that erases the progress line first. */
export interface TextOut {
  write(text: string): unknown;
}

export class ProgressLine {
  private lines = 0;
  private shown = false;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private readonly started = Date.now();
  /** All the bytes to read, when every input's size is known (else the time left is not). */
  private readonly total: number | null;

  constructor(
    private readonly terminal: NodeJS.WriteStream,
    private readonly sources: readonly ArchiveSource[],
  ) {
    this.total = sources.every((source) => source.size !== null) ? sources.reduce((sum, source) => sum + source.size!, 0) : null;
  }

  /** `lines` more were read: redraws the line when it is due and the input is large. */
  read(lines: number): void {
    this.lines += lines;
    const now = Date.now();
    if (now - this.lastDraw < REDRAW_MS) return;
    const bytes = this.sources.reduce((sum, source) => sum + source.bytesRead, 0);
    if (Math.max(bytes, this.total ?? 0) < LARGE_INPUT_BYTES) return;
    this.lastDraw = now;
    this.shown = true;
    const text = describe(bytes, this.total, this.lines, Math.max(1, now - this.started));
    // A terminal that does not tell its width (0) is taken as 80 columns.
    const width = (this.terminal.columns || 80) - 1;
    this.terminal.write(`${ERASE_LINE}${text.length > width ? text.slice(0, width) : text}`);
  }

  /** Erases the line (before other output, and at the end); the next read draws it again. */
  clear(): void {
    if (!this.shown) return;
    this.shown = false;
    this.lastDraw = Number.NEGATIVE_INFINITY;
    this.terminal.write(ERASE_LINE);
  }

  /** `out`, erasing the progress line before each write (when both go to the same terminal, nothing mixes). */
  before(out: TextOut): TextOut {
    return {
      write: (text: string) => {
        this.clear();
        return out.write(text);
      },
    };
  }
}

function describe(bytes: number, total: number | null, lines: number, elapsedMs: number): string {
  const rate = (bytes / elapsedMs) * 1000;
  const read = total === null ? megabytes(bytes) : `${megabytes(bytes)} of ${megabytes(total)} (${Math.floor((bytes / Math.max(1, total)) * 100)} %)`;
  const left = total === null || rate === 0 ? '' : `, about ${seconds((total - bytes) / rate)} left`;
  return `replay: ${read}, ${lines.toLocaleString('en-US')} lines, ${megabytes(rate)}/s${left}`;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function seconds(s: number): string {
  if (s < 90) return `${Math.max(1, Math.round(s))} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
