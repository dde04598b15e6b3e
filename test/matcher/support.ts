/**
 * Builders for matcher tests: doors written like knockd.conf values, hits written like spec §11
 * (`A tcp/7000 [S] @1.5`), and a rig that records every event and warning.
 */
import { createSecretKey } from 'node:crypto';
import { parseCidr } from '../../src/address.js';
import type { SecretFile } from '../../src/config/secret-file.js';
import { parseSequence, parseTcpFlags } from '../../src/config/sequence.js';
import type { DoorConfig, EncryptedKnocks, PortRange, RollingConfig } from '../../src/config/types.js';
import { type KnockHit, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG } from '../../src/hit.js';
import { encryptedDoorSpec } from '../../src/knocks/decoder.js';
import { MemoryUsedKnocks } from '../../src/knocks/used.js';
import { Matcher, type MatchEvent, type MatcherOptions } from '../../src/matcher/matcher.js';
import { DiskOneTimeFiles } from '../../src/matcher/one-time-files.js';
import { type MessageOptions, message } from '../knocks/message-support.js';

/** Spec §11: the host's address and the knockers. */
export const L = '10.88.0.1';
export const L6 = 'fe80::8c4f:12ff:fe34:5601';
export const A = '10.88.0.2';
export const B = '10.88.0.3';
export const C = '10.88.0.4';
export const A6 = 'fe80::a0b1:ff:fe00:2';

/** Time 0 of every test; `at(s)` is s seconds later, in ms. */
export const T0 = Date.UTC(2024, 0, 1, 12, 0, 0);
export function at(seconds: number): number {
  return T0 + Math.round(seconds * 1000);
}

export interface DoorSettings extends Partial<Omit<DoorConfig, 'tcpFlags' | 'allowFrom'>> {
  /** TCPFlags value, e.g. `syn,!ack`. */
  flags?: string;
  /** Allow_From entries. */
  allow?: string[];
}

/** A door as the config parser would produce it: `door('D', '7000,8000,9000', { seqTimeout: 2 })`. */
export function door(name: string, sequence: string, settings: DoorSettings = {}): DoorConfig {
  const { flags, allow, ...rest } = settings;
  return {
    name,
    at: { file: '/etc/knockd.conf', line: 1 },
    sequence: sequence === '' ? [] : parseSequence(sequence),
    oneTimeSequences: null,
    rolling: null,
    seqTimeout: 25,
    tcpFlags: flags === undefined ? { set: 0, clear: 0 } : parseTcpFlags(flags),
    startCommand: `echo START ${name} %IP%`,
    startCommand6: null,
    stopCommand: null,
    stopCommand6: null,
    cmdTimeout: 10,
    target: null,
    allowFrom: (allow ?? []).map(parseCidr),
    ignoreRepeats: false,
    onReopen: 'extend',
    commandLimit: null,
    encrypted: null,
    knockScope: 'firewall',
    ...rest,
  };
}

/** A secret (a rolling door's, an encrypted door's key) as the config parser would hand it on. */
export function secretOf(bytes: Buffer): SecretFile {
  return { path: '/etc/knocktail/test.secret', key: createSecretKey(bytes), size: bytes.length, uid: 0, mode: 0o600 };
}

/** A rolling door: `rollingDoor('R', { ports: '40000-40999', length: 3 })`, with a fixed test secret unless given. */
export function rollingDoor(name: string, rolling: { ports: string; length?: number; period?: number; secret?: Buffer }, settings: DoorSettings = {}): DoorConfig {
  const [, low, high, proto] = /^(\d+)-(\d+)(?::(udp|tcp))?$/.exec(rolling.ports)!;
  const config: RollingConfig = {
    secret: secretOf(rolling.secret ?? Buffer.from('a rolling secret for the matcher tests')),
    ports: { first: Number(low), last: Number(high), proto: (proto ?? 'tcp') as PortRange['proto'] },
    length: rolling.length ?? 4,
    period: rolling.period ?? 30,
  };
  return door(name, '', { rolling: config, ...settings });
}

/** An encrypted door with `key` on `span` (as test/knocks/message-support.ts's spec() has it), opening `allowed` ports. */
export function encryptedDoor(name: string, key: Buffer, span: PortRange[], encrypted: Partial<Omit<EncryptedKnocks, 'key' | 'span'>> = {}, settings: DoorSettings = {}): DoorConfig {
  return door(name, '', {
    encrypted: { key: secretOf(key), span, allowedPorts: [{ first: 22, last: 22 }, { first: 443, last: 443 }], maxDuration: 3600, window: 60, trustKnockIp: false, ...encrypted },
    ...settings,
  });
}

/** A one-time door reading `path`. */
export function oneTimeDoor(name: string, path: string, settings: DoorSettings = {}): DoorConfig {
  return door(name, '', { oneTimeSequences: path, ...settings });
}

