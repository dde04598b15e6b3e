/**
 * Test helpers for the packet layer: builds frames of every supported link type with known fields, and
 * writes classic pcap and pcapng files (tcpdump cannot write pcapng).
 */
import { parseIpv6 } from '../../src/address.js';
import { random } from '../random.js';

export { random };

export type Link = 'ethernet' | 'sll' | 'sll2' | 'raw' | 'raw-ipv4' | 'raw-ipv6' | 'null-le' | 'null-be' | 'loop';

export const LINK_TYPES: Readonly<Record<Link, number>> = {
  ethernet: 1,
  sll: 113,
  sll2: 276,
  raw: 101,
  'raw-ipv4': 228,
  'raw-ipv6': 229,
  'null-le': 0,
  'null-be': 0,
  loop: 108,
};

export type Ipv6Extension = { kind: 'hop' | 'routing' | 'dest'; units: number } | { kind: 'frag'; offset: number } | { kind: 'ah'; units: number };

export interface PacketSpec {
  link: Link;
  /** VLAN tag protocol ids, outermost first (Ethernet/SLL/SLL2). */
  vlan?: number[];
  /** Carried in a PPPoE session frame (Ethernet/SLL/SLL2, inside any VLAN tags): RFC 2516 header, 2-byte PPP protocol. */
  pppoe?: boolean;
  src: string;
  dst: string;
  /** 'icmp' and 'esp' build packets the parser must skip. */
  proto: 'tcp' | 'udp' | 'icmp' | 'esp';
  sport?: number;
  dport?: number;
  flags?: number;
  /** IPv4 options length in bytes (multiple of 4, ≤ 40). */
  ipv4Options?: number;
  /** IPv4 fragment offset in 8-byte units (non-zero = not the first fragment). */
  fragmentOffset?: number;
  ipv6Extensions?: Ipv6Extension[];
  /** Raw TCP option bytes (padded to a multiple of 4). */
  tcpOptions?: number[];
  payload?: number;
  ifindex?: number;
  /** AF_INET6 value for NULL/LOOP headers. */
  af6?: number;
}

export interface BuiltPacket {
  bytes: Uint8Array;
  /** Offset of the TCP/UDP header: a capture needs this plus 20 (TCP) or 8 (UDP) bytes to be parsed. */
  transportOffset: number;
}

const NEXT_HEADER: Record<Ipv6Extension['kind'], number> = { hop: 0, routing: 43, dest: 60, frag: 44, ah: 51 };

function ipv4Bytes(text: string): number[] {
  return text.split('.').map(Number);
}

function ipv6Bytes(text: string): number[] {
  const groups = parseIpv6(text);
  if (groups === null) throw new Error(`bad IPv6 address ${text}`);
  return groups.flatMap((g) => [g >> 8, g & 255]);
}

function u16(value: number): number[] {
  return [(value >> 8) & 255, value & 255];
}

function u32(value: number): number[] {
  return [(value >>> 24) & 255, (value >>> 16) & 255, (value >>> 8) & 255, value & 255];
}

