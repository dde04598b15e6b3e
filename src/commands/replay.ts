/** `knocktail replay`: archived logs through the matcher, in the time written in them. */
import { resolve } from 'node:path';
import { isLogPattern, LogPattern, PatternError } from '../config/log-pattern.js';
import { canonicalIp } from '../address.js';
import { ConfigError } from '../config/types.js';
import { sameGeneration } from '../inputs/archive.js';
import { STANDARD_INPUT } from '../inputs/archive-source.js';
import { isForgeableLog } from '../inputs/trust.js';
import { ProgressLine } from '../replay/progress.js';
import { formatSummary, replayComplete, summaryRecord } from '../replay/report.js';
import { replay } from '../replay/replay.js';
import { safeText, WarningStream } from '../safe-text.js';
import { bootTimeOption, FORMAT_OPTION, formatNames, openInputs } from './archive-args.js';
import { DEFAULT_CONFIG, EXIT, loadConfigOrReport, parseCommandLine, UsageError } from './common.js';

export const USAGE = `usage: knocktail replay [-c FILE] [--json] [--execute] [--format NAME[,NAME…]] [--local ADDR[,ADDR…]] [--firewall-from PATTERN] [-v] FILE…

Reads archived firewall logs (plain or .gz; rotated sets such as kern.log.2.gz kern.log.1 kern.log
are read oldest first) and packet captures (pcap, pcapng), and reports, in the order it happened,
which doors opened for whom, which knocks timed out, which one-time knocks (spent rolling sequences,
encrypted messages) were refused and why, and the start/stop commands with %IP% filled in. Time
comes from the log lines and the packet headers. FILE - reads standard input (plain or gzip, e.g.
ssh gw cat /var/log/kern.log | knocktail replay -). A file cut short (a truncated .gz) is read as
far as it goes; the others are still read.

  -c, --config FILE   config (default ${DEFAULT_CONFIG})
      --json          one JSON object per event: time, event (stage|open|refused|timeout|start|stop|…), door, ip,
                      command; the last object is {"summary": …}
      --execute       run the commands for real (default: dry run, nothing is executed); each command's
                      exit status and output are shown
      --format NAMES  log formats to try instead of the config's LogFormat
      --boot-time ISO when the logging machine booted, for uptime-stamped formats (dmesg, kmsg)
                      (default: this machine's boot time, with a warning)
      --local ADDRS   the capturing host's own addresses (repeatable): doors without Target then count
                      only knocks to these, as the live daemon does (default: every destination counts)
      --firewall-from PATTERN
                      which firewall each file is the log of: the {firewall} part of a pattern such as
                      'archive/{firewall}/kern.log' (repeatable; a rotated file counts under its live name).
                      Default: the config's FirewallLog patterns. Knock_Scope and %FIREWALL% then apply
  -v, --verbose       also list every stage reached and every timeout (the table; --json always has them)
  -h, --help          this help

On a terminal, a large input gets a progress line on standard error.

Exit status: 0 done, 1 bad config, a file that cannot be read (or was read only in part), or with
--execute a command that failed, 2 bad command line (a file given twice, too).`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    {
      config: { type: 'string', short: 'c', default: DEFAULT_CONFIG },
      json: { type: 'boolean', default: false },
      execute: { type: 'boolean', default: false },
      format: { type: 'string' },
      'boot-time': { type: 'string' },
      local: { type: 'string', multiple: true },
      'firewall-from': { type: 'string', multiple: true },
      verbose: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (positionals.length === 0) throw new UsageError(`replay needs at least one log file (or - for standard input)\n\n${USAGE}`);
  const bootTime = bootTimeOption(values['boot-time']);
  const local = values.local === undefined ? null : localAddresses(values.local);
  const generations = sameGeneration(positionals);
  if (generations.length > 0) throw new UsageError(generations.map(safeText).join('\n'));
  const firewallFrom = values['firewall-from'] === undefined ? null : firewallPatterns(values['firewall-from']);
  const config = loadConfigOrReport(values.config, process.stderr);
  if (config === null) return EXIT.failure;
  const sources = await openInputs(positionals, process.stderr);
  if (sources === null) return EXIT.failure;
  for (const file of positionals.filter((name) => name !== STANDARD_INPUT && isForgeableLog(name))) {
    process.stderr.write(`warning: ${safeText(file)}: any local user can write kernel-looking lines into this log (logger -t kernel); doors it opens may come from forged lines\n`);
  }
  // A terminal gets a progress line, which is erased before anything else is written there.
  const progress = !values.json && process.stderr.isTTY ? new ProgressLine(process.stderr, sources) : null;
  const out = progress !== null && process.stdout.isTTY ? progress.before(process.stdout) : process.stdout;
  // Warnings quote the files replayed: escaped, and a burst of alike ones is counted, not printed.
  const warnings = new WarningStream(progress === null ? process.stderr : progress.before(process.stderr));
  try {
    const summary = await replay({
      config,
      sources,
      execute: values.execute,
      json: values.json,
      verbose: values.verbose,
      formats: values.format === undefined ? null : { names: formatNames(values.format), at: FORMAT_OPTION },
      bootTime,
      local,
      firewallFrom,
      out,
      err: warnings,
      progress,
    });
    warnings.finish();
    out.write(values.json ? `${JSON.stringify({ summary: summaryRecord(summary) })}\n` : `\n${formatSummary(summary)}\n`);
    return replayComplete(summary) ? EXIT.ok : EXIT.failure;
  } catch (error) {
    progress?.clear();
    warnings.finish();
    process.stderr.write(`${error instanceof ConfigError ? error.message : `knocktail: ${(error as Error).message}`}\n`);
    return EXIT.failure;
  } finally {
    // Replay closes each file it reads to the end; one it never reached (a bad --format, an error) is closed here.
    await Promise.all(sources.map((source) => source.close()));
  }
}

/** `--firewall-from archive/{firewall}/kern.log`: absolute patterns, each naming the firewall. */
function firewallPatterns(values: string[]): string[] {
  return values.map((value) => {
    const pattern = resolve(value);
    let hasFirewall = false;
    try {
      hasFirewall = isLogPattern(pattern) && new LogPattern(pattern).hasFirewall;
    } catch (error) {
      if (error instanceof PatternError) throw new UsageError(`--firewall-from: ${error.message}; ${error.hint}`);
      throw error;
    }
    if (!hasFirewall) throw new UsageError(`--firewall-from "${value}" has no {firewall} (write e.g. --firewall-from '/var/log/remote/{firewall}/kern.log')`);
    return pattern;
  });
}

/** `--local 10.0.0.1,fd00::1 --local …` as canonical addresses. */
function localAddresses(values: string[]): Set<string> {
  const addresses = new Set<string>();
  for (const text of values.flatMap((value) => value.split(','))) {
    const address = canonicalIp(text.trim());
    if (address === null) throw new UsageError(`--local "${text.trim()}" is not an IP address (write e.g. --local 192.0.2.1,2001:db8::1)`);
    addresses.add(address);
  }
  return addresses;
}
