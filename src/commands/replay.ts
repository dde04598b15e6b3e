/** `knocktail replay`: archived logs through the matcher, in the time written in them. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { isLogPattern, LogPattern, PatternError } from '../config/log-pattern.js';
import { canonicalIp } from '../address.js';
import { ConfigError } from '../config/types.js';
import { isForgeableLog } from '../inputs/trust.js';
import { formatSummary } from '../replay/report.js';
import { replay } from '../replay/replay.js';
import { WarningStream } from '../safe-text.js';
import { DEFAULT_CONFIG, EXIT, loadConfigOrReport, parseBootTime, parseCommandLine, UsageError } from './common.js';

export const USAGE = `usage: knocktail replay [-c FILE] [--json] [--execute] [--format NAME[,NAME…]] [--local ADDR[,ADDR…]] [--firewall-from PATTERN] [-v] FILE…

Reads archived firewall logs (plain or .gz; rotated sets such as kern.log.2.gz kern.log.1 kern.log
are read oldest first) and packet captures (pcap, pcapng), and reports, in the order it happened,
which doors opened for whom, which knocks timed out, and the start/stop commands with %IP% filled
in. Time comes from the log lines and the packet headers.

  -c, --config FILE   config (default ${DEFAULT_CONFIG})
      --json          one JSON object per event: time, event (stage|open|timeout|start|stop|…), door, ip, command
      --execute       run the commands for real (default: dry run, nothing is executed)
      --format NAMES  log formats to try instead of the config's LogFormat
      --boot-time ISO when the logging machine booted, for uptime-stamped formats (dmesg, kmsg)
      --local ADDRS   the capturing host's own addresses (repeatable): doors without Target then count
                      only knocks to these, as the live daemon does (default: every destination counts)
      --firewall-from PATTERN
                      which firewall each file is the log of: the {firewall} part of a pattern such as
                      'archive/{firewall}/kern.log' (repeatable; a rotated file counts under its live name).
                      Default: the config's FirewallLog patterns. Knock_Scope and %FIREWALL% then apply
  -v, --verbose       also list every stage reached and every timeout (the table; --json always has them)
  -h, --help          this help

Exit status: 0 done, 1 bad config or unreadable file, 2 bad command line.`;

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
  if (positionals.length === 0) throw new UsageError(`replay needs at least one log file\n\n${USAGE}`);
  const bootTime = parseBootTime(values['boot-time'], 0);
  const local = values.local === undefined ? null : localAddresses(values.local);
  const firewallFrom = values['firewall-from'] === undefined ? null : firewallPatterns(values['firewall-from']);
  const missing = positionals.filter((file) => !existsSync(file));
  if (missing.length > 0) {
    process.stderr.write(missing.map((file) => `knocktail: ${file}: no such file\n`).join(''));
    return EXIT.failure;
  }
  for (const file of positionals.filter(isForgeableLog)) {
    process.stderr.write(`warning: ${file}: any local user can write kernel-looking lines into this log (logger -t kernel); doors it opens may come from forged lines\n`);
  }
  const config = loadConfigOrReport(values.config, process.stderr);
  if (config === null) return EXIT.failure;
  // Warnings quote the files replayed: escaped, and a burst of alike ones is counted, not printed.
  const warnings = new WarningStream(process.stderr);
  try {
    const summary = await replay({
      config,
      files: positionals,
      execute: values.execute,
      json: values.json,
      verbose: values.verbose,
      formats: values.format === undefined ? null : { names: values.format.split(',').map((name) => name.trim()), at: { file: 'the command line (--format)', line: 0 } },
      bootTime,
      local,
      firewallFrom,
      out: process.stdout,
      err: warnings,
    });
    warnings.finish();
    // JSON output stays machine-readable: the summary goes to stderr there.
    (values.json ? process.stderr : process.stdout).write(`${values.json ? '' : '\n'}${formatSummary(summary)}\n`);
    return EXIT.ok;
  } catch (error) {
    warnings.finish();
    process.stderr.write(`${error instanceof ConfigError ? error.message : `knocktail: ${(error as Error).message}`}\n`);
    return EXIT.failure;
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
