/**
 * Where log formats come from (the shipped `formats/*.conf` files and the config's own blocks) and
 * the per-input decoder that tries the chosen formats on every line.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFormatFile } from '../config/parse.js';
import { type Config, type Diagnostic, type LogFormatBlock, type SourceRef, ConfigError } from '../config/types.js';
import type { KnockHit } from '../hit.js';
import { type DecodeContext, CompiledFormat, Outcome, type PortWatch, watchedPortAt } from './logformat.js';
import { TimestampParser } from './timestamp.js';

/** The `formats/` directory of the installed package (dist/src/formats/ → ../../../formats). */
export const SHIPPED_FORMATS_DIR = fileURLToPath(new URL('../../../formats/', import.meta.url));

export class FormatRegistry {
  private readonly blocks = new Map<string, LogFormatBlock>();
  private readonly compiled = new Map<string, CompiledFormat>();

  /** Shipped formats plus the config's blocks (a config block replaces a shipped one of the same name). */
  static load(config: Config | null, shippedDir = SHIPPED_FORMATS_DIR): FormatRegistry {
    const registry = new FormatRegistry();
    for (const file of readdirSync(shippedDir).filter((f) => f.endsWith('.conf')).sort()) {
      const path = join(shippedDir, file);
      for (const block of parseFormatFile(readFileSync(path, 'utf8'), path)) registry.blocks.set(block.name, block);
    }
    registry.add(config?.logFormats ?? []);
    return registry;
  }

  /**
   * Adds the user's blocks (a block replaces a format of the same name) and compiles them at once, so a broken
   * regex is reported now even when unused; throws a ConfigError listing every problem.
   */
  add(blocks: readonly LogFormatBlock[]): void {
    const problems: Diagnostic[] = [];
    for (const block of blocks) {
      this.blocks.set(block.name, block);
      this.compiled.delete(block.name);
      try {
        this.get(block.name);
      } catch (error) {
        if (error instanceof ConfigError) problems.push(...error.diagnostics);
        else throw error;
      }
    }
    if (problems.length > 0) throw new ConfigError(problems);
  }

  names(): string[] {
    return [...this.blocks.keys()].sort();
  }

  has(name: string): boolean {
    return this.blocks.has(name);
  }

  /** The compiled format `name`; throws ConfigError when its regexes are invalid, Error when unknown. */
  get(name: string): CompiledFormat {
    let format = this.compiled.get(name);
    if (format === undefined) {
      const block = this.blocks.get(name);
      if (block === undefined) throw new Error(`unknown log format "${name}"`);
      format = new CompiledFormat(block);
      this.compiled.set(name, format);
    }
    return format;
  }

  /** The formats named (in order); unknown names are reported against `at` (where LogFormat was set). */
  resolve(names: readonly string[], at: SourceRef): CompiledFormat[] {
    const unknown = names.filter((name) => !this.blocks.has(name));
    if (unknown.length > 0) {
      throw new ConfigError(
        unknown.map((name) => ({
          at,
          message: `unknown log format "${name}"`,
          hint: `use one of: ${this.names().join(', ')}; or define <logformat ${name}> … </logformat> in the config`,
        })),
      );
    }
    return names.map((name) => this.get(name));
  }
}

export interface DecoderCounters {
  lines: number;
  /** Lines of a knock format for TCP/UDP (whether or not a door watches their port). */
  matched: number;
  /** Lines no format's `required` accepted (other kernel messages, other prefixes). */
  ignored: number;
  /** Format lines for other protocols (ICMP…). */
  notKnock: number;
  /** Format lines with a missing or invalid field. */
  missed: number;
  /** Lines not parsed because they carry no port any door watches (daemon and replay only). */
  skipped: number;
}

/** Lines that were counted but had no outcome: those over MaxLineLength, skipped unread (LineDecoder.skipLongLine). */
export function tooLongLines(c: DecoderCounters): number {
  return c.lines - c.matched - c.ignored - c.notKnock - c.missed - c.skipped;
}

