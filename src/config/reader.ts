/**
 * The lexical layer shared by knockd.conf files and `formats/*.conf`: physical lines, knockd's
 * trimming and comments, and `<logformat NAME> … </logformat>` blocks. Everything else is handed
 * to the caller line by line. Problems are collected, not thrown, so one run reports them all.
 */
import { LOG_FIELDS, type Diagnostic, type LogField, type LogFormatBlock, type SourceRef } from './types.js';

/** Collects errors and warnings for one file. */
export class Report {
  readonly errors: Diagnostic[] = [];
  readonly warnings: Diagnostic[] = [];
  constructor(readonly file: string) {}

  at(line: number): SourceRef {
    return { file: this.file, line };
  }

  error(line: number, message: string, hint?: string): void {
    this.errors.push(diagnostic(this.at(line), message, hint));
  }

  warn(line: number, message: string, hint?: string): void {
    this.warnings.push(diagnostic(this.at(line), message, hint));
  }
}

function diagnostic(at: SourceRef, message: string, hint: string | undefined): Diagnostic {
  return hint === undefined ? { at, message } : { at, message, hint };
}

/** C `isspace`, as knockd's trim(): JavaScript's trim() would also eat non-breaking spaces that are data. */
const C_SPACE = /^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g;

export function trimC(text: string): string {
  return text.replace(C_SPACE, '');
}

/** A trimmed, non-blank, non-comment line and its 1-based number. */
export interface Line {
  text: string;
  number: number;
}

export const NAME_PATTERN = /^[A-Za-z0-9_.-]+$/;
const OPEN_TAG = /^<\s*logformat\b\s*([^>]*?)\s*>$/i;
const CLOSE_TAG = /^<\s*\/\s*logformat\s*>$/i;
const FIELD_NAMES = new Set<string>(LOG_FIELDS);

/** Walks `text`, collecting `<logformat>` blocks and passing every other meaningful line to `onLine`. */
export function walkLines(text: string, report: Report, onLine: (line: Line) => void): LogFormatBlock[] {
  // A UTF-8 byte order mark (Windows editors) would otherwise make the first line unparseable.
  const physical = text.replace(/^\uFEFF/, '').split('\n');
  const blocks = new BlockList(report);

  for (let index = 0; index < physical.length; index++) {
    const number = index + 1;
    const text = trimC(physical[index]!);
    if (text === '' || text.startsWith('#')) continue;
    const open = blocks.open;

    if (text.startsWith('<')) {
      const opening = OPEN_TAG.exec(text);
      if (opening) {
        if (open !== null) {
          report.error(number, `<logformat> opened inside <logformat ${open.name}> (line ${open.at.line})`, 'close the first block with </logformat> before opening another');
        }
        blocks.openBlock(opening[1]!, number);
      } else if (CLOSE_TAG.test(text)) {
        if (open === null) report.error(number, '</logformat> without an open <logformat NAME>', 'remove it or add the opening tag');
        blocks.close();
      } else {
        report.error(number, `"${text}" is not a <logformat NAME> or </logformat> tag`, 'blocks are written <logformat NAME> … </logformat>');
      }
    } else if (open === null) {
      onLine({ text, number });
    } else if (text.startsWith('[') && text.endsWith(']')) {
      report.error(open.at.line, `<logformat ${open.name}> is not closed before the section ${text} at line ${number}`, 'add </logformat> after its last field');
      blocks.close();
      onLine({ text, number });
    } else {
      index = readField(physical, index, open, report);
    }
  }

  const unclosed = blocks.open;
  if (unclosed !== null) {
    report.error(unclosed.at.line, `<logformat ${unclosed.name}> is never closed`, 'add </logformat> after its last field');
    blocks.close();
  }
  return blocks.done;
}

/** The blocks of one file, the one being read, and the duplicate-name check. */
class BlockList {
  readonly done: LogFormatBlock[] = [];
  open: LogFormatBlock | null = null;
  private readonly firstLine = new Map<string, number>();
  constructor(private readonly report: Report) {}

