/**
 * `knocktail check-config`: parse a config, compile its formats, run the daemon's preflight checks, and
 * explain every door (or describe it all as JSON).
 */
import { resolve } from 'node:path';
import { explainConfig } from '../config/explain.js';
import { configJson, formatJson, type FormatJson, problemJson } from '../config/json.js';
import { loadConfig } from '../config/parse.js';
import { type Config, ConfigError, type Diagnostic, formatDiagnostics } from '../config/types.js';
import { preflight } from '../daemon/preflight.js';
import { FormatRegistry } from '../formats/registry.js';
import { jsonText, safeText } from '../safe-text.js';
import { DEFAULT_CONFIG, EXIT, parseCommandLine, UsageError } from './common.js';

export const USAGE = `usage: knocktail check-config [-c FILE] [--json] [--allow-unsafe-config]

Parses the config (knockd.conf syntax plus knocktail's directives), compiles its log formats, runs the
checks the daemon runs before it starts or reloads (who can change the config and its one-time sequence
files, the StateDir, each FirewallLog) and explains what each door listens for and what it runs. Every
problem is reported with file:line and how to fix it. Run it as the user the daemon runs as (root).

  -c, --config FILE        the config (default ${DEFAULT_CONFIG}; "check-config FILE" works too)
      --json               print one JSON object instead: config, ok, options, formats, doors, problems
      --allow-unsafe-config
                           accept a config other users can change, as the daemon does with this option
  -h, --help               this help

Exit status: 0 the daemon would run this config, 1 it would refuse it, 2 bad command line.`;

/** What check-config found: the config (null when it does not parse), its formats, and every problem. */
interface Check {
  path: string;
  config: Config | null;
  formats: FormatJson[];
  errors: Diagnostic[];
  warnings: Diagnostic[];
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    {
      config: { type: 'string', short: 'c', default: DEFAULT_CONFIG },
      json: { type: 'boolean', default: false },
      'allow-unsafe-config': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (positionals.length > 1) throw new UsageError(`check-config takes one config file\n\n${USAGE}`);
  const check = checkConfig(positionals[0] ?? values.config, values['allow-unsafe-config']);
  if (values.json) printJson(check);
  else printText(check);
  return check.errors.length === 0 ? EXIT.ok : EXIT.failure;
}

function checkConfig(path: string, allowUnsafeConfig: boolean): Check {
  const check: Check = { path: resolve(path), config: null, formats: [], errors: [], warnings: [] };
  try {
    check.config = loadConfig(path);
  } catch (error) {
    if (error instanceof ConfigError) check.errors.push(...error.diagnostics);
    else check.errors.push({ at: { file: check.path, line: 0 }, message: (error as Error).message });
    return check;
  }
  const { config } = check;
  check.warnings.push(...config.warnings);
  try {
    const registry = FormatRegistry.load(config);
    const formats = registry.resolve(config.options.logFormats, config.optionsAt.logFormats ?? { file: config.path, line: 0 });
    check.formats = formats.map((format) => formatJson(format.block));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    check.errors.push(...error.diagnostics);
  }
  const { errors, warnings } = preflight(config, { allowUnsafeConfig });
  check.errors.push(...errors);
  check.warnings.push(...warnings);
  return check;
}

function printText({ path, config, errors, warnings }: Check): void {
  if (config !== null) process.stdout.write(safeText(explainConfig({ ...config, warnings })));
  const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;
  if (errors.length > 0) {
    process.stderr.write(`${formatDiagnostics(errors)}\n${path}: ${count(errors.length, 'error')}; the daemon would refuse this config\n`);
    return;
  }
  process.stdout.write(`${path}: OK${warnings.length > 0 ? ` (${count(warnings.length, 'warning')})` : ''}\n`);
}

function printJson({ path, config, formats, errors, warnings }: Check): void {
  const report = {
    config: path,
    ok: errors.length === 0,
    ...(config === null ? { options: null, doors: [] } : configJson(config)),
    formats,
    problems: [...errors.map((d) => problemJson('error', d)), ...warnings.map((d) => problemJson('warning', d))],
  };
  process.stdout.write(`${jsonText(report)}\n`);
}