/** One input's line → KnockHit step: tries each format in order, first that owns the line wins. */
const CARRIAGE_RETURN = 0x0d;

export class LineDecoder {
  readonly counters: DecoderCounters = { lines: 0, matched: 0, ignored: 0, notKnock: 0, missed: 0, skipped: 0 };
  /** Matches per format name. */
  readonly perFormat = new Map<string, number>();
  readonly timestamps = new TimestampParser();
  /** Format that owned the last decoded line, if any (test-format reports it). */
  lastFormat: CompiledFormat | null = null;
  lastOutcome: Outcome = Outcome.Ignored;
  private readonly result: { hit: KnockHit | null } = { hit: null };

  constructor(
    readonly formats: readonly CompiledFormat[],
    private readonly watch: PortWatch | null = null,
  ) {
    for (const format of formats) this.perFormat.set(format.name, 0);
  }

  /**
   * Decodes a block of whole lines (`\n`-separated, no final newline; a trailing `\r` is dropped) and calls `onHit`
   * per hit; returns how many lines it held. Lines longer than `maxLineLength` characters are reported with their
   * index in the block and skipped. With one format whose port marker is known and a port watch, lines that carry
   * no watched port are counted without being cut out of the block: on a busy firewall that is most of them.
   */
  decodeLines(text: string, ctx: DecodeContext, onHit: (hit: KnockHit) => void, maxLineLength: number, onLongLine: (index: number) => void): number {
    const marker = this.formats.length === 1 && this.watch !== null ? this.formats[0]!.portMarker : null;
    // The next occurrence of the marker in the block: every character is searched once, whatever the lines.
    let next = marker === null ? -1 : text.indexOf(marker);
    let index = 0;
    for (let start = 0; ; index++) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      let watched = marker === null;
      while (next >= 0 && next < end) {
        if (!watched && watchedPortAt(text, next + marker!.length, end, this.watch!)) watched = true;
        next = text.indexOf(marker!, next + 1);
      }
      if (end - start > maxLineLength) {
        this.skipLongLine();
        onLongLine(index);
      } else if (!watched) {
        this.counters.lines++;
        this.counters.skipped++;
      } else {
        const hit = this.decode(text.slice(start, text.charCodeAt(end - 1) === CARRIAGE_RETURN ? end - 1 : end), ctx, marker !== null);
        if (hit !== null) onHit(hit);
      }
      if (end === text.length) return index + 1;
      start = end + 1;
    }
  }

  /** A line over MaxLineLength: counted as read, never parsed (the reader says so). */
  skipLongLine(): void {
    this.counters.lines++;
  }

  /**
   * The hit on this line, or null (foreign line, non-knock, malformed, or a port no door watches).
   * `portChecked`: the caller has already found a watched port after the format's port marker.
   */
  decode(line: string, ctx: DecodeContext, portChecked = false): KnockHit | null {
    this.counters.lines++;
    let skipped = false;
    for (const format of this.formats) {
      const outcome = format.decode(line, ctx, this.timestamps, this.result, this.watch, portChecked);
      if (outcome === Outcome.Ignored) continue;
      // Another format might still read a watched port from this line.
      if (outcome === Outcome.Skipped) {
        skipped = true;
        continue;
      }
      this.lastFormat = format;
      this.lastOutcome = outcome;
      if (outcome === Outcome.Matched) {
        this.counters.matched++;
        this.perFormat.set(format.name, this.perFormat.get(format.name)! + 1);
        return this.result.hit;
      }
      if (outcome === Outcome.NotKnock) this.counters.notKnock++;
      else this.counters.missed++;
      return null;
    }
    this.lastFormat = null;
    this.lastOutcome = skipped ? Outcome.Skipped : Outcome.Ignored;
    if (skipped) this.counters.skipped++;
    else this.counters.ignored++;
    return null;
  }
}
