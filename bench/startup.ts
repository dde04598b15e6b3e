/**
 * Start-up time: from spawn() of `node dist/src/cli.js -c example.conf -v` to its "listening on" line on
 * stdout, the moment its inputs are open and following (knockd's -v prints the same line at the same point).
 * The config is conf/example.conf with FirewallLog and StateDir pointed into a scratch directory. Beside it,
 * the same measure for a bare `node -e` that prints one line: the part of the time knocktail cannot save.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonProcess, median, repoRoot } from './harness.js';

export interface StartupResult {
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** Same measure for `node -e "console.log('listening on')"`. */
  bareNodeMs: number;
}

/** conf/example.conf with its log and state in `dir`. */
function exampleConfig(dir: string): string {
  const text = readFileSync(join(repoRoot, 'conf', 'example.conf'), 'utf8');
  const options = /^(\s*)FirewallLog\s*=.*$/m;
  if (!options.test(text)) throw new Error('conf/example.conf has no FirewallLog line to point at a scratch file');
  return text.replace(options, `$1FirewallLog = ${join(dir, 'kern.log')}\n$1StateDir    = ${join(dir, 'state')}`);
}

function bareNode(): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['-e', "console.log('listening on')"], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.once('data', () => resolve(performance.now() - started));
    child.once('error', reject);
  });
}

export async function startup(dir: string, runs: number): Promise<StartupResult> {
  const conf = join(dir, 'example.conf');
  writeFileSync(conf, exampleConfig(dir));
  writeFileSync(join(dir, 'kern.log'), '');
  const times: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < runs; i++) {
    const daemon = new DaemonProcess(conf, { stdout: true });
    try {
      times.push(await daemon.ready);
    } finally {
      await daemon.stop();
    }
    bare.push(await bareNode());
  }
  return { runs, medianMs: median(times), minMs: Math.min(...times), maxMs: Math.max(...times), bareNodeMs: median(bare) };
}