  /** Opens a block (closing one left open, which the caller has reported). */
  openBlock(name: string, line: number): void {
    this.close();
    if (name === '') this.report.error(line, '<logformat> needs a name', 'write <logformat NAME>, e.g. <logformat my-iptables>');
    else if (!NAME_PATTERN.test(name)) this.report.error(line, `logformat name "${name}" is invalid`, 'use letters, digits, "_", "." and "-" only');
    this.open = { name, at: this.report.at(line), fields: {} };
  }

  close(): void {
    const block = this.open;
    if (block === null) return;
    this.open = null;
    const first = this.firstLine.get(block.name);
    if (first !== undefined) {
      this.report.error(block.at.line, `<logformat ${block.name}> is defined twice in this file`, `rename one; the first is at line ${first}`);
      return;
    }
    this.firstLine.set(block.name, block.at.line);
    this.done.push(block);
  }
}

/**
 * Reads one `field = regex` line starting at `index` (plus its continuation lines) into `block`;
 * returns the index of the last physical line consumed.
 */
function readField(physical: string[], index: number, block: LogFormatBlock, report: Report): number {
  const number = index + 1;
  const line = physical[index]!;
  const eq = line.indexOf('=');
  if (eq < 0) {
    report.error(number, `"${trimC(line)}" is not a field definition in <logformat ${block.name}>`, 'write FIELD = REGEX, or close the block with </logformat>');
    return index;
  }
  let { text: value, continues } = fieldText(line.slice(eq + 1));
  let last = index;
  while (continues) {
    let next = last + 1;
    while (next < physical.length && isSkippable(trimC(physical[next]!))) next++;
    if (next >= physical.length || CLOSE_TAG.test(trimC(physical[next]!))) {
      report.error(number, 'the value ends with a backslash but no line continues it', 'remove the trailing backslash');
      break;
    }
    const more = fieldText(physical[next]!);
    // In a free-spacing (?x) pattern a line break is blank space and ends a # comment, as the layout shows.
    value += /^\(\?[a-z]*x/i.test(value) ? `\n${more.text}` : more.text;
    continues = more.continues;
    last = next;
  }

  const key = trimC(line.slice(0, eq)).toLowerCase();
  const field = key as LogField;
  if (!FIELD_NAMES.has(key)) {
    report.error(number, `unknown logformat field "${trimC(line.slice(0, eq))}"`, `fields are ${LOG_FIELDS.join(', ')}`);
  } else if (block.fields[field] !== undefined) {
    report.error(number, `field "${key}" is defined twice in <logformat ${block.name}>`, `keep one; the first is at line ${block.fields[field].at.line}`);
  } else if (value === '') {
    report.error(number, `field "${key}" has an empty pattern`, 'write a regular expression after "="');
  } else {
    block.fields[field] = { pattern: value, at: report.at(number) };
  }
  return last;
}

/** Ends in an odd number of backslashes, i.e. the last one escapes what follows. */
const DANGLING_BACKSLASH = /(?:^|[^\\])(?:\\\\)*\\$/;
const LEADING_BLANKS = /^[ \t\v\f]+/;

/**
 * One physical line of a field value, blanks trimmed. A backslash right before the line break
 * continues the value on the next line (the backslash is dropped). A backslash followed by blanks
 * is a regex escape of a blank (free-spacing patterns need `\ `), so that one blank is kept.
 */
function fieldText(physical: string): { text: string; continues: boolean } {
  const line = physical.endsWith('\r') ? physical.slice(0, -1) : physical;
  const text = line.replace(LEADING_BLANKS, '');
  if (DANGLING_BACKSLASH.test(text)) return { text: text.slice(0, -1), continues: true };
  const trimmed = trimC(text);
  const escapedBlank = DANGLING_BACKSLASH.test(trimmed) && trimmed.length < text.length;
  return { text: escapedBlank ? text.slice(0, trimmed.length + 1) : trimmed, continues: false };
}

function isSkippable(text: string): boolean {
  return text === '' || text.startsWith('#');
}
