/**
 * What the daemon refuses at start-up and at reload in a config that parses, checked in one place so that
 * `knocktail check-config` never says OK to a config the daemon then refuses (README.md, "What the daemon
 * refuses"):
 * - the config and its One_Time_Sequences files may be written only by root or the user knocktail runs as,
 *   and so may every directory above them (sshd's StrictModes): the config's commands run as that user and a
 *   one-time file decides who opens. `--allow-unsafe-config` waives this check, and only this one;
 * - the StateDir holds the stop commands the daemon runs: only its user may write there;
 * - a FirewallLog is a regular file knocktail can read, and no file any local user can write into
 *   (as the forgeable syslog files of the trust model, it needs AllowForgeableLog = yes); a pattern's leading
 *   directory is a directory;
 * - a One_Time_Sequences file is a text file of its own (not the config, which marking a sequence would
 *   rewrite) that knocktail can rewrite.
 */
import { accessSync, constants, readFileSync, realpathSync, type Stats, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isLogPattern, LogPattern } from '../config/log-pattern.js';
import type { Config, Diagnostic, SourceRef } from '../config/types.js';
import { uncertainLogWarnings, untrustedLogProblems } from '../inputs/trust.js';
import { USED_KNOCKS_FILE, usedKnocksFileProblem } from '../knocks/used.js';
import { binaryLine } from '../safe-text.js';

export interface PreflightOptions {
  /** `--allow-unsafe-config`: accept a config or one-time file that other users could change (StrictModes off). */
  allowUnsafeConfig: boolean;
}

export interface Preflight {
  /** What makes the daemon refuse the config. */
  errors: Diagnostic[];
  /** Accepted, but worth a look. */
  warnings: Diagnostic[];
}

const UNSAFE_CONFIG_FLAG = '--allow-unsafe-config';

/** Every check of this module on a parsed config. */
export function preflight(config: Config, options: PreflightOptions): Preflight {
  const result: Preflight = { errors: [], warnings: [] };
  const uid = process.getuid?.() ?? null;
  const fileAt: SourceRef = { file: config.path, line: 0 };
  if (!options.allowUnsafeConfig) {
    const unsafe = othersCanChange(config.path, uid);
    if (unsafe !== null) {
      result.errors.push({
        at: fileAt,
        message: `${unsafe}; the commands in it run as ${userName(uid)}, so whoever can change it can run anything as ${userName(uid)}`,
        hint: `${fixFor(config.path, uid)} (or start with ${UNSAFE_CONFIG_FLAG} if you accept this)`,
      });
    }
  }
  add(result, checkStateDirectory(config.options.stateDir, config.optionsAt.stateDir ?? fileAt));
  if (config.options.mode === 'file') add(result, checkFirewallLogs(config, uid));
  result.errors.push(...untrustedLogProblems(config));
  result.warnings.push(...uncertainLogWarnings(config));
  add(result, checkOneTimeFiles(config, uid, options));
  return result;
}

function add(into: Preflight, from: Preflight): void {
  into.errors.push(...from.errors);
  into.warnings.push(...from.warnings);
}

/**
 * The state directory holds the stop commands the daemon runs, so only its user may write there: refused
 * when another user owns it or others can write to it (knocktail never chmods it: StateDir = /tmp must not
 * change /tmp); readable by others is a warning. A missing one is fine: the daemon creates it 0700.
 */
