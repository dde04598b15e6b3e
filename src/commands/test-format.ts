/**
 * `knocktail test-format`: what fail2ban-regex is to fail2ban. Runs log formats over a log file the way the
 * daemon and replay read it and tells, line by line if asked, what they make of it.
 */
import { readFileSync } from 'node:fs';
import { defaultOptions, parseFormatFile } from '../config/parse.js';
import { type Config, ConfigError, type LogFormatBlock } from '../config/types.js';
import { type CompiledFormat, type DecodeContext, Outcome } from '../formats/logformat.js';
import { FormatRegistry, LineDecoder, tooLongLines } from '../formats/registry.js';
import { type BootTime, guessedDatesWarning, type Stamp, type TimestampForm } from '../formats/timestamp.js';
import { formatFlags, type KnockHit } from '../hit.js';
import { eachLine } from '../inputs/archive.js';
import type { ArchiveSource } from '../inputs/archive-source.js';
import { safeText } from '../safe-text.js';
import { bootTimeOption, FORMAT_OPTION, formatNames, openInputs } from './archive-args.js';
import { EXIT, loadConfigOrReport, parseCommandLine, UsageError } from './common.js';
import { type DetectionListener, detectFormats, detectionText } from './detect-format.js';

export const USAGE = `usage: knocktail test-format [options] FILE…

Runs log formats over each FILE (plain or .gz; - reads standard input) as the daemon and replay would, and
reports how many lines they read as knocks (TCP/UDP packets), which lines they claimed but could not read,
and which timestamp forms they found. Lines are split as replay splits them; lines longer than
MaxLineLength (the config's with -c, else 65536 bytes) are skipped and counted. A file cut short (a
truncated .gz) is read as far as it goes. Nothing is started and no command runs.

Which formats (default: iptables):
  -f, --format NAMES    formats to try on each line, in order (first that claims a line wins). Shipped:
                        iptables, ufw, ulogd, dmesg, dmesg-raw, dmesg-iso, kmsg, filterlog, mikrotik,
                        openwrt, vyos, firewalld; or the names of -c/-b blocks (filterlog: pfSense and
                        OPNsense; openwrt: logread output; vyos: also EdgeOS)
  -f auto               tell which formats read each FILE: every known format (shipped, -c and -b blocks) is
                        tried on every line on its own; lists each with the lines it reads and suggests
                        the LogFormat to use
  -c, --config FILE     know the config's <logformat> blocks; without --format, use its LogFormat
  -b, --block FILE      a file of <logformat NAME> ... </logformat> blocks; without --format, use them all
  -r, --regex REGEX     a one-line format: REGEX is its required regex and must name the fields in groups:
                        (?<ipclient>...) (?<ipserver>...) (?<protocol>...) (?<port>...), optionally (?<flags>...)
                        (?<sport>...) (?<interface>...) (?<time>...); sub-patterns work as in blocks, e.g.
                        --regex '{{kernel}}KNOCK {{netfilter}}'
Output:
  -o, --output FORM     text (default): the totals; json: one JSON object per line read as a knock (its
                        file, line, fields and the hit), then one with each file's totals
      --print-missed    also show each line a format claimed but could not read, and why
      --print-ignored   also show each line no format claimed (with -f auto: no known format)
      --boot-time ISO   when the machine that wrote uptime stamps (dmesg, kmsg) booted
                        (default: this machine's boot time, with a warning)
  -h, --help            this help

Exit status: 0 every file was read (whatever matched), 1 a format or config is broken or a FILE cannot
be read (or was read only in part), 2 bad command line (a file given twice, too).`;

/** `--format auto`: detect instead of read. */
const AUTO = 'auto';

