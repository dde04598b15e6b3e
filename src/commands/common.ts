/**
 * What every command shares: version, exit statuses, strict option parsing, config loading with
 * errors a user can act on.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig } from '../config/parse.js';
import { type Config, ConfigError } from '../config/types.js';

/** Exit statuses (documented in the README). */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** A bad command line: reported with the usage text, exit status 2. */
export class UsageError extends Error {}

/** Default config path (`-c` overrides; knockd.conf files work unchanged). */
export const DEFAULT_CONFIG = '/etc/knocktail.conf';

/**
 * parseArgs that turns an unknown or malformed option into a UsageError (knockd silently exits 0 on an
 * unknown flag; we refuse).
 */
export function parseCommandLine<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, usage: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${(error as Error).message.replace(/\. To specify a positional argument.*$/s, '.')}\n\n${usage}`);
  }
}

/** Loads a config; on failure writes every problem (file:line, fix) to `err` and returns null. */
export function loadConfigOrReport(path: string, err: NodeJS.WritableStream): Config | null {
  try {
    return loadConfig(path);
  } catch (error) {
    if (error instanceof ConfigError) {
      err.write(`${error.message}\n${path}: ${error.diagnostics.length} error${error.diagnostics.length === 1 ? '' : 's'}; nothing was started\n`);
    } else {
      err.write(`knocktail: ${(error as Error).message}\n`);
    }
    return null;
  }
}
