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
import type { PortWatch } from '../watch.js';
import { type DecodeContext, type Decoded, CompiledFormat, IGNORED, Outcome, SKIPPED, watchedPortAt } from './logformat.js';
import { TimestampParser } from './timestamp.js';

/** The `formats/` directory of the installed package (dist/src/formats/ → ../../../formats). */
export const SHIPPED_FORMATS_DIR = fileURLToPath(new URL('../../../formats/', import.meta.url));

/** The shipped blocks, read once per directory: they do not change while knocktail runs. */
const shipped = new Map<string, LogFormatBlock[]>();

function shippedBlocks(dir: string): LogFormatBlock[] {
  let blocks = shipped.get(dir);
  if (blocks === undefined) {
    blocks = [];
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.conf')).sort()) {
      const path = join(dir, file);
      blocks.push(...parseFormatFile(readFileSync(path, 'utf8'), path));
    }
    shipped.set(dir, blocks);
  }
  return blocks;
}

export class FormatRegistry {
  private readonly blocks = new Map<string, LogFormatBlock>();
  private readonly compiled = new Map<string, CompiledFormat>();

  /** Shipped formats plus the config's blocks (a config block replaces a shipped one of the same name). */
  static load(config: Config | null, shippedDir = SHIPPED_FORMATS_DIR): FormatRegistry {
    const registry = new FormatRegistry();
    for (const block of shippedBlocks(shippedDir)) registry.blocks.set(block.name, block);
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

  /** The formats named (in order); unknown names are reported against `at` (where they were named). */
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

/**
 * The formats a config's log inputs use, compiled: its LogFormat, or `override` (replay --format), whose unknown
 * names are blamed on where the override came from. The one place formats are chosen; throws ConfigError.
 */
export function resolveFormats(config: Config, override?: { names: readonly string[]; at: SourceRef }): CompiledFormat[] {
  const registry = FormatRegistry.load(config);
  if (override !== undefined) return registry.resolve(override.names, override.at);
  return registry.resolve(config.options.logFormats, config.optionsAt.logFormats ?? { file: config.path, line: 0 });
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

/** Lines that were counted but had no outcome: those over MaxLineLength, skipped unread (LineDecoder.countLongLine). */
export function tooLongLines(c: DecoderCounters): number {
  return c.lines - c.matched - c.ignored - c.notKnock - c.missed - c.skipped;
}

const CARRIAGE_RETURN = 0x0d;

/** One input's line → KnockHit step: tries each format in order, first that owns the line wins; counts what it saw. */
export class LineDecoder {
  readonly counters: DecoderCounters = { lines: 0, matched: 0, ignored: 0, notKnock: 0, missed: 0, skipped: 0 };
  /** Matches per format name. */
  readonly perFormat = new Map<string, number>();
  private readonly timestamps = new TimestampParser();

  /** `watch`: lines for ports no door may use are counted as skipped without being parsed (null: parse every line). */
  constructor(
    readonly formats: readonly CompiledFormat[],
    private watch: PortWatch | null = null,
  ) {
    for (const format of formats) this.perFormat.set(format.name, 0);
  }

  /** The doors changed (reload): from now on lines are checked against this watch. */
  setWatch(watch: PortWatch): void {
    this.watch = watch;
  }

  /**
   * Decodes a block of whole lines (`\n`-separated, no final newline; a trailing `\r` is dropped) and calls `onHit`
   * per hit with the index in `text` where its line ends; returns how many lines the block held. With one format
   * whose port marker is known and a watch, lines that carry no watched port are counted without being cut out of
   * the block: on a busy firewall that is most of them.
   */
  decodeLines(text: string, ctx: DecodeContext, onHit: (hit: KnockHit, lineEnd: number) => void): number {
    const watch = this.watch;
    const marker = this.formats.length === 1 && watch !== null ? this.formats[0]!.portMarker : null;
    // The next occurrence of the marker in the block: every character is searched once, whatever the lines.
    let next = marker === null ? -1 : text.indexOf(marker);
    let index = 0;
    for (let start = 0; ; index++) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      let watched = marker === null;
      while (next >= 0 && next < end) {
        if (!watched && watchedPortAt(text, next + marker!.length, end, watch!)) watched = true;
        next = text.indexOf(marker!, next + 1);
      }
      if (!watched) {
        this.counters.lines++;
        this.counters.skipped++;
      } else {
        const decoded = this.decode(text.slice(start, text.charCodeAt(end - 1) === CARRIAGE_RETURN ? end - 1 : end), ctx, marker !== null);
        if (decoded.outcome === Outcome.Matched && decoded.hit !== null) onHit(decoded.hit, end);
      }
      if (end === text.length) return index + 1;
      start = end + 1;
    }
  }

  /** Stamps read as a time since boot (whose dates depend on the boot time). */
  get uptimeStamps(): number {
    return this.timestamps.uptimeStamps;
  }

  /** A line over MaxLineLength: counted as read, never parsed (the reader says so). */
  countLongLine(): void {
    this.counters.lines++;
  }

  /**
   * What the line is: a hit (Matched; no hit for a port no door watches), a format's line that is no knock or
   * could not be read, or nobody's. `portChecked`: the caller has already found a watched port after the format's
   * port marker.
   */
  decode(line: string, ctx: DecodeContext, portChecked = false): Decoded {
    this.counters.lines++;
    let skipped = false;
    for (const format of this.formats) {
      const decoded = format.decode(line, ctx, this.timestamps, this.watch, portChecked);
      // Another format might still read a watched port from this line.
      if (decoded.outcome === Outcome.Ignored) continue;
      if (decoded.outcome === Outcome.Skipped) {
        skipped = true;
        continue;
      }
      if (decoded.outcome === Outcome.Matched) {
        this.counters.matched++;
        this.perFormat.set(format.name, this.perFormat.get(format.name)! + 1);
      } else if (decoded.outcome === Outcome.NotKnock) {
        this.counters.notKnock++;
      } else {
        this.counters.missed++;
      }
      return decoded;
    }
    if (skipped) this.counters.skipped++;
    else this.counters.ignored++;
    return skipped ? SKIPPED : IGNORED;
  }
}