/** What each timestamp form looks like, for the totals. */
const FORM_TEXT: Record<TimestampForm, string> = {
  rfc3339: 'RFC 3339 (2026-11-21T04:16:16.719457+00:00)',
  syslog: 'traditional syslog (Nov 21 04:16:16, local time; the year from the file\'s date)',
  uptime: 'time since boot ([  446.351538], kmsg µs) plus the boot time',
  epoch: 'seconds or µs since 1970',
  ctime: 'ctime with the year (Thu Nov 21 04:16:16 2026, local time; OpenWrt logread)',
};

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    {
      format: { type: 'string', short: 'f' },
      config: { type: 'string', short: 'c' },
      block: { type: 'string', short: 'b' },
      regex: { type: 'string', short: 'r' },
      output: { type: 'string', short: 'o', default: 'text' },
      'print-missed': { type: 'boolean', default: false },
      'print-ignored': { type: 'boolean', default: false },
      'boot-time': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (positionals.length === 0) throw new UsageError(`test-format needs a log file (or - for standard input)\n\n${USAGE}`);
  if (values.output !== 'text' && values.output !== 'json') throw new UsageError(`--output must be text or json, not "${values.output}"\n\n${USAGE}`);
  if (values.regex !== undefined && (values.format !== undefined || values.block !== undefined)) {
    throw new UsageError(`--regex is a format of its own: use it without --format and --block\n\n${USAGE}`);
  }
  const bootTime = bootTimeOption(values['boot-time']);

  let config: Config | null = null;
  if (values.config !== undefined) {
    config = loadConfigOrReport(values.config, process.stderr);
    if (config === null) return EXIT.failure;
  }
  let formats: CompiledFormat[];
  try {
    formats = chooseFormats(config, values);
  } catch (error) {
    process.stderr.write(`${error instanceof ConfigError ? error.message : `knocktail: ${(error as Error).message}`}\n`);
    return EXIT.failure;
  }
  const sources = await openInputs(positionals, process.stderr);
  if (sources === null) return EXIT.failure;

  const maxLineLength = (config?.options ?? defaultOptions()).maxLineLength;
  const json = values.output === 'json';
  const guessed = values.format === undefined && values.block === undefined && values.regex === undefined && config === null;
  let complete = true;
  try {
    for (const [index, source] of sources.entries()) {
      // Several files in text: a blank line between their reports.
      if (index > 0 && !json) process.stdout.write('\n');
      let problem: string | null;
      if (source.kind === 'capture') {
        await source.close();
        problem = `${source.label}: this is a packet capture (pcap or pcapng), not a log: knocktail replay reads captures`;
      } else if (values.format === AUTO) {
        problem = await detect(source, formats, { json, printMissed: values['print-missed'], printIgnored: values['print-ignored'], bootTime, maxLineLength });
      } else {
        const report = new Report(source, formats, json, values['print-missed'], values['print-ignored'], guessed);
        problem = await report.read(bootTime, maxLineLength);
        report.finish(problem);
      }
      if (problem !== null) {
        process.stderr.write(`knocktail: ${safeText(problem)}\n`);
        complete = false;
      }
    }
  } finally {
    // Each report closes its file; the files after one that failed unexpectedly are closed here.
    await Promise.all(sources.map((source) => source.close()));
  }
  return complete ? EXIT.ok : EXIT.failure;
}

/** The formats the options name, compiled; throws ConfigError (broken block or regex) or Error (unknown name). */
function chooseFormats(config: Config | null, values: { format?: string | undefined; block?: string | undefined; regex?: string | undefined }): CompiledFormat[] {
  const registry = FormatRegistry.load(config);
  if (values.regex !== undefined) {
    const block: LogFormatBlock = { name: 'regex', at: { file: '--regex', line: 1 }, fields: { required: { pattern: values.regex, at: { file: '--regex', line: 1 } } } };
    registry.add([block]);
    return [registry.get('regex')];
  }
  let blockNames: string[] = [];
  if (values.block !== undefined) {
    const blocks = parseFormatFile(readFileSync(values.block, 'utf8'), values.block);
    if (blocks.length === 0) throw new Error(`${values.block} holds no <logformat NAME> block`);
    registry.add(blocks);
    blockNames = blocks.map((block) => block.name);
  }
  if (values.format === AUTO) return registry.names().map((name) => registry.get(name));
  const names = values.format !== undefined
    ? formatNames(values.format)
    : blockNames.length > 0 ? blockNames : (config?.options.logFormats ?? ['iptables']);
  // Names from --format are the command line's; the others were checked where they were written.
  return registry.resolve(names, values.format !== undefined ? FORMAT_OPTION : { file: values.block ?? config?.path ?? 'the default format', line: 0 });
}

