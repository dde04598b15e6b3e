/**
 * Command templates: the only place where knock data meets shell text.
 *
 * A template is split into literal text and placeholders once, at config load. At run time only
 * validated, canonical values are substituted: an IP address that passed the canonical-text check
 * below, a door name checked at config load, a number, a firewall name (address.ts canonicalFirewall). Nothing a log line carries can add shell syntax.
 * The values are also passed as environment variables, for commands that prefer "$KNOCK_IP".
 */
import type { OpenRequest } from '../config/types.js';

export interface CommandValues {
  /** Canonical IPv4/IPv6 text. */
  ip: string;
  door: string;
  /** Seconds until the stop: Cmd_Timeout, or the request's duration. */
  timeout: number;
  action: 'start' | 'stop';
  request?: OpenRequest | null;
  /** The firewall that saw the knock (canonical), when the hits name one. */
  firewall?: string;
}

const PLACEHOLDER_PATTERN = /%(IP|DOOR|TIMEOUT|FIREWALL)%/g;
/** With the placeholders of an encrypted message; in other doors these stay literal text, as in knockd. */
const REQUEST_PLACEHOLDER_PATTERN = /%(IP|DOOR|TIMEOUT|FIREWALL|PORT|DURATION|KNOCK_IP)%/g;
type Placeholder = 'IP' | 'DOOR' | 'TIMEOUT' | 'FIREWALL' | 'PORT' | 'DURATION' | 'KNOCK_IP';

/** Canonical address text only: digits, hex letters, dots and colons. */
const SAFE_IP = /^[0-9a-f.:]{2,39}$/;
/** A canonical firewall name: an address, or a lower-case host name; never a leading `-` (it could pass as an option). */
const SAFE_FIREWALL = /^[0-9a-z.:][0-9a-z.:-]{0,252}$/;

export class CommandTemplate {
  private readonly parts: Array<string | Placeholder> = [];

  /** Whether the command names the firewall: it cannot run for a knock whose firewall is unknown. */
  readonly needsFirewall: boolean;

  /** `withRequest`: the template belongs to a door with Knock_Key, so %PORT%, %DURATION% and %KNOCK_IP% are placeholders. */
  constructor(
    readonly text: string,
    withRequest = false,
  ) {
    let last = 0;
    for (const match of text.matchAll(withRequest ? REQUEST_PLACEHOLDER_PATTERN : PLACEHOLDER_PATTERN)) {
      this.parts.push(text.slice(last, match.index), match[1] as Placeholder);
      last = match.index! + match[0].length;
    }
    this.parts.push(text.slice(last));
    this.needsFirewall = this.parts.includes('FIREWALL');
  }

  /** The command with placeholders replaced; throws if a value is not in its safe form (never reaches a shell). */
  expand(values: CommandValues): string {
    assertSafe(values);
    if (this.needsFirewall && values.firewall === undefined) throw new Error('refusing to run a command with %FIREWALL% for a knock from a log that names no firewall');
    let out = '';
    for (let i = 0; i < this.parts.length; i++) {
      const part = this.parts[i]!;
      out += i % 2 === 0 ? part : valueOf(part as Placeholder, values);
    }
    return out;
  }
}

function valueOf(placeholder: Placeholder, values: CommandValues): string {
  switch (placeholder) {
    case 'IP':
      return values.ip;
    case 'DOOR':
      return values.door;
    case 'TIMEOUT':
      return String(values.timeout);
    case 'FIREWALL':
      return values.firewall!;
    default: {
      const request = values.request;
      if (!request) throw new Error(`refusing to run a command with %${placeholder}% but no encrypted message`);
      return placeholder === 'PORT' ? String(request.port) : placeholder === 'DURATION' ? String(request.duration) : request.knockIp;
    }
  }
}

function assertSafe(values: CommandValues): void {
  if (!SAFE_IP.test(values.ip)) throw new Error(`refusing to run a command for non-canonical address ${JSON.stringify(values.ip)}`);
  if (!Number.isSafeInteger(values.timeout) || values.timeout < 0) throw new Error(`refusing to run a command with timeout ${values.timeout}`);
  if (values.firewall !== undefined && !SAFE_FIREWALL.test(values.firewall)) throw new Error(`refusing to run a command for firewall ${JSON.stringify(values.firewall)}`);
  const request = values.request;
  if (!request) return;
  if (!Number.isInteger(request.port) || request.port < 1 || request.port > 65535) throw new Error(`refusing to run a command for port ${request.port}`);
  if (!Number.isSafeInteger(request.duration) || request.duration < 1) throw new Error(`refusing to run a command with duration ${request.duration}`);
  if (!SAFE_IP.test(request.knockIp)) throw new Error(`refusing to run a command for non-canonical address ${JSON.stringify(request.knockIp)}`);
}

/** Environment variables that carry the same values. */
export function commandEnvironment(values: CommandValues): Record<string, string> {
  assertSafe(values);
  const env: Record<string, string> = {
    KNOCK_IP: values.ip,
    KNOCK_FAMILY: values.ip.includes(':') ? '6' : '4',
    KNOCK_DOOR: values.door,
    KNOCK_TIMEOUT: String(values.timeout),
    KNOCK_ACTION: values.action,
    ...(values.firewall === undefined ? {} : { KNOCK_FIREWALL: values.firewall }),
  };
  if (values.request) {
    env.KNOCK_PORT = String(values.request.port);
    env.KNOCK_DURATION = String(values.request.duration);
    env.KNOCK_SOURCE_IP = values.request.knockIp;
  }
  return env;
}
