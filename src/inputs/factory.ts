/**
 * Which inputs a config asks for: file mode follows each FirewallLog (a file, a pattern of files, the kernel journal,
 * /dev/kmsg) through the configured log formats, or reads an NFLOG group; pcap mode captures on the interfaces. Inputs
 * get values (the formats, the watch), never the matcher. Each kind but the plain log file is loaded when a config
 * uses it: a daemon following kern.log does not load the journal, kmsg, NFLOG, pattern or capture code (12 ms of
 * start-up, docs/performance.md).
 */
import { join } from 'node:path';
import { isLogPattern, LogPattern } from '../config/log-pattern.js';
import { type Config, nflogGroup } from '../config/types.js';
import type { CompiledFormat } from '../formats/logformat.js';
import type { LocalAddresses } from '../packet/bpf.js';
import type { Watch } from '../watch.js';
import type { Input } from './input.js';
import { LogFileInput } from './log-file.js';
import { thisMachineBootTime } from '../formats/timestamp.js';

export interface InputContext {
  config: Config;
  /** File mode: the config's log formats, compiled (resolveFormats). */
  formats: readonly CompiledFormat[];
  /** What the doors may use. */
  watch: Watch;
  /** -i, wins over `Interface =`. */
  interfaces: string[];
  fromEnd: boolean;
  ipv4Only: boolean;
  onWarning: (message: string) => void;
  /** Log lines that report rather than warn (pcap mode: capture statistics when capture stops). Default: onWarning. */
  onInfo?: (message: string) => void;
  /** pcap mode: the interfaces' addresses changed (doors without Target accept these destinations). */
  onLocalAddresses: (addresses: ReadonlySet<string>) => void;
}

/** knockd's default interface when neither -i nor `Interface =` names one. */
const DEFAULT_INTERFACE = 'eth0';

export async function createInputs(ctx: InputContext): Promise<Input[]> {
  const { options } = ctx.config;
  if (options.mode === 'pcap') return [await pcapInput(ctx)];
  const common = { formats: ctx.formats, watch: ctx.watch, cursorDir: join(options.stateDir, 'cursors'), fromEnd: ctx.fromEnd, onWarning: ctx.onWarning };
  const files = { ...common, maxLineLength: options.maxLineLength, bootTime: thisMachineBootTime() };
  const inputs: Input[] = [];
  for (const path of options.firewallLogs) {
    const group = nflogGroup(path);
    if (path === 'journal') {
      inputs.push(new (await import('./journal.js')).JournalInput(common));
    } else if (path === 'kmsg') {
      inputs.push(new (await import('./kmsg.js')).KmsgInput(common));
    } else if (group !== null) {
      const { NflogInput } = await import('./nflog.js');
      inputs.push(new NflogInput({ group, prefix: options.nflogPrefix, onError: (error) => ctx.onWarning(error.message), onStats: ctx.onInfo ?? ctx.onWarning }));
    } else if (isLogPattern(path)) {
      const { LogFilesInput } = await import('./log-files.js');
      inputs.push(new LogFilesInput({ ...files, pattern: new LogPattern(path), maxFiles: options.maxFollowedFiles, allowForgeable: options.allowForgeableLog, onInfo: ctx.onInfo ?? ctx.onWarning }));
    } else {
      inputs.push(new LogFileInput({ ...files, path }));
    }
  }
  return inputs;
}

/** The interfaces pcap mode captures on: -i, else `Interface =`, else knockd's default. */
export function captureInterfaces(config: Config, commandLine: readonly string[]): string[] {
  if (commandLine.length > 0) return [...commandLine];
  return config.options.interfaces.length > 0 ? config.options.interfaces : [DEFAULT_INTERFACE];
}

async function pcapInput(ctx: InputContext): Promise<Input> {
  const { PcapLiveInput } = await import('./pcap-live.js');
  const addressSet = (local: LocalAddresses): ReadonlySet<string> => new Set([...local.v4, ...(ctx.ipv4Only ? [] : local.v6)]);
  return new PcapLiveInput({
    interfaces: captureInterfaces(ctx.config, ctx.interfaces),
    watch: ctx.watch,
    ipv4Only: ctx.ipv4Only,
    promiscuous: ctx.config.options.promiscuous,
    onAddressesChanged: (local) => ctx.onLocalAddresses(addressSet(local)),
    onError: (error) => ctx.onWarning(error.message),
    onStats: ctx.onInfo ?? ctx.onWarning,
  });
}