/** `--format auto`: writes which formats read the file (text or one JSON object, after any per-line records); returns where reading stopped early, or null. */
async function detect(
  source: ArchiveSource,
  formats: readonly CompiledFormat[],
  options: { json: boolean; printMissed: boolean; printIgnored: boolean; bootTime: BootTime; maxLineLength: number },
): Promise<string | null> {
  const out: string[] = [];
  const file = source.name;
  const listener: DetectionListener = {
    missed: options.printMissed
      ? (line, format, reason, text) => out.push(options.json ? JSON.stringify({ file, line, result: 'missed', format: format.name, reason, text }) : `missed  line ${line} (${format.name}: ${reason}): ${text}`)
      : undefined,
    unread: options.printIgnored ? (line, text) => out.push(options.json ? JSON.stringify({ file, line, result: 'ignored', text }) : `ignored line ${line}: ${text}`) : undefined,
  };
  const { detection, problem } = await detectFormats(source, formats, { ...options, preferLast: defaultOptions().logFormats, onWarning: (message) => process.stderr.write(`warning: ${safeText(message)}\n`) }, listener);
  if (out.length > 0) process.stdout.write(`${out.join('\n')}\n`);
  process.stdout.write(options.json ? `${JSON.stringify({ detect: { ...detection, problem } })}\n` : detectionText(detection, { printedUnread: options.printIgnored }));
  return problem;
}

/** Reads the file through a decoder and writes what happened to each line and the totals. */
class Report {
  private readonly decoder: LineDecoder;
  private readonly out: string[] = [];
  private readonly forms: Record<TimestampForm, number> = { rfc3339: 0, syslog: 0, uptime: 0, epoch: 0, ctime: 0 };

  private readonly file: string;

  constructor(
    private readonly source: ArchiveSource,
    private readonly formats: readonly CompiledFormat[],
    private readonly json: boolean,
    private readonly printMissed: boolean,
    private readonly printIgnored: boolean,
    /** No format was named: the default was assumed, so say how to find the right one when it reads nothing. */
    private readonly guessed: boolean,
  ) {
    this.decoder = new LineDecoder(formats);
    this.file = source.label;
  }

  /**
   * Reads the file as the daemon and replay do (the same line framing, .gz, MaxLineLength); returns where reading
   * stopped before the end (the lines before were read), or null.
   */
  async read(bootTime: BootTime, maxLineLength: number): Promise<string | null> {
    const { source } = this;
    const ctx: DecodeContext = { input: source.name, reference: source.reference, bootTime: bootTime.ms, fallbackTime: source.reference, arrival: null };
    const problem = await eachLine(source, maxLineLength, {
      line: (text, number) => this.line(text, number, ctx),
      longLine: (number) => {
        this.decoder.countLongLine();
        process.stderr.write(`warning: ${safeText(this.file)}: line ${number} is longer than ${maxLineLength} bytes; skipped\n`);
      },
    });
    const guessed = guessedDatesWarning(this.file, this.decoder.uptimeStamps, bootTime, source.modified);
    if (guessed !== null) process.stderr.write(`warning: ${safeText(guessed)}\n`);
    return problem;
  }

  private line(text: string, number: number, ctx: DecodeContext): void {
    const decoded = this.decoder.decode(text, ctx);
    switch (decoded.outcome) {
      case Outcome.Matched:
        if (decoded.stamp !== null) this.forms[decoded.stamp.form]++;
        if (this.json && decoded.hit !== null) this.emit(this.matchRecord(number, text, decoded.format, decoded.hit, decoded.stamp));
        return;
      case Outcome.NotKnock:
        return;
      case Outcome.Missed:
        if (this.printMissed) {
          if (this.json) this.emit({ file: this.source.name, line: number, result: 'missed', format: decoded.format.name, reason: decoded.reason, text });
          else this.emit(`missed  line ${number} (${decoded.format.name}: ${decoded.reason}): ${text}`);
        }
        return;
      default:
        if (this.printIgnored) this.emit(this.json ? { file: this.source.name, line: number, result: 'ignored', text } : `ignored line ${number}: ${text}`);
    }
  }