const FLAG_LETTERS: Record<string, number> = { F: TCP_FIN, S: TCP_SYN, R: TCP_RST, P: TCP_PSH, A: TCP_ACK, U: TCP_URG };

export interface HitSettings {
  /** Flag letters as in spec §11 (`SA`, `FPU`); default `S` for TCP; null = the input cannot tell. */
  flags?: string | null;
  /** Destination; default L (or L6 for an IPv6 source). */
  dst?: string;
  /** The firewall that logged it (a collector's file); default none. */
  firewall?: string;
}

/** `hit(A, 'tcp/7000', 1.5, { flags: 'SA' })`. */
export function hit(src: string, what: string, seconds: number, settings: HitSettings = {}): KnockHit {
  const [proto, port] = what.split('/') as ['tcp' | 'udp', string];
  const letters = settings.flags === undefined ? 'S' : settings.flags;
  let flags: number | null = 0;
  if (proto === 'tcp') flags = letters === null ? null : [...letters].reduce((bits, letter) => bits | FLAG_LETTERS[letter]!, 0);
  return {
    time: at(seconds),
    src,
    dst: settings.dst ?? (src.includes(':') ? L6 : L),
    proto,
    dport: Number(port),
    sport: 40000,
    flags,
    input: 'test',
    iface: 'vks0',
    ...(settings.firewall === undefined ? {} : { firewall: settings.firewall }),
  };
}

/** Events as short text, e.g. `stage D 10.88.0.2 1 @2.5` (times in seconds from T0). */
export function describeEvent(event: MatchEvent): string {
  const time = `@${(event.time - T0) / 1000}`;
  switch (event.type) {
    case 'stage':
    case 'timeout':
      return `${event.type} ${event.door.name} ${event.ip} ${event.stage} ${time}`;
    case 'open':
      return `open ${event.door.name} ${event.ip}${event.request === undefined ? '' : ` port ${event.request.port} for ${event.request.duration} from ${event.request.knockIp}`}${event.period === undefined ? '' : ` period ${event.period}`} ${time}${event.firewall === undefined ? '' : ` on ${event.firewall}`}`;
    case 'refused':
      return `refused ${event.door.name} ${event.ip} ${event.reason} ${time}`;
    case 'sequence':
      return `sequence ${event.door.name} ${event.sequence.map((step) => `${step.port}:${step.proto}`).join(',')} ${time}`;
    case 'exhausted':
      return `exhausted ${event.door.name} ${time}`;
    case 'evicted':
      return `evicted ${event.ip} ${event.count} ${time}`;
  }
}

/** A matcher on the spec's test host (isLocal: L and L6) that records what it emits. */
export class Rig {
  readonly events: MatchEvent[] = [];
  readonly warnings: string[] = [];
  readonly matcher: Matcher;

  /** `unmarkedFile`: the daemon's record of one-time marks that could not be written (default: none). */
  constructor(doors: DoorConfig[], options: Partial<MatcherOptions> & { unmarkedFile?: string } = {}) {
    const { unmarkedFile, ...rest } = options;
    const onWarning = (message: string): void => void this.warnings.push(message);
    this.matcher = new Matcher(
      doors,
      { maxSources: 1000, isLocal: (dst) => dst === L || dst === L6, onWarning, oneTimeFiles: new DiskOneTimeFiles(unmarkedFile ?? null, onWarning), usedKnocks: new MemoryUsedKnocks(), ...rest },
      (event) => this.events.push(event),
    );
  }

  knock(src: string, what: string, seconds: number, settings: HitSettings = {}): this {
    this.matcher.handle(hit(src, what, seconds, settings));
    return this;
  }

  /** Knocks every `what` from `src` at the same time. */
  sequence(src: string, whats: string[], seconds = 0, settings: HitSettings = {}): this {
    for (const what of whats) this.knock(src, what, seconds, settings);
    return this;
  }

  /** `door ip` of every open event: what would run a start command. */
  opens(): string[] {
    return this.events.filter((event) => event.type === 'open').map((event) => `${event.door.name} ${event.ip}`);
  }

  trace(...types: MatchEvent['type'][]): string[] {
    return this.events.filter((event) => types.length === 0 || types.includes(event.type)).map(describeEvent);
  }

  clear(): void {
    this.events.length = 0;
  }
}

/** `tcp/PORT` of each knock of a message to an encrypted door, made at `seconds` (bound to `source` unless it names an address). */
export function knocksOf(config: DoorConfig, source: string, seconds: number, options: Omit<MessageOptions, 'time' | 'source'> = {}): string[] {
  const spec = encryptedDoorSpec(config);
  return message(spec, { time: at(seconds), source, ...options }).map((value) => {
    const { proto, port } = spec.span.portOf(value);
    return `${proto}/${port}`;
  });
}
