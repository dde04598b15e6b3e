/**
 * Command templates: the only place where knock data meets shell text.
 *
 * A template is split into literal text and placeholders once, at config load. At run time only
 * validated, canonical values are substituted: an IP address that passed the canonical-text check
 * below, a door name checked at config load, a number. Nothing a log line carries can add shell syntax.
 * The values are also passed as environment variables, for commands that prefer "$KNOCK_IP".
 */

export interface CommandValues {
  /** Canonical IPv4/IPv6 text. */
  ip: string;
  door: string;
  /** Cmd_Timeout in seconds. */
  timeout: number;
  action: 'start' | 'stop';
}

const PLACEHOLDERS = ['IP', 'DOOR', 'TIMEOUT'] as const;
type Placeholder = (typeof PLACEHOLDERS)[number];
const PLACEHOLDER_PATTERN = /%(IP|DOOR|TIMEOUT)%/g;

/** Canonical address text only: digits, hex letters, dots and colons. */
const SAFE_IP = /^[0-9a-f.:]{2,39}$/;

export class CommandTemplate {
  private readonly parts: Array<string | Placeholder> = [];

  constructor(readonly text: string) {
    let last = 0;
    for (const match of text.matchAll(PLACEHOLDER_PATTERN)) {
      this.parts.push(text.slice(last, match.index), match[1] as Placeholder);
      last = match.index! + match[0].length;
    }
    this.parts.push(text.slice(last));
  }

  /** The command with placeholders replaced; throws if a value is not in its safe form (never reaches a shell). */
  expand(values: CommandValues): string {
    assertSafe(values);
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
  }
}

function assertSafe(values: CommandValues): void {
  if (!SAFE_IP.test(values.ip)) throw new Error(`refusing to run a command for non-canonical address ${JSON.stringify(values.ip)}`);
  if (!Number.isSafeInteger(values.timeout) || values.timeout < 0) throw new Error(`refusing to run a command with timeout ${values.timeout}`);
}

/** Environment variables that carry the same values. */
export function commandEnvironment(values: CommandValues): Record<string, string> {
  assertSafe(values);
  return {
    KNOCK_IP: values.ip,
    KNOCK_FAMILY: values.ip.includes(':') ? '6' : '4',
    KNOCK_DOOR: values.door,
    KNOCK_TIMEOUT: String(values.timeout),
    KNOCK_ACTION: values.action,
  };
}