  private matchRecord(number: number, text: string, format: CompiledFormat, hit: KnockHit, stamp: Stamp | null): Record<string, unknown> {
    return {
      file: this.source.name,
      line: number,
      result: 'matched',
      format: format.name,
      fields: format.fields(text),
      timestamp: stamp?.form ?? null,
      hit: {
        time: new Date(hit.time).toISOString(),
        src: hit.src,
        dst: hit.dst,
        proto: hit.proto,
        dport: hit.dport,
        sport: hit.sport,
        flags: hit.flags === null ? null : formatFlags(hit.flags),
        iface: hit.iface,
      },
    };
  }

  private emit(record: string | Record<string, unknown>): void {
    this.out.push(typeof record === 'string' ? record : JSON.stringify(record));
    // Written in large pieces: one write per line would cost more than the decoding.
    if (this.out.length >= 1000) this.flush();
  }

  private flush(): void {
    if (this.out.length > 0) process.stdout.write(`${this.out.join('\n')}\n`);
    this.out.length = 0;
  }

  /** Writes the totals; `problem`: where reading stopped early (the totals count the lines before it). */
  finish(problem: string | null): void {
    const { decoder } = this;
    const { lines: read, matched, notKnock, missed, ignored } = decoder.counters;
    const totals = { lines: read, matched, notKnock, missed, ignored, tooLong: tooLongLines(decoder.counters) };
    const perFormat = Object.fromEntries(decoder.perFormat);
    const forms = Object.fromEntries(Object.entries(this.forms).filter(([, count]) => count > 0));
    if (this.json) {
      this.emit({ totals: { file: this.source.name, formats: perFormat, ...totals, timestamps: forms, problem } });
      this.flush();
      return;
    }
    this.flush();
    const count = (n: number) => String(n).padStart(String(totals.lines).length);
    const names = this.formats.map((format) => format.name);
    const byFormat = names.length > 1 ? ` (${names.map((name) => `${name} ${perFormat[name]}`).join(', ')})` : '';
    const lines = [
      `${this.file}: ${totals.lines} line${totals.lines === 1 ? '' : 's'}${problem === null ? '' : ' (reading stopped early, see the error)'}, format${names.length > 1 ? 's' : ''} ${names.join(', ')}`,
      `  matched      ${count(totals.matched)}  read as a TCP/UDP packet${byFormat}`,
      `  not a knock  ${count(totals.notKnock)}  a format's lines for another protocol`,
      `  missed       ${count(totals.missed)}  a format's lines with a field it could not read${totals.missed > 0 && !this.printMissed ? ' (--print-missed shows them)' : ''}`,
      `  ignored      ${count(totals.ignored)}  lines no format's required regex accepts${totals.ignored > 0 && !this.printIgnored ? ' (--print-ignored shows them)' : ''}`,
      ...(totals.tooLong > 0 ? [`  too long     ${count(totals.tooLong)}  lines over MaxLineLength, skipped unread`] : []),
      ...(this.guessed && totals.matched === 0 && totals.lines > 0 ? [`no line is in the default format ${names[0]}: knocktail test-format -f auto ${this.file} tells which format reads this file`] : []),
    ];
    if (this.formats.every((format) => !format.hasTime)) {
      lines.push('timestamps: the format has no time field; the daemon uses the time it reads each line');
    } else if (Object.keys(forms).length === 0) {
      lines.push('timestamps: none read');
    } else {
      for (const [form, n] of Object.entries(forms)) lines.push(`timestamps: ${n} ${FORM_TEXT[form as TimestampForm]}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  }
}
