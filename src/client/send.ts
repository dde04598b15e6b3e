/**
 * Sending knocks without root, as knockd's `knock` does: a TCP knock is a non-blocking connect() that is
 * abandoned at once (the SYN is the knock), a UDP knock is one datagram of one zero byte. Used by
 * `knocktail knock`; anything else that knocks (encrypted knocks) sends through here too.
 */
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP, Socket } from 'node:net';
import { getSystemErrorMap } from 'node:util';
import { canonicalIp } from '../address.js';
import type { KnockStep } from '../config/types.js';

export type Family = 4 | 6;

/** Where knocks go: one address (a name is resolved once, so every knock of a sequence reaches the same host). */
export interface KnockTarget {
  address: string;
  family: Family;
}

/** A knock that could not be sent, or a host that could not be resolved: the message says which and why. */
export class KnockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KnockError';
  }
}

const RESOLVER_ERRORS: Record<string, string> = {
  ENOTFOUND: 'no such host',
  ENODATA: 'it has no address of that family',
  EAI_AGAIN: 'no answer from the name server (EAI_AGAIN)',
};

/**
 * Resolves `host` as knock does: an address literal as it is (IPv6 also in brackets), a name through the
 * system resolver (getaddrinfo: /etc/hosts, DNS), taking its first answer; `family` 0 = either.
 */
export async function resolveTarget(host: string, family: Family | 0): Promise<KnockTarget> {
  const literal = /^\[(.*)\]$/.exec(host)?.[1] ?? host;
  const literalFamily = isIP(literal);
  if (literalFamily !== 0) {
    if (family !== 0 && family !== literalFamily) {
      throw new KnockError(`${literal} is an IPv${literalFamily} address, but -${family} asks for IPv${family}`);
    }
    return { address: canonicalIp(literal) ?? literal, family: literalFamily as Family };
  }
  try {
    const answer = await lookup(host, { family, verbatim: true });
    return { address: canonicalIp(answer.address) ?? answer.address, family: answer.family as Family };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = RESOLVER_ERRORS[code ?? ''] ?? code ?? (error as Error).message;
    throw new KnockError(`cannot resolve host "${host}"${family !== 0 ? ` (IPv${family})` : ''}: ${reason}`);
  }
}

export interface SendOptions {
  /** Pause between two knocks, in ms (knock's -d). */
  delayMs?: number;
  /** Called just before each knock is sent (knock's -v prints `hitting tcp ADDRESS:PORT`). */
  onKnock?: (step: KnockStep, target: KnockTarget) => void;
}

/** Sends `steps` in order; rejects with a KnockError at the first knock the system refused to send. */
export async function sendKnocks(target: KnockTarget, steps: readonly KnockStep[], options: SendOptions = {}): Promise<void> {
  for (const [index, step] of steps.entries()) {
    if (index > 0 && options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
    options.onKnock?.(step, target);
    await (step.proto === 'tcp' ? knockTcp(target, step.port) : knockUdp(target, step.port));
  }
}

/** Errors that come back only after the SYN went out: the knock was sent. */
const ANSWERED = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT']);

function notSent(proto: string, target: KnockTarget, port: number, error: NodeJS.ErrnoException): KnockError {
  const known = error.errno === undefined ? undefined : getSystemErrorMap().get(error.errno);
  return new KnockError(`the ${proto} knock on ${target.address} port ${port} was not sent: ${known === undefined ? error.message : `${known[1]} (${known[0]})`}`);
}

/**
 * A SYN, and nothing more. net.Socket makes the connect() call on the next tick (also for an address); once
 * setImmediate runs, it has been made, the kernel has sent the SYN, and any error the call returned has been
 * emitted. Destroying the socket then closes it in SYN-SENT, as knock's close() does.
 */
function knockTcp(target: KnockTarget, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let failure: NodeJS.ErrnoException | null = null;
    socket.on('error', (error) => (failure ??= error));
    socket.connect({ host: target.address, port, family: target.family });
    setImmediate(() => {
      socket.destroy();
      if (failure !== null && !ANSWERED.has(failure.code ?? '')) reject(notSent('TCP', target, port, failure));
      else resolve();
    });
  });
}

function knockUdp(target: KnockTarget, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(target.family === 6 ? 'udp6' : 'udp4');
    // An ICMP error for the datagram may arrive as a socket error; the knock was sent, so it is ignored.
    socket.on('error', () => {});
    socket.send(Buffer.alloc(1), port, target.address, (error) => {
      socket.close();
      if (error) reject(notSent('UDP', target, port, error));
      else resolve();
    });
  });
}
