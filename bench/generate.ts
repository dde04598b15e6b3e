/**
 * Deterministic benchmark inputs, made on the fly: iptables LOG lines in the shape of the reference
 * generator gen_iptables_log.py (25 % knock lines, 10 % UDP, 5 % IPv6, documentation addresses), the kernel
 * line body the live benchmarks build their knock and flood lines from, and classic pcap files with the same
 * traffic mix. Same seed, same bytes (the PRNG is not Python's, so not the Python script's bytes).
 */
import { closeSync, openSync, utimesSync, writeSync } from 'node:fs';
import { random } from '../test/random.js';


export interface CorpusOptions {
  seed: number;
  /** Fraction of lines with the `knock: ` prefix and a knock port (7000-7003). */
  knockFraction: number;
  udpFraction: number;
  ipv6Fraction: number;
  /** Mean log lines per second of simulated time. */
  rate: number;
}

export const CORPUS_DEFAULTS: CorpusOptions = { seed: 1, knockFraction: 0.25, udpFraction: 0.1, ipv6Fraction: 0.05, rate: 20 };

/** The ports the generator's knock lines use; the benchmark doors watch exactly these. */
export const KNOCK_PORTS = [7000, 7001, 7002, 7003] as const;
const SOURCE_NETS = ['198.51.100.', '192.0.2.', '203.0.113.'];
const SERVER_V4 = '203.0.113.1';
const SERVER_V6 = '2001:0db8:0000:0000:0000:0000:0000:0001';

