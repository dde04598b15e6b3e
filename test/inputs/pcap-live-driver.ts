/**
 * Runs a PcapLiveInput for pcap-live.test.ts inside a network namespace (`ip netns exec NS node THIS --driver JSON`).
 * Prints one JSON event per line; reads commands from stdin: `status`, `refilter JSON-DOORS`, `stop`.
 * Does nothing without `--driver` (the test runner also loads every file under test/).
 */
import { createInterface } from 'node:readline';
import type { DoorConfig, KnockStep, PortRange } from '../../src/config/types.js';
import { PcapLiveInput } from '../../src/inputs/pcap-live.js';
import { type DoorRange, type DoorSequence, Watch } from '../../src/watch.js';

export interface DriverDoor {
  /** `7000,8000:udp`; with `ranges`, ignored. */
  sequence: string;
  /** A rolling or encrypted door's ranges instead: `40000-40999,50000-50255:udp`. */
  ranges?: string;
  set?: number;
  clear?: number;
  target?: string;
}

export interface DriverConfig {
  interfaces: string[];
  doors: DriverDoor[];
  addressRefreshMs?: number;
}

function watchOf(doors: DriverDoor[]): Watch {
  const sequences: DoorSequence[] = [];
  const ranges: DoorRange[] = [];
  for (const d of doors) {
    const items = (d.ranges ?? d.sequence).split(',').map((item) => {
      const [ports = '', proto = 'tcp'] = item.split(':');
      const [first, last = first] = ports.split('-').map(Number);
      return { first: first!, last: last!, proto: proto as KnockStep['proto'] };
    });
    const sequence: KnockStep[] = d.ranges === undefined ? items.map(({ first, proto }) => ({ port: first, proto })) : [];
    const door = { sequence, target: d.target ?? null, tcpFlags: { set: d.set ?? 0, clear: d.clear ?? 0 } } as DoorConfig;
    if (d.ranges === undefined) sequences.push({ door, sequence });
    else ranges.push({ door, ranges: items satisfies PortRange[] });
  }
  return new Watch(sequences, ranges);
}

function print(event: object): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

async function main(config: DriverConfig): Promise<void> {
  const input = new PcapLiveInput({
    interfaces: config.interfaces,
    watch: watchOf(config.doors),
    ipv4Only: false,
    addressRefreshMs: config.addressRefreshMs,
    onAddressesChanged: (local) => print({ event: 'addresses', local }),
    onError: (error) => print({ event: 'error', message: error.message }),
  });
  try {
    await input.start((hit) => print({ event: 'hit', hit }));
  } catch (error) {
    print({ event: 'start-failed', name: (error as Error).name, message: (error as Error).message });
    return;
  }
  print({ event: 'ready', status: input.status() });
  // Commands until `stop` or the end of stdin (the test went away): both stop the input, then the process must exit by itself.
  const commands = createInterface({ input: process.stdin });
  for await (const line of commands) {
    const space = line.indexOf(' ');
    const command = space < 0 ? line : line.slice(0, space);
    if (command === 'status') {
      print({ event: 'status', status: input.status() });
    } else if (command === 'refilter') {
      await input.updateWatch(watchOf(JSON.parse(line.slice(space + 1)) as DriverDoor[]));
      print({ event: 'refiltered', status: input.status() });
    } else if (command === 'stop') {
      break;
    }
  }
  commands.close();
  process.stdin.destroy();
  await input.stop();
  print({ event: 'stopped', status: input.status() });
}

if (process.argv[2] === '--driver') void main(JSON.parse(process.argv[3]) as DriverConfig);
