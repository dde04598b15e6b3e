/** `knocktail check-config`: parse a config, compile its formats, explain every door. */
import { explainConfig } from '../config/explain.js';
import { type Diagnostic, ConfigError, formatDiagnostic } from '../config/types.js';
import { FormatRegistry } from '../formats/registry.js';
import { uncertainLogWarnings, untrustedLogProblems } from '../inputs/trust.js';
import { DEFAULT_CONFIG, EXIT, loadConfigOrReport, parseCommandLine } from './common.js';

export const USAGE = `usage: knocktail check-config [-c FILE]

Parses the config (knockd.conf syntax plus knocktail's directives), compiles its log formats, and
explains what each door listens for and what it runs. Every problem is reported with file:line and
how to fix it.

  -c, --config FILE   config (default ${DEFAULT_CONFIG})
  -h, --help          this help

Exit status: 0 the config is usable, 1 it is not, 2 bad command line.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    { config: { type: 'string', short: 'c', default: DEFAULT_CONFIG }, help: { type: 'boolean', short: 'h', default: false } },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  // Accept `check-config FILE` too.
  const path = positionals[0] ?? values.config;
  const config = loadConfigOrReport(path, process.stderr);
  if (config === null) return EXIT.failure;
  const problems: Diagnostic[] = [];
  try {
    const registry = FormatRegistry.load(config);
    registry.resolve(config.options.logFormats, config.optionsAt.logFormats ?? { file: config.path, line: 0 });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.diagnostics);
  }
  problems.push(...untrustedLogProblems(config));
  config.warnings.push(...uncertainLogWarnings(config));
  process.stdout.write(explainConfig(config));
  if (problems.length > 0) {
    process.stderr.write(`${problems.map(formatDiagnostic).join('\n')}\n${path}: ${problems.length} error${problems.length === 1 ? '' : 's'}\n`);
    return EXIT.failure;
  }
  process.stdout.write(`${path}: OK${config.warnings.length ? ` (${config.warnings.length} warning${config.warnings.length === 1 ? '' : 's'})` : ''}\n`);
  return EXIT.ok;
}
