/**
 * Replay input for capture files (pcap or pcapng, see src/packet/pcap-file.ts): every TCP/UDP packet becomes
 * a KnockHit stamped with its capture time, in file order. No libpcap involved.
 */
import { Readable } from 'node:stream';
import type { KnockHit } from '../hit.js';
import { type CaptureFileFormat, CaptureFileReader, type CaptureInterface, type CapturedPacket } from '../packet/pcap-file.js';
import { emptyPacketFields, fillAddresses, type NflogFields, type PacketParser, packetParser, UnsupportedLinkTypeError } from '../packet/parse.js';
import type { HitSink, Input, InputStatus } from './input.js';

export interface PcapFileSummary {
  packets: number;
  hits: number;
  /** Packets that were not TCP/UDP (ARP, ICMP, later fragments, malformed), or to ports no door uses. */
  skipped: number;
  /** True when stop() ended the replay before the end of the file. */
  aborted: boolean;
}

export class PcapFileInput implements Input {
  /** The path as given. */
  readonly id: string;
  /** Settles when the whole file has been delivered (or stop() ended it); rejects on a corrupt file. */
  readonly done: Promise<PcapFileSummary>;
  private settle!: { resolve(summary: PcapFileSummary): void; reject(error: Error): void };
  private readonly abort = new AbortController();
  /** `time` is set by the NFLOG parser only (the kernel's log time; the record's stamp is when libpcap read it). */
  private readonly fields: NflogFields = { ...emptyPacketFields(), time: NaN, seq: NaN };
  private readonly parsers = new Map<CaptureInterface, PacketParser>();
  /** `ifindex:N` names of SLL2 interface indexes, made once each. */
  private readonly ifindexNames = new Map<number, string>();
  private format: CaptureFileFormat | null = null;
  private started = false;
  private finished = false;
  private packets = 0;
  private hits = 0;
  private fileOffset = 0;

  /**
   * `watches` (replay passes the matcher's): packets to ports no door uses are dropped before their addresses
   * are turned into text, the costly part of reading a capture.
   */
  constructor(
    path: string,
    private readonly watches: ((proto: KnockHit['proto'], port: number) => boolean) | null = null,
  ) {
    this.id = path;
    this.done = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // Callers that only use start()/stop() need not listen: a corrupt file must not become an unhandled rejection.
    this.done.catch(() => {});
  }

  /** Opens the file and checks its header (rejects with a readable error), then delivers hits in the background. */
  async start(sink: HitSink): Promise<void> {
    if (this.started) throw new Error(`${this.id}: replay already started`);
    this.started = true;
    const reader = await CaptureFileReader.open(this.id);
    this.format = reader.format;
    reader.read((packet) => this.packet(packet, sink), this.abort.signal).then(
      (summary) => this.finish(() => this.settle.resolve({ packets: this.packets, hits: this.hits, skipped: this.packets - this.hits, aborted: summary.aborted })),
      (error: Error) => this.finish(() => this.settle.reject(error)),
    );
  }

  /**
   * Pull-based delivery for replay: hits in batches (one per chunk of the file), read no further ahead
   * than the consumer, so commands run with --execute finish before later packets are read.
   */
  async *batches(): AsyncGenerator<KnockHit[]> {
    if (this.started) throw new Error(`${this.id}: replay already started`);
    this.started = true;
    const reader = await CaptureFileReader.open(this.id);
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
    const collect: HitSink = (hit) => batch.push(hit);
    reader
      .read(
        (packet) => this.packet(packet, collect),
        this.abort.signal,
        () => (hand() ? new Promise<void>((r) => (resume = r)) : Promise.resolve()),
      )
      .then(
        (summary) => {
          hand();
          queue.push(null);
          this.finish(() => this.settle.resolve({ packets: this.packets, hits: this.hits, skipped: this.packets - this.hits, aborted: summary.aborted }));
        },
        (error: Error) => {
          queue.destroy(error);
          this.finish(() => this.settle.reject(error));
        },
      );
    yield* queue as AsyncIterable<KnockHit[]>;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    if (!this.started) this.finish(() => this.settle.resolve({ packets: 0, hits: 0, skipped: 0, aborted: true }));
    await this.done.catch(() => {});
  }

  status(): InputStatus {
    return { id: this.id, kind: 'pcap-file', format: this.format, packets: this.packets, hits: this.hits, offset: this.fileOffset, done: this.finished };
  }

  private packet(packet: CapturedPacket, sink: HitSink): void {
    this.packets++;
    this.fileOffset = packet.recordOffset;
    const fields = this.fields;
    fields.time = NaN;
    if (!this.parserFor(packet.interface)(packet.buffer, packet.offset, packet.offset + packet.capturedLength, fields)) return;
    if (this.watches !== null && !this.watches(fields.proto, fields.dport)) return;
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

  private finish(settle: () => void): void {
    if (this.finished) return;
    this.finished = true;
    settle();
  }
}
