/**
 * Which inputs a config asks for: file mode follows each FirewallLog (a file, the kernel journal, /dev/kmsg)
 * through the configured log formats, or reads an NFLOG group; pcap mode captures on the interfaces.
 */
import { uptime } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/types.js';
import { FormatRegistry, LineDecoder } from '../formats/registry.js';
import type { Matcher } from '../matcher/matcher.js';
import { buildCaptureFilter, type LocalAddresses } from '../packet/bpf.js';
import type { Input } from './input.js';
import { JournalInput } from './journal.js';
import { KmsgInput } from './kmsg.js';
import { LogFileInput } from './log-file.js';
import { NflogInput, nflogGroup } from './nflog.js';
import { PcapLiveInput } from './pcap-live.js';

export interface InputContext {
  config: Config;
  /** -i, wins over `Interface =`. */
  interfaces: string[];
  fromEnd: boolean;
  ipv4Only: boolean;
  matcher: Matcher;
  onWarning: (message: string) => void;
  /** Log lines that report rather than warn (pcap mode: capture statistics when capture stops). Default: onWarning. */
  onInfo?: (message: string) => void;
  /** pcap mode: the interfaces' addresses changed (doors without Target accept these destinations). */
  onLocalAddresses: (addresses: ReadonlySet<string>) => void;
}

export interface InputSet {
  inputs: Input[];
  /** The doors or their sequences changed (reload, one-time sequence used): capture filters follow. */
  doorsChanged(): void;
}

/** knockd's default interface when neither -i nor `Interface =` names one. */
const DEFAULT_INTERFACE = 'eth0';

export function createInputs(ctx: InputContext): InputSet {
  const { config } = ctx;
  const { options } = config;
  if (options.mode === 'pcap') return pcapInputs(ctx);
  const formats = FormatRegistry.load(config).resolve(options.logFormats, config.optionsAt.logFormats ?? { file: config.path, line: 0 });
  const decoder = (): LineDecoder => new LineDecoder(formats, ctx.matcher);
  const common = { cursorDir: join(options.stateDir, 'cursors'), fromEnd: ctx.fromEnd, onWarning: ctx.onWarning };
  const bootTime = Date.now() - uptime() * 1000;
  const inputs = options.firewallLogs.map((path): Input => {
    if (path === 'journal') return new JournalInput({ ...common, decoder: decoder() });
    if (path === 'kmsg') return new KmsgInput({ ...common, decoder: decoder() });
    const group = nflogGroup(path);
    if (group !== null) return new NflogInput({ group, prefix: options.nflogPrefix, onError: (error) => ctx.onWarning(error.message), onStats: ctx.onInfo ?? ctx.onWarning });
    return new LogFileInput({ ...common, path, decoder: decoder(), maxLineLength: options.maxLineLength, bootTime });
  });
  // Log lines are filtered by the firewall rule, not by us: nothing to regenerate.
  return { inputs, doorsChanged: () => undefined };
}

function pcapInputs(ctx: InputContext): InputSet {
  const { options } = ctx.config;
  const interfaces = ctx.interfaces.length > 0 ? ctx.interfaces : options.interfaces.length > 0 ? options.interfaces : [DEFAULT_INTERFACE];
  const addressSet = (local: LocalAddresses): ReadonlySet<string> => new Set([...local.v4, ...(ctx.ipv4Only ? [] : local.v6)]);
  const input = new PcapLiveInput({
    interfaces,
    filter: (local) => buildCaptureFilter(ctx.matcher.activeSequences(), local, { ipv4Only: ctx.ipv4Only }),
    promiscuous: options.promiscuous,
    onAddressesChanged: (local) => ctx.onLocalAddresses(addressSet(local)),
    onError: (error) => ctx.onWarning(error.message),
    onStats: ctx.onInfo ?? ctx.onWarning,
  });
  return {
    inputs: [input],
    doorsChanged: () => {
      input.refreshFilter().catch((error: Error) => ctx.onWarning(`capture filter not updated, the previous one stays: ${error.message}`));
    },
  };
}