export function checkStateDirectory(dir: string, at: SourceRef): Preflight {
  const result: Preflight = { errors: [], warnings: [] };
  let stats: Stats;
  try {
    stats = statSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') result.errors.push({ at, message: `StateDir ${dir}: ${(error as Error).message}` });
    return result;
  }
  const mode = octal(stats.mode);
  const uid = process.getuid?.();
  if (!stats.isDirectory()) {
    result.errors.push({ at, message: `StateDir ${dir} is not a directory`, hint: "name a directory of knocktail's own (default /var/lib/knocktail)" });
  } else if (uid !== undefined && stats.uid !== uid) {
    result.errors.push({
      at,
      message: `StateDir ${dir} belongs to uid ${stats.uid}, not to uid ${uid} that knocktail runs as; the commands kept there run as uid ${uid}`,
      hint: `chown ${uid} ${dir}, or choose another StateDir`,
    });
  } else if ((stats.mode & 0o022) !== 0) {
    result.errors.push({
      at,
      message: `StateDir ${dir} is writable by other users (mode ${mode}), who could plant commands knocktail would run`,
      hint: `chmod 700 ${dir}, or choose a directory of knocktail's own`,
    });
  } else if ((stats.mode & 0o077) !== 0) {
    result.warnings.push({ at, message: `StateDir ${dir} can be read by other users (mode ${mode}); it holds the addresses and commands of open doors`, hint: `chmod 700 ${dir}` });
  }
  const used = result.errors.length === 0 ? usedKnocksFileProblem(join(dir, USED_KNOCKS_FILE)) : null;
  if (used !== null) result.errors.push({ at, message: used.message, hint: used.fix });
  return result;
}

/** File mode: each FirewallLog must be a regular file this user can read, and not one anybody can write into. */
function checkFirewallLogs(config: Config, uid: number | null): Preflight {
  const result: Preflight = { errors: [], warnings: [] };
  const at = config.optionsAt.firewallLogs ?? { file: config.path, line: 0 };
  for (const log of config.options.firewallLogs) {
    if (log === 'journal') continue;
    if (isLogPattern(log)) {
      add(result, checkPatternBase(log, at));
      continue;
    }
    let stats: Stats;
    try {
      stats = statSync(log);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        result.warnings.push({ at, message: `FirewallLog ${log} does not exist (yet); knocktail waits for it to appear`, hint: 'check the path, and that your LOG rule and syslog write there' });
      } else {
        result.errors.push({ at, message: `FirewallLog ${log}: ${(error as Error).message}` });
      }
      continue;
    }
    const kind = fileKind(stats);
    if (kind !== 'file') {
      result.errors.push({
        at,
        message: `FirewallLog ${log} is a ${kind}, not a log file`,
        hint: kind === 'directory' ? 'name the log file itself, e.g. /var/log/kern.log' : 'name the file your syslog daemon writes the LOG lines to; for the kernel journal write FirewallLog = journal',
      });
      continue;
    }
    try {
      accessSync(log, constants.R_OK);
    } catch (error) {
      result.errors.push({
        at,
        message: `FirewallLog ${log} cannot be read by ${userName(uid)}: ${(error as Error).message}`,
        hint: 'run knocktail as root, or give its user read access to the log (e.g. the group adm)',
      });
      continue;
    }
    if ((stats.mode & 0o002) !== 0 && !config.options.allowForgeableLog) {
      result.errors.push({
        at,
        message: `refusing to follow ${log}: any local user can write to it (mode ${octal(stats.mode)}), so anyone could knock`,
        hint: `chmod o-w ${log}; if you accept the risk, add "AllowForgeableLog = yes" to [options]`,
      });
    }
  }
  return result;
}

/**
 * A FirewallLog pattern: its fixed leading directory must be a directory (or not there yet); the files it matches
 * are checked one by one as they are found (inputs/log-files.ts).
 */
function checkPatternBase(pattern: string, at: SourceRef): Preflight {
  const result: Preflight = { errors: [], warnings: [] };
  const base = new LogPattern(pattern).base;
  const stats = statOrNull(base);
  if (stats === null) {
    result.warnings.push({ at, message: `FirewallLog ${pattern}: ${base} does not exist (yet); knocktail follows the files once they appear`, hint: 'check the path, and that your syslog collector writes there' });
  } else if (!stats.isDirectory()) {
    result.errors.push({ at, message: `FirewallLog ${pattern}: ${base} is a ${fileKind(stats)}, not a directory`, hint: 'a pattern names files below a directory, e.g. /var/log/remote/{firewall}/kern.log' });
  }
  return result;
}

