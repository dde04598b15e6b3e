/**
 * `FirewallLog` patterns: many files followed at once, typically one per firewall as a syslog collector writes them
 * (README, "Many firewalls, one knocktail"). A pattern is an absolute path in which `*` and `?` stand for any
 * characters of one path segment and `{firewall}` for the segment (or part of it) that names the firewall, e.g.
 * `/var/log/remote/{firewall}/kern.log`. Pure text work, no I/O: the follower of many files (inputs/log-files.ts)
 * lists the directories, replay applies the same matching to the files it is given.
 */
import { dirname, sep } from 'node:path';
import type { Options } from './types.js';

export const FIREWALL_PLACEHOLDER = '{firewall}';

/** Compression suffixes of rotated logs: such a file is never followed (it is not written to any more). */
const COMPRESSED = /\.(?:gz|bz2|xz|zst|lz4|Z)$/;
/** A rotation suffix: `kern.log.1`, `kern.log-20261121` (logrotate dateext, optionally with the hour). */
const ROTATED = /^(.+)(?:\.\d+|-\d{8}(?:\d{2})?)$/;
/** logrotate's dateext with `extension`: `fw-20261121.log` is the rotation of `fw.log`. */
const ROTATED_BEFORE_EXTENSION = /^(.+)-\d{8}(?:\d{2})?(\.[^.]+)$/;

export class PatternError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** Whether some followed file tells which firewall saw a knock: file mode with a FirewallLog pattern with {firewall}. */
export function namesFirewalls(options: Pick<Options, 'mode' | 'firewallLogs'>): boolean {
  return options.mode === 'file' && options.firewallLogs.some((log) => log.includes(FIREWALL_PLACEHOLDER));
}

/**
 * Whether a FirewallLog value is a pattern (else it names one file, or `journal`). Any `{…}` makes one, so that a
 * misspelt placeholder (`{host}`, `{Firewall}`) is reported instead of followed as a file that never appears.
 */
export function isLogPattern(text: string): boolean {
  return text.includes('*') || text.includes('?') || /\{[^/]*\}/.test(text);
}

export class LogPattern {
  /** The longest leading directory without wildcards: where discovery starts, and what is watched. */
  readonly base: string;
  /** The segments below `base`, each a regex over one name. */
  readonly segments: readonly RegExp[];
  /** The segments below `base` that are plain names (no wildcard), else null: discovery looks them up instead of listing. */
  readonly literals: ReadonlyArray<string | null>;
  /** Index in `segments` of the one with `{firewall}` (its capture group 1), or -1. */
  readonly firewallSegment: number;

  /** `text`: an absolute path (the config resolves relative ones against its own directory). */
  constructor(readonly text: string) {
    if (!text.startsWith(sep)) throw new PatternError(`${text} is not an absolute path`, 'write the pattern from the root, e.g. /var/log/remote/{firewall}/kern.log');
    const parts = text.split(sep).slice(1);
    const firstWild = parts.findIndex((part) => isLogPattern(part));
    if (firstWild < 0) throw new PatternError(`${text} has no * ? or {firewall}`, 'a plain path names one file');
    this.base = sep + parts.slice(0, firstWild).join(sep);
    const below = parts.slice(firstWild);
    if (text.split(FIREWALL_PLACEHOLDER).length > 2) throw new PatternError(`${text} has {firewall} more than once`, 'name the firewall by one segment of the path');
    this.firewallSegment = below.findIndex((part) => part.includes(FIREWALL_PLACEHOLDER));
    this.segments = below.map((part) => segmentRegex(part, text));
    this.literals = below.map((part) => (isLogPattern(part) ? null : part));
  }

  get hasFirewall(): boolean {
    return this.firewallSegment >= 0;
  }

  /**
   * Whether `path` (absolute) is a file of this pattern: its `{firewall}` text (raw, as in the path; '' when the
   * pattern has none), or null. Rotated and compressed copies of a matching file never match: the follower of the
   * live file reads them (rotation), and following them too would read their lines twice.
   */
  match(path: string): string | null {
    const raw = this.matchName(path);
    if (raw === null || this.isRotationOf(path)) return null;
    return raw;
  }

  private matchName(path: string): string | null {
    const prefix = this.base === sep ? sep : this.base + sep;
    if (!path.startsWith(prefix)) return null;
    const names = path.slice(prefix.length).split(sep);
    if (names.length !== this.segments.length) return null;
    let firewall = '';
    for (let i = 0; i < names.length; i++) {
      const found = this.segments[i]!.exec(names[i]!);
      if (found === null) return null;
      if (i === this.firewallSegment) firewall = found[1]!;
    }
    return firewall;
  }

  private isRotationOf(path: string): boolean {
    if (COMPRESSED.test(path)) return true;
    const name = path.slice(dirname(path).length + 1);
    const live = [ROTATED.exec(name)?.[1], rotatedBeforeExtension(name)].filter((stem) => stem !== undefined);
    return live.some((stem) => this.matchName(`${dirname(path)}${sep}${stem}`) !== null);
  }
}

function rotatedBeforeExtension(name: string): string | undefined {
  const found = ROTATED_BEFORE_EXTENSION.exec(name);
  return found === null ? undefined : found[1]! + found[2]!;
}

/**
 * One segment as an anchored regex: `*` any characters, `?` one, `{firewall}` one or more (captured); a wildcard
 * never matches a leading dot (hidden files, `.` and `..`, editors' temporary files).
 */
function segmentRegex(part: string, text: string): RegExp {
  if (part.includes('**')) throw new PatternError(`${text}: ** is not supported`, 'use one * per directory level, e.g. /var/log/remote/*/kern.log');
  const braces = part.replaceAll(FIREWALL_PLACEHOLDER, '');
  if (braces.includes('{') || braces.includes('}')) {
    throw new PatternError(`${text}: the only placeholder is {firewall} (lower case)`, 'write /var/log/remote/{firewall}/kern.log');
  }
  if (part.includes(FIREWALL_PLACEHOLDER) && (braces.includes('*') || braces.includes('?'))) {
    throw new PatternError(`${text}: {firewall} shares its path segment with * or ?`, 'where {firewall} ends would be ambiguous: give it a segment of its own, or literal text around it');
  }
  let source = '';
  for (const piece of part.split(/(\{firewall\}|\*|\?)/)) {
    if (piece === FIREWALL_PLACEHOLDER) source += '([^/]+)';
    else if (piece === '*') source += '[^/]*';
    else if (piece === '?') source += '[^/]';
    else source += piece.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  const hidden = isLogPattern(part[0] ?? '') || part.startsWith(FIREWALL_PLACEHOLDER) ? '(?!\\.)' : '';
  return new RegExp(`^${hidden}${source}$`);
}
