/**
 * Replay input for capture files (pcap or pcapng, see src/packet/pcap-file.ts): every TCP/UDP packet becomes
 * a KnockHit stamped with its capture time, in file order, pulled in batches. No libpcap involved.
 */
import { Readable } from 'node:stream';
import type { KnockHit } from '../hit.js';
import { type CaptureFileFormat, CaptureFileReader, type CaptureInterface, type CapturedPacket } from '../packet/pcap-file.js';
import { emptyPacketFields, fillAddresses, type NflogFields, type PacketParser, packetParser, UnsupportedLinkTypeError } from '../packet/parse.js';
import type { PortWatch } from '../watch.js';

export interface PcapFileSummary {
  packets: number;
  hits: number;
  /** Packets that were not TCP/UDP (ARP, ICMP, later fragments, malformed), or to ports no door may use. */
  skipped: number;
}

export class PcapFileInput {
  /** The path as given. */
  readonly id: string;
  /** `time` is set by the NFLOG parser only (the kernel's log time; the record's stamp is when libpcap read it). */
  private readonly fields: NflogFields = { ...emptyPacketFields(), time: NaN, seq: NaN };
  private readonly parsers = new Map<CaptureInterface, PacketParser>();
  /** `ifindex:N` names of SLL2 interface indexes, made once each. */
  private readonly ifindexNames = new Map<number, string>();
  private format: CaptureFileFormat | null = null;
  private started = false;
  private packets = 0;
  private hits = 0;

  /**
   * `watch` (replay passes the doors'): packets to ports no door may use are dropped before their addresses are
   * turned into text, the costly part of reading a capture. `openReader`: a capture opened elsewhere (a pipe).
   */
  constructor(
    path: string,
    private readonly watch: PortWatch | null = null,
    private readonly openReader: () => Promise<CaptureFileReader> = () => CaptureFileReader.open(path),
  ) {
    this.id = path;
  }

  /**
   * The hits in batches (one per chunk of the file), read no further ahead than the consumer, so commands run with
   * --execute finish before later packets are read. Throws a readable error on a corrupt file.
   */
  async *batches(): AsyncGenerator<KnockHit[]> {
    if (this.started) throw new Error(`${this.id}: replay already started`);
    this.started = true;
    const reader = await this.openReader();
    this.format = reader.format;
    let resume: (() => void) | null = null;
    const queue = new Readable({
      objectMode: true,
      highWaterMark: 2,
      read: () => {
        resume?.();
        resume = null;
      },
    });
    let batch: KnockHit[] = [];
    const hand = (): boolean => {
      const full = batch.length > 0 && !queue.push(batch);
      batch = [];
      return full;
    };
    const collect = (hit: KnockHit): void => {
      batch.push(hit);
    };
    const abort = new AbortController();
    reader
      .read(
        (packet) => this.packet(packet, collect),
        abort.signal,
        () => (hand() ? new Promise<void>((r) => (resume = r)) : Promise.resolve()),
      )
      .then(
        () => {
          hand();
          queue.push(null);
        },
        (error: Error) => queue.destroy(error),
      );
    try {
      yield* queue as AsyncIterable<KnockHit[]>;
    } finally {
      // The consumer stopped early (an error downstream): stop reading the file too.
      abort.abort();
      (resume as (() => void) | null)?.();
    }
  }

  /** What was read so far. */
  summary(): PcapFileSummary {
    return { packets: this.packets, hits: this.hits, skipped: this.packets - this.hits };
  }

  private packet(packet: CapturedPacket, sink: (hit: KnockHit) => void): void {
    this.packets++;
    const fields = this.fields;
    fields.time = NaN;
    if (!this.parserFor(packet.interface)(packet.buffer, packet.offset, packet.offset + packet.capturedLength, fields)) return;
    if (this.watch !== null && !this.watch.watches(fields.proto, fields.dport)) return;
    fillAddresses(packet.buffer, fields);
    this.hits++;
    const hit: KnockHit = {
      time: Number.isFinite(fields.time) ? fields.time : packet.time,
      src: fields.src,
      dst: fields.dst,
      proto: fields.proto,
      dport: fields.dport,
      sport: fields.sport,
      flags: fields.flags,
      input: this.id,
      iface: this.interfaceName(packet.interface),
    };
    sink(hit);
  }

  private parserFor(iface: CaptureInterface): PacketParser {
    let parser = this.parsers.get(iface);
    if (parser === undefined) {
      try {
        parser = packetParser(iface.linkType, false);
      } catch (error) {
        if (!(error instanceof UnsupportedLinkTypeError)) throw error;
        const which = this.format === 'pcapng' ? `interface ${iface.index}${iface.name === null ? '' : ` (${iface.name})`}` : 'the capture';
        throw new Error(`${this.id}: ${which}: ${error.message}`);
      }
      this.parsers.set(iface, parser);
    }
    return parser;
  }

  /** The pcapng interface name, unless it is absent or `any`: then the SLL2 interface index, if the frame has one. */
  private interfaceName(iface: CaptureInterface): string | null {
    const ifindex = this.fields.ifindex;
    if ((iface.name === null || iface.name === 'any') && ifindex >= 0) {
      let name = this.ifindexNames.get(ifindex);
      if (name === undefined) {
        name = `ifindex:${ifindex}`;
        this.ifindexNames.set(ifindex, name);
      }
      return name;
    }
    return iface.name;
  }
}
