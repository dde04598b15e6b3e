/**
 * The client side of encrypted knocks (docs/encrypted-knocks.md): a request (port, duration, optionally the
 * address to open for) becomes the knocks of one message to a door. A message without an address is bound to
 * the address the server will see the knocks come from; this host can only know its own source address towards
 * the server, which a NAT router on the way replaces, so that case is recognised and explained.
 */
import { createSocket } from 'node:dgram';
import { canonicalIp, cidrSetMatcher, parseCidr } from '../address.js';
import type { DoorConfig, KnockStep } from '../config/types.js';
import { deriveDoorKeys, encodeMessage, type KnockRequest } from '../knocks/format.js';
import { PortSpan } from '../knocks/span.js';
import { assertSynKnocks } from './door.js';
import { KnockError, type KnockTarget } from './send.js';

/**
 * Pause between the knocks of a message unless -d says otherwise. The decoder takes the knocks in the order they
 * arrive, and packets sent back to back can overtake each other (multi-queue NICs, parallel links); a message of
 * 13 to 54 knocks still takes well under a second.
 */
export const MESSAGE_DELAY_MS = 10;

/** When and with which randomness a message is made, and the address the server will see when it names none. */
export interface MessageContext {
  /** Unix time of the message, whole seconds. */
  time: number;
  /** 4 random bytes, fresh for every message. */
  nonce: Uint8Array;
  /** The knocks' source address as the server will see it; used only when the request names no address. */
  source: string | null;
}

/** The knocks of one message to the encrypted door `door`, in the order they must arrive. */
export function messageKnocks(door: DoorConfig, request: KnockRequest, context: MessageContext): KnockStep[] {
  if (door.encrypted === null) throw new KnockError(`door [${door.name}] is not an encrypted door (it has no Knock_Key)`);
  assertSynKnocks(door);
  const span = new PortSpan(door.encrypted.span);
  const keys = deriveDoorKeys(door.encrypted.key.key, door.name);
  return encodeMessage(keys, span.bits, { request, ...context }).map((value) => span.portOf(value));
}

/**
 * The address this host sends from towards `target`: the kernel's own choice of source address, read from a
 * connected UDP socket (connecting one sends nothing). `port` is the first knock's, in case routing depends on it.
 */
export function sourceAddressTowards(target: KnockTarget, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(target.family === 6 ? 'udp6' : 'udp4');
    const fail = (error: NodeJS.ErrnoException): void => {
      socket.close();
      reject(new KnockError(`cannot tell which address this host knocks ${target.address} from: ${error.code ?? error.message} (give the address to open for with --ip)`));
    };
    socket.once('error', fail);
    // With a callback, a failed connect() (no route) comes to the callback, not as an 'error' event.
    socket.connect(port, target.address, (error?: NodeJS.ErrnoException) => {
      if (error) return fail(error);
      const address = socket.address().address;
      socket.close();
      resolve(canonicalIp(address) ?? address);
    });
  });
}

const ranges = (cidrs: string[]) => cidrSetMatcher(cidrs.map((cidr) => parseCidr(cidr)));
/** Addresses a NAT router hides: RFC 1918, shared address space (carrier-grade NAT), unique local, link-local. */
const isPrivate = ranges(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', 'fc00::/7', 'fe80::/10']);
/** Addresses that are nobody's public address either: loopback, "this network", unspecified. */
const isLocal = ranges(['127.0.0.0/8', '0.0.0.0/8', '::1/128', '::/128']);
/** No door can open for these: they are not one host's. */
const isNotAHost = ranges(['0.0.0.0/32', '::/128', '224.0.0.0/4', '255.255.255.255/32', 'ff00::/8']);
const isIpv4Mapped = ranges(['::ffff:0:0/96']);

/**
 * Why a message bound to `source` will not open when sent to `host`, or null: a private source towards a public
 * host means a NAT router will put another source address on the knocks.
 */
export function natProblem(source: string, host: string): string | null {
  if (!isPrivate(source) || isPrivate(host) || isLocal(host)) return null;
  return (
    `this host knocks ${host} from ${source}, a private address: a NAT router on the way will give the knocks another ` +
    `source address, and a message bound to ${source} will not open the door (the server logs "auth"). ` +
    `Give your public address with --ip ADDRESS; the door then opens if the knocks arrive from that address, ` +
    'or, with Trust_Knock_IP = yes on the door, wherever they arrive from'
  );
}

/** What is wrong with `canonical` as the address a door opens for (--ip), or null. */
export function openForProblem(canonical: string): string | null {
  if (isIpv4Mapped(canonical)) return `${canonical} is an IPv4 address written as IPv6: write it as ${canonical.slice('::ffff:'.length)}`;
  if (isNotAHost(canonical)) return `${canonical} is not the address of one host (unspecified, multicast or broadcast)`;
  return null;
}