export function buildPacket(spec: PacketSpec): BuiltPacket {
  const v6 = spec.src.includes(':');
  const payload = new Array<number>(spec.payload ?? 0).fill(0x61);
  let transport: number[];
  let protocolNumber: number;
  if (spec.proto === 'tcp') {
    const options = [...(spec.tcpOptions ?? [])];
    while (options.length % 4 !== 0) options.push(0);
    transport = [...u16(spec.sport ?? 40000), ...u16(spec.dport ?? 7000), ...u32(0x01020304), ...u32(0), ((20 + options.length) / 4) << 4, spec.flags ?? 0x02, ...u16(64240), 0, 0, 0, 0, ...options, ...payload];
    protocolNumber = 6;
  } else if (spec.proto === 'udp') {
    transport = [...u16(spec.sport ?? 40000), ...u16(spec.dport ?? 7000), ...u16(8 + payload.length), 0, 0, ...payload];
    protocolNumber = 17;
  } else if (spec.proto === 'icmp') {
    transport = [v6 ? 128 : 8, 0, 0, 0, 0, 1, 0, 1, ...payload];
    protocolNumber = v6 ? 58 : 1;
  } else {
    transport = [...u32(0x1000), ...u32(1), ...payload];
    protocolNumber = 50;
  }
  let ip: number[];
  let ipHeaderLength: number;
  if (!v6) {
    const optionBytes = new Array<number>(spec.ipv4Options ?? 0).fill(1);
    ipHeaderLength = 20 + optionBytes.length;
    const fragment = spec.fragmentOffset ?? 0;
    ip = [0x40 | (ipHeaderLength / 4), 0, ...u16(ipHeaderLength + transport.length), 0x12, 0x34, ...u16(fragment & 0x1fff), 64, protocolNumber, 0, 0, ...ipv4Bytes(spec.src), ...ipv4Bytes(spec.dst), ...optionBytes];
  } else {
    const extensions: number[] = [];
    const chain = spec.ipv6Extensions ?? [];
    chain.forEach((ext, i) => {
      const next = i + 1 < chain.length ? NEXT_HEADER[chain[i + 1].kind] : protocolNumber;
      if (ext.kind === 'frag') extensions.push(next, 0, ...u16(ext.offset << 3), ...u32(0xabcd));
      else if (ext.kind === 'ah') extensions.push(next, ext.units, 0, 0, ...new Array<number>((ext.units + 2) * 4 - 4).fill(0));
      else extensions.push(next, ext.units, ...new Array<number>((ext.units + 1) * 8 - 2).fill(1));
    });
    const first = chain.length > 0 ? NEXT_HEADER[chain[0].kind] : protocolNumber;
    ipHeaderLength = 40 + extensions.length;
    ip = [0x60, 0, 0, 0, ...u16(extensions.length + transport.length), first, 64, ...ipv6Bytes(spec.src), ...ipv6Bytes(spec.dst), ...extensions];
  }
  // PPPoE: version/type 0x11, code 0 (session data), session id, payload length, PPP protocol (IPv4 0x0021, IPv6 0x0057).
  const ppp = spec.pppoe ? [0x11, 0x00, ...u16(0x1234), ...u16(2 + ip.length + transport.length), ...u16(v6 ? 0x0057 : 0x0021)] : [];
  const etherType = spec.pppoe ? 0x8864 : v6 ? 0x86dd : 0x0800;
  // Each tag is TPID + TCI; the TPID of the first tag goes where the EtherType would be.
  const tagged = (headerType: (type: number) => number[]): number[] => {
    const tpids = spec.vlan ?? [];
    if (tpids.length === 0) return headerType(etherType);
    const rest: number[] = [];
    for (let i = 0; i < tpids.length; i++) rest.push(...u16(100 + i), ...u16(i + 1 < tpids.length ? tpids[i + 1] : etherType));
    return [...headerType(tpids[0]), ...rest];
  };
  let link: number[];
  switch (spec.link) {
    case 'ethernet':
      link = tagged((type) => [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, ...u16(type)]);
      break;
    case 'sll':
      link = tagged((type) => [0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0, ...u16(type)]);
      break;
    case 'sll2':
      link = tagged((type) => [...u16(type), 0, 0, ...u32(spec.ifindex ?? 2), 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0]);
      break;
    case 'null-le':
      link = [v6 ? (spec.af6 ?? 10) : 2, 0, 0, 0];
      break;
    case 'null-be':
    case 'loop':
      link = [0, 0, 0, v6 ? (spec.af6 ?? 24) : 2];
      break;
    default:
      link = [];
  }
  const bytes = Uint8Array.from([...link, ...ppp, ...ip, ...transport]);
  return { bytes, transportOffset: link.length + ppp.length + ipHeaderLength };
}


export interface FilePacket {
  /** ms since the epoch. */
  time: number;
  data: Uint8Array;
  /** Length on the wire (default data.length). */
  originalLength?: number;
}