/** Each door's One_Time_Sequences file: not the config, text, others cannot change it, its directory writable. */
function checkOneTimeFiles(config: Config, uid: number | null, options: PreflightOptions): Preflight {
  const result: Preflight = { errors: [], warnings: [] };
  const configStats = statOrNull(config.path);
  for (const door of config.doors) {
    const path = door.oneTimeSequences;
    if (path === null) continue;
    const at = { file: config.path, line: door.lines?.One_Time_Sequences ?? door.at.line };
    const stats = statOrNull(path);
    if (stats !== null && configStats !== null && stats.dev === configStats.dev && stats.ino === configStats.ino) {
      result.errors.push({
        at,
        message: `door [${door.name}]: One_Time_Sequences names the config file itself; marking a used sequence would rewrite the config`,
        hint: 'give the door a file of its own, one sequence per line',
      });
      continue;
    }
    let content: Buffer;
    try {
      content = readFileSync(path);
    } catch (error) {
      result.errors.push({ at, message: `door [${door.name}]: cannot read One_Time_Sequences ${path}: ${(error as Error).message}` });
      continue;
    }
    const binary = binaryLine(content);
    if (binary !== null) {
      result.errors.push({
        at,
        message: `door [${door.name}]: One_Time_Sequences ${path} holds binary data (a NUL byte in line ${binary}); it is not a file of sequences`,
        hint: 'name a text file with one sequence per line (e.g. 7000,8000:udp,9000)',
      });
      continue;
    }
    const unsafe = options.allowUnsafeConfig ? null : othersCanChange(path, uid);
    if (unsafe !== null) {
      result.errors.push({
        at,
        message: `door [${door.name}]: One_Time_Sequences: ${unsafe}; whoever can change it can add a sequence and open the door`,
        hint: `${fixFor(path, uid)} (or start with ${UNSAFE_CONFIG_FLAG} if you accept this)`,
      });
    }
    try {
      accessSync(dirname(path), constants.W_OK);
    } catch (error) {
      result.warnings.push({
        at,
        message: `door [${door.name}]: the directory of ${path} is not writable (${(error as Error).message}), so a used sequence cannot be marked: the door closes after its first use until it is`,
        hint: `used sequences are marked by replacing the file; make ${dirname(path)} writable for knocktail`,
      });
    }
  }
  return result;
}

/**
 * Why a user other than root and `uid` could change `path` (its owner, its mode, or a directory above it that
 * lets them replace it), or null. Sticky directories such as /tmp are fine: others cannot rename what they do not own.
 */
function othersCanChange(path: string, uid: number | null): string | null {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return null; // Reading it reports the problem.
  }
  const trusted = (owner: number): boolean => owner === 0 || owner === uid;
  const file = statSync(real);
  if (!trusted(file.uid)) return `${path} belongs to uid ${file.uid}, not to ${userName(uid)}`;
  if ((file.mode & 0o022) !== 0) return `${path} can be written by ${writers(file.mode)} (mode ${octal(file.mode)})`;
  for (let dir = dirname(real); ; dir = dirname(dir)) {
    const stats = statSync(dir);
    if (!trusted(stats.uid)) return `the directory ${dir} belongs to uid ${stats.uid}, who could replace ${path}`;
    if ((stats.mode & 0o022) !== 0 && (stats.mode & 0o1000) === 0) {
      return `the directory ${dir} can be written by ${writers(stats.mode)} (mode ${octal(stats.mode)}), who could replace ${path}`;
    }
    if (dir === dirname(dir)) return null;
  }
}

function fixFor(path: string, uid: number | null): string {
  return `chown ${uid === 0 || uid === null ? 'root' : uid} ${path} and chmod go-w it and every directory above it`;
}

function writers(mode: number): string {
  if ((mode & 0o022) === 0o022) return 'group and others';
  return (mode & 0o020) !== 0 ? 'its group' : 'others';
}

function userName(uid: number | null): string {
  if (uid === null) return 'knocktail\'s user';
  return uid === 0 ? 'root' : `uid ${uid}`;
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

function fileKind(stats: Stats): string {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isCharacterDevice()) return 'character device';
  if (stats.isBlockDevice()) return 'block device';
  if (stats.isFIFO()) return 'named pipe (FIFO)';
  if (stats.isSocket()) return 'socket';
  return 'special file';
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}