/** One generated packet, the common ground of the log lines and the pcap records. */
export interface Packet {
  /** Seconds of simulated time since the start. */
  time: number;
  knock: boolean;
  v6: boolean;
  udp: boolean;
  /** Address as the kernel logs it (IPv6 with every group written out). */
  src: string;
  dst: string;
  sport: number;
  dport: number;
  // Drawn only so that lines and packets look real.
  ttl: number;
  id: number;
  window: number;
  mac: string;
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');
const hex4 = (n: number): string => n.toString(16).padStart(4, '0');

/** An endless deterministic stream of packets with the corpus mix. */
export function* packets(options: CorpusOptions = CORPUS_DEFAULTS): Generator<Packet> {
  const next = random(options.seed);
  const below = (n: number): number => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[below(items.length)]!;
  let time = 0;
  for (;;) {
    time += next() * (2 / options.rate);
    const knock = next() < options.knockFraction;
    const dport = knock ? pick(KNOCK_PORTS) : 1 + below(65535);
    const sport = 1024 + below(64512);
    const v6 = next() < options.ipv6Fraction;
    const udp = next() < options.udpFraction;
    let mac = '52:54:00:12:34:56:';
    for (let i = 0; i < 6; i++) mac += `${hex2(below(256))}:`;
    mac += v6 ? '86:dd' : '08:00';
    yield {
      time,
      knock,
      v6,
      udp,
      src: v6 ? `2001:0db8:${hex4(below(65536))}:${hex4(below(65536))}:0000:0000:0000:${hex4(below(65536))}` : `${pick(SOURCE_NETS)}${1 + below(254)}`,
      dst: v6 ? SERVER_V6 : SERVER_V4,
      sport,
      dport,
      ttl: 40 + below(24),
      id: below(65536),
      window: pick([64240, 29200, 1024]),
      mac,
    };
  }
}

/** `2026-11-21T04:16:16.719457+00:00`: Debian 12 rsyslog's stamp, microseconds from a ms time with a fraction. */
export function rfc3339Stamp(ms: number): string {
  const whole = Math.floor(ms);
  const micros = String(Math.floor((ms - whole) * 1000)).padStart(3, '0');
  return `${new Date(whole).toISOString().slice(0, 23)}${micros}+00:00`;
}

/** The kernel LOG text after `kernel: [uptime] ` for one packet. */
export function logBody(p: Packet, prefix: string): string {
  const ip = p.v6
    ? `SRC=${p.src} DST=${p.dst} LEN=${p.udp ? 72 : 80} TC=0 HOPLIMIT=${p.ttl} FLOWLBL=${p.id * 16}`
    : `SRC=${p.src} DST=${p.dst} LEN=${p.udp ? 44 : 60} TOS=0x00 PREC=0x00 TTL=${p.ttl} ID=${p.id} DF`;
  const l4 = p.udp ? `PROTO=UDP SPT=${p.sport} DPT=${p.dport} LEN=${8 + (p.id % 192)}` : `PROTO=TCP SPT=${p.sport} DPT=${p.dport} WINDOW=${p.window} RES=0x00 SYN URGP=0`;
  return `${prefix}IN=eth0 OUT= MAC=${p.mac} ${ip} ${l4}`;
}

/** The corpus starts on Nov 21 at 10:00:00 (as the Python original); pcap records use this year-fixed instant. */
const CORPUS_START_MS = Date.UTC(2026, 10, 21, 10, 0, 0);
/**
 * A time after the whole corpus (it spans about 14 hours for 1,000,000 lines): year-less stamps are read relative
 * to the file's mtime, so the log file gets this mtime and every line lands in the same year, whenever it runs.
 */
export const CORPUS_MTIME_MS = Date.UTC(2026, 10, 30, 0, 0, 0);

const two = (n: number): string => String(n).padStart(2, '0');

/** A syslog line for a corpus packet: `Nov 21 10:31:47 host kernel: [12345.678901] knock: IN=eth0 …`. */
export function corpusLine(p: Packet): string {
  const t = 10 * 3600 + Math.floor(p.time);
  const stamp = `Nov ${String(21 + Math.floor(t / 86400)).padStart(2, ' ')} ${two(Math.floor(t / 3600) % 24)}:${two(Math.floor(t / 60) % 60)}:${two(t % 60)}`;
  const uptime = (12345 + p.time).toFixed(6).padStart(12, ' ');
  return `${stamp} host kernel: [${uptime}] ${logBody(p, p.knock ? 'knock: ' : 'drop: ')}`;
}

/** Buffered appends to a file descriptor (one write per ~1 MB). */
class LineWriter {
  private parts: string[] = [];
  private size = 0;
  constructor(private readonly fd: number) {}
  line(text: string): void {
    this.parts.push(text);
    this.size += text.length + 1;
    if (this.size >= 1 << 20) this.flush();
  }
  flush(): void {
    if (this.parts.length === 0) return;
    writeSync(this.fd, `${this.parts.join('\n')}\n`);
    this.parts = [];
    this.size = 0;
  }
}

/** Writes `count` corpus lines to `path`; returns its size in bytes and how many were knock lines. */
export function writeCorpus(path: string, count: number, options: CorpusOptions = CORPUS_DEFAULTS): { bytes: number; knocks: number } {
  const fd = openSync(path, 'w');
  const out = new LineWriter(fd);
  let bytes = 0;
  let knocks = 0;
  let n = 0;
  for (const p of packets(options)) {
    if (n++ === count) break;
    const line = corpusLine(p);
    bytes += line.length + 1; // ASCII only
    if (p.knock) knocks++;
    out.line(line);
  }
  out.flush();
  closeSync(fd);
  utimesSync(path, CORPUS_MTIME_MS / 1000, CORPUS_MTIME_MS / 1000);
  return { bytes, knocks };
}

// ── pcap ────────────────────────────────────────────────────────────────────────────────────

const PCAP_HEADER = 24;
const RECORD_HEADER = 16;
const ETHERNET = 14;

function ipv4Bytes(text: string, into: Buffer, at: number): void {
  const parts = text.split('.');
  for (let i = 0; i < 4; i++) into[at + i] = Number(parts[i]);
}

function ipv6Bytes(text: string, into: Buffer, at: number): void {
  // The generator writes all eight groups, so no `::` to expand.
  const groups = text.split(':');
  for (let i = 0; i < 8; i++) into.writeUInt16BE(parseInt(groups[i]!, 16), at + 2 * i);
}

/** One Ethernet frame for a packet: IPv4/IPv6, TCP SYN with MSS/SACK/timestamp/window-scale options (74 bytes over IPv4, like Linux) or UDP with 8 bytes of payload. */
function frame(p: Packet, into: Buffer, at: number): number {
  into.fill(0, at, at + 128);
  // MACs: destination then source; EtherType.
  into.writeUInt32BE(0x52540012, at);
  into.writeUInt16BE(0x3456, at + 4);
  into.writeUInt16BE(p.id, at + 10);
  into.writeUInt16BE(p.v6 ? 0x86dd : 0x0800, at + 12);
  const l4Length = p.udp ? 16 : 40;
  let ip = at + ETHERNET;
  let l4: number;
  if (p.v6) {
    into[ip] = 0x60;
    into.writeUInt16BE(l4Length, ip + 4);
    into[ip + 6] = p.udp ? 17 : 6;
    into[ip + 7] = p.ttl;
    ipv6Bytes(p.src, into, ip + 8);
    ipv6Bytes(p.dst, into, ip + 24);
    l4 = ip + 40;
  } else {
    into[ip] = 0x45;
    into.writeUInt16BE(20 + l4Length, ip + 2);
    into.writeUInt16BE(p.id, ip + 4);
    into[ip + 6] = 0x40; // DF
    into[ip + 8] = p.ttl;
    into[ip + 9] = p.udp ? 17 : 6;
    ipv4Bytes(p.src, into, ip + 12);
    ipv4Bytes(p.dst, into, ip + 16);
    l4 = ip + 20;
  }
  into.writeUInt16BE(p.sport, l4);
  into.writeUInt16BE(p.dport, l4 + 2);
  if (p.udp) {
    into.writeUInt16BE(l4Length, l4 + 4);
  } else {
    into.writeUInt32BE(p.id * 65537, l4 + 4);
    into[l4 + 12] = 0xa0; // 40-byte header
    into[l4 + 13] = 0x02; // SYN
    into.writeUInt16BE(p.window, l4 + 14);
    into.set([2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7], l4 + 20);
  }
  return l4 + l4Length - at;
}

/** Writes a classic little-endian µs pcap (Ethernet) of `count` corpus packets; returns its size in bytes. */
export function writeCorpusPcap(path: string, count: number, options: CorpusOptions = CORPUS_DEFAULTS): number {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(1 << 20);
  chunk.writeUInt32LE(0xa1b2c3d4, 0);
  chunk.writeUInt16LE(2, 4);
  chunk.writeUInt16LE(4, 6);
  chunk.writeUInt32LE(262144, 16);
  chunk.writeUInt32LE(1, 20);
  let used = PCAP_HEADER;
  let bytes = 0;
  const startSeconds = CORPUS_START_MS / 1000;
  let n = 0;
  for (const p of packets(options)) {
    if (n++ === count) break;
    if (used + RECORD_HEADER + 128 > chunk.length) {
      writeSync(fd, chunk, 0, used);
      bytes += used;
      used = 0;
    }
    const length = frame(p, chunk, used + RECORD_HEADER);
    const seconds = startSeconds + p.time;
    chunk.writeUInt32LE(Math.floor(seconds), used);
    chunk.writeUInt32LE(Math.floor((seconds % 1) * 1e6), used + 4);
    chunk.writeUInt32LE(length, used + 8);
    chunk.writeUInt32LE(length, used + 12);
    used += RECORD_HEADER + length;
  }
  writeSync(fd, chunk, 0, used);
  closeSync(fd);
  return bytes + used;
}