class ByteWriter {
  private readonly parts: Buffer[] = [];
  constructor(private readonly littleEndian: boolean) {}
  u16(value: number): this {
    const b = Buffer.alloc(2);
    if (this.littleEndian) b.writeUInt16LE(value);
    else b.writeUInt16BE(value);
    this.parts.push(b);
    return this;
  }
  u32(value: number): this {
    const b = Buffer.alloc(4);
    if (this.littleEndian) b.writeUInt32LE(value >>> 0);
    else b.writeUInt32BE(value >>> 0);
    this.parts.push(b);
    return this;
  }
  bytes(data: Uint8Array): this {
    this.parts.push(Buffer.from(data));
    return this;
  }
  pad4(): this {
    const length = this.length;
    if (length % 4 !== 0) this.parts.push(Buffer.alloc(4 - (length % 4)));
    return this;
  }
  get length(): number {
    return this.parts.reduce((sum, p) => sum + p.length, 0);
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** A classic pcap file. */
export function writePcap(options: { linkType: number; packets: FilePacket[]; nanoseconds?: boolean; bigEndian?: boolean; snapLength?: number }): Buffer {
  const w = new ByteWriter(!options.bigEndian);
  w.u32(options.nanoseconds ? 0xa1b23c4d : 0xa1b2c3d4).u16(2).u16(4).u32(0).u32(0).u32(options.snapLength ?? 262144).u32(options.linkType);
  for (const packet of options.packets) {
    const snap = options.snapLength ?? 262144;
    const data = packet.data.subarray(0, Math.min(packet.data.length, snap));
    const seconds = Math.floor(packet.time / 1000);
    const fraction = Math.round((packet.time - seconds * 1000) * (options.nanoseconds ? 1e6 : 1e3));
    w.u32(seconds).u32(fraction).u32(data.length).u32(packet.originalLength ?? packet.data.length).bytes(data);
  }
  return w.toBuffer();
}

export interface NgInterface {
  linkType: number;
  name?: string;
  /** if_tsresol byte (default: none = µs). */
  tsresol?: number;
  /** if_tsoffset in seconds. */
  tsoffset?: number;
  snapLength?: number;
}

export type NgBlock =
  | { kind: 'epb'; iface: number; time: number; data: Uint8Array; originalLength?: number }
  | { kind: 'pb'; iface: number; time: number; data: Uint8Array }
  | { kind: 'spb'; data: Uint8Array; originalLength?: number }
  | { kind: 'other'; type: number; body: Uint8Array };

export interface NgSection {
  bigEndian?: boolean;
  interfaces: NgInterface[];
  blocks: NgBlock[];
}

function unitsPerSecond(tsresol: number | undefined): number {
  if (tsresol === undefined) return 1e6;
  return tsresol & 0x80 ? 2 ** (tsresol & 0x7f) : 10 ** tsresol;
}

function block(littleEndian: boolean, type: number, body: (w: ByteWriter) => void): Buffer {
  const inner = new ByteWriter(littleEndian);
  body(inner);
  inner.pad4();
  const content = inner.toBuffer();
  const total = content.length + 12;
  return new ByteWriter(littleEndian).u32(type).u32(total).bytes(content).u32(total).toBuffer();
}

/** A pcapng file: sections (each with its byte order), interface descriptions and packet blocks. */
export function writePcapng(sections: NgSection[]): Buffer {
  const out: Buffer[] = [];
  for (const section of sections) {
    const le = !section.bigEndian;
    out.push(
      block(le, 0x0a0d0d0a, (w) => {
        w.u32(0x1a2b3c4d).u16(1).u16(0).u32(0xffffffff).u32(0xffffffff);
        // shb_userappl option, to have an option to skip.
        const app = Buffer.from('knocktail tests');
        w.u16(4).u16(app.length).bytes(app).pad4().u16(0).u16(0);
      }),
    );
    for (const iface of section.interfaces) {
      out.push(
        block(le, 1, (w) => {
          w.u16(iface.linkType).u16(0).u32(iface.snapLength ?? 0);
          if (iface.name !== undefined) {
            const name = Buffer.from(iface.name);
            w.u16(2).u16(name.length).bytes(name).pad4();
          }
          if (iface.tsresol !== undefined) w.u16(9).u16(1).bytes(Uint8Array.of(iface.tsresol)).pad4();
          if (iface.tsoffset !== undefined) {
            const value = Buffer.alloc(8);
            if (le) value.writeBigInt64LE(BigInt(iface.tsoffset));
            else value.writeBigInt64BE(BigInt(iface.tsoffset));
            w.u16(14).u16(8).bytes(value);
          }
          w.u16(0).u16(0);
        }),
      );
    }
    for (const b of section.blocks) {
      if (b.kind === 'other') {
        out.push(block(le, b.type, (w) => w.bytes(b.body)));
        continue;
      }
      if (b.kind === 'spb') {
        out.push(block(le, 3, (w) => w.u32(b.originalLength ?? b.data.length).bytes(b.data)));
        continue;
      }
      const iface = section.interfaces[b.iface];
      const offsetMs = (iface.tsoffset ?? 0) * 1000;
      const units = BigInt(Math.round(((b.time - offsetMs) / 1000) * unitsPerSecond(iface.tsresol)));
      const high = Number(units >> 32n);
      const low = Number(units & 0xffffffffn);
      if (b.kind === 'epb') {
        out.push(block(le, 6, (w) => w.u32(b.iface).u32(high).u32(low).u32(b.data.length).u32(b.originalLength ?? b.data.length).bytes(b.data)));
      } else {
        out.push(block(le, 2, (w) => w.u16(b.iface).u16(0).u32(high).u32(low).u32(b.data.length).u32(b.data.length).bytes(b.data)));
      }
    }
  }
  return Buffer.concat(out);
}
