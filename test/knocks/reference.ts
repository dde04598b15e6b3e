/**
 * A second implementation of the message format, written from docs/encrypted-knocks.md ("The message,
 * step by step") with node:crypto alone, the way a client in another language would: the test vectors
 * in the document are checked against it and against src/knocks.
 */
import { createCipheriv, createHmac, hkdfSync } from 'node:crypto';
import { isIP } from 'node:net';

export interface VectorInput {
  name: string;
  /** The key file's bytes, hex. */
  keyFile: string;
  door: string;
  /** Port_Span as written in the config. */
  portSpan: string;
  /** Unix seconds. */
  time: number;
  /** 4 bytes, hex. */
  nonce: string;
  request: { port: number; duration: number; address: string | null };
  /** The knocks' source address as the daemon sees it. */
  source: string;
  /** Seal these bytes (hex) instead of the plaintext of step 5: for messages a correct client never makes. */
  plaintextOverride?: string;
}

export interface Vector extends VectorInput {
  aeadKey: string;
  syncKey: string;
  slot: number;
  kind: number;
  syncHmac: string;
  gcmNonce: string;
  aad: string;
  plaintext: string;
  payload: string;
  symbols: number[];
  values: number[];
  knocks: string;
}

/** The span's ports in value order, as `port` or `port:udp`. */
function spanPorts(text: string): string[] {
  const ports: string[] = [];
  for (const item of text.split(',')) {
    const [range, proto] = item.trim().split(':');
    const [first, last] = range!.split('-').map(Number);
    for (let port = first!; port <= (last ?? first)!; port++) ports.push(proto === 'udp' ? `${port}:udp` : `${port}`);
  }
  return ports;
}

function addressBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const [head, tail = ''] = ip.split('::');
  const groups = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const h = groups(head!);
  const t = groups(tail);
  const all = ip.includes('::') ? [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t] : h;
  return Buffer.from(all.flatMap((group) => [group >> 8, group & 255]));
}

export function referenceVector(input: VectorInput): Vector {
  const ikm = Buffer.from(input.keyFile, 'hex');
  const salt = Buffer.from('knocktail encrypted knocks', 'ascii');
  const aeadKey = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from(`v1 aead ${input.door}`, 'utf8'), 32));
  const syncKey = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from(`v1 sync ${input.door}`, 'utf8'), 32));
  const ports = spanPorts(input.portSpan);
  const k = Math.log2(ports.length);
  const slot = Math.floor(input.time / 32);
  const address = input.request.address;
  const kind = address === null ? 0 : isIP(address) === 4 ? 1 : 2;
  const header = Buffer.alloc(6);
  header.writeUInt8(1, 0);
  header.writeUInt8(kind, 1);
  header.writeUInt32BE(slot, 2);
  const mac = createHmac('sha256', syncKey).update(header).digest();
  const plaintext = Buffer.alloc(5);
  plaintext.writeUInt8(input.time - slot * 32, 0);
  plaintext.writeUInt16BE(input.request.port, 1);
  plaintext.writeUInt16BE(input.request.duration, 3);
  const fullPlaintext =
    input.plaintextOverride !== undefined ? Buffer.from(input.plaintextOverride, 'hex') : address === null ? plaintext : Buffer.concat([plaintext, addressBytes(address)]);
  const nonce = Buffer.from(input.nonce, 'hex');
  const gcmNonce = Buffer.concat([header, nonce, Buffer.from([0, 0])]);
  const aad = kind === 0 ? addressBytes(input.source) : Buffer.alloc(0);
  const cipher = createCipheriv('aes-256-gcm', aeadKey, gcmNonce);
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(fullPlaintext), cipher.final()]);
  const tag = cipher.getAuthTag().subarray(0, 8); // the full 16-byte tag, truncated: what any GCM library can do
  const payload = Buffer.concat([nonce, ciphertext, tag]);
  const d = k - 3;
  const bits = [...payload].map((byte) => byte.toString(2).padStart(8, '0')).join('');
  const symbols: number[] = [];
  for (let at = 0; at < bits.length; at += d) symbols.push(parseInt(bits.slice(at, at + d).padEnd(d, '0'), 2));
  const mix = (x: number): number => {
    let h = x >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    return (h ^ (h >>> 16)) >>> 0;
  };
  const chain = [mix(mac.readUInt32BE(2))];
  for (let j = 1; j < symbols.length; j++) chain.push(mix(chain[j - 1]! ^ (j << 16) ^ symbols[j - 1]!));
  const check = (j: number): number => chain[j]! >>> 29;
  const values = [(mac[0]! * 256 + mac[1]!) % 2 ** k, ...symbols.map((symbol, j) => symbol * 8 + check(j))];
  return {
    ...input,
    aeadKey: aeadKey.toString('hex'),
    syncKey: syncKey.toString('hex'),
    slot,
    kind,
    syncHmac: mac.toString('hex'),
    gcmNonce: gcmNonce.toString('hex'),
    aad: aad.toString('hex'),
    plaintext: fullPlaintext.toString('hex'),
    payload: payload.toString('hex'),
    symbols,
    values,
    knocks: values.map((value) => ports[value]).join(','),
  };
}
