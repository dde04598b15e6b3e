/**
 * Streaming reader for capture files, in pure JS so replay works where the optional `pcap` module is absent.
 *
 * Classic pcap (µs and ns magic, either byte order) and pcapng (SHB/IDB/EPB/SPB and the obsolete PB, several
 * sections and interfaces, per-interface link type and timestamp resolution, either byte order). The file is
 * read in chunks; each packet is handed to a callback as a view into the chunk buffer. Every length is checked
 * before it is used and every record moves the cursor forward, so a corrupt or truncated file ends in a
 * CaptureFileError naming the byte offset, never in a hang or a huge allocation.
 */
import { open } from 'node:fs/promises';

/** A truncated or corrupt capture file; `offset` is where the bad record starts. */
export class CaptureFileError extends Error {
  readonly path: string;
  readonly offset: number;
  constructor(path: string, offset: number, problem: string) {
    super(`${path}: ${problem} at byte offset ${offset}`);
    this.name = 'CaptureFileError';
    this.path = path;
    this.offset = offset;
  }
}

export type CaptureFileFormat = 'pcap' | 'pcapng';

/** One interface of the file (classic pcap has exactly one). */
export interface CaptureInterface {
  /** Index in its section (pcapng interface id; 0 for classic pcap). */
  index: number;
  linkType: number;
  /** pcapng `if_name`, or null. */
  name: string | null;
}

/**
 * One packet, valid only during the callback: the object and the bytes it points at are reused for the next
 * packet. The frame is `buffer[offset, offset + capturedLength)`.
 */
export interface CapturedPacket {
  /** Packet time in ms since the Unix epoch, with the sub-ms part as a fraction. */
  time: number;
  buffer: Uint8Array;
  offset: number;
  capturedLength: number;
  /** Length on the wire (may exceed capturedLength when the capture was snapped). */
  originalLength: number;
  interface: CaptureInterface;
  /** Byte offset of the packet's record in the file (for messages). */
  recordOffset: number;
}

export interface ReadSummary {
  packets: number;
  bytes: number;
  /** True when reading stopped early because the signal was aborted. */
  aborted: boolean;
}

/** libpcap's own limit on a record's captured length (MAXIMUM_SNAPLEN); anything larger is corruption. */
const MAX_CAPTURED_LENGTH = 262_144;
/** pcapng blocks larger than this are treated as corruption rather than allocated. */
const MAX_BLOCK_LENGTH = 16 * 1024 * 1024;
const CHUNK_SIZE = 1024 * 1024;

/** Whether the first bytes of a file are those of a pcap or pcapng capture. */
export function isCaptureMagic(head: Uint8Array): boolean {
  if (head.length < 4) return false;
  const view = new DataView(head.buffer, head.byteOffset, 4);
  return [true, false].some((le) => [PCAP_MAGIC_MICROS, PCAP_MAGIC_NANOS, PCAPNG_SECTION_HEADER].includes(view.getUint32(0, le)));
}

const PCAP_MAGIC_MICROS = 0xa1b2c3d4;
const PCAP_MAGIC_NANOS = 0xa1b23c4d;
const PCAPNG_SECTION_HEADER = 0x0a0d0d0a;
const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const BLOCK_INTERFACE_DESCRIPTION = 1;
const BLOCK_PACKET_OBSOLETE = 2;
const BLOCK_SIMPLE_PACKET = 3;
const BLOCK_ENHANCED_PACKET = 6;
const OPTION_END = 0;
const OPTION_IF_NAME = 2;
const OPTION_IF_TSRESOL = 9;
const OPTION_IF_TSOFFSET = 14;
const TWO_POW_32 = 4294967296;

interface PcapngInterface extends CaptureInterface {
  snapLength: number;
  /** Milliseconds per timestamp unit (if_tsresol; 10^-6 s by default). */
  msPerUnit: number;
  /** if_tsoffset in ms. */
  offsetMs: number;
}

/** What a capture is read from: a file, a pipe or standard input, read front to back only. */
export interface SequentialFile {
  /** Reads the next bytes into `buffer` at `offset`; 0 at the end. */
  read(buffer: Uint8Array, offset: number, length: number): Promise<number>;
  close(): Promise<void>;
}

/** Sequential buffered reading: `ensure(n)` makes n bytes available at the cursor (callers bound n). */
class ChunkReader {
  buffer: Uint8Array = new Uint8Array(CHUNK_SIZE);
  view = new DataView(this.buffer.buffer);
  /** File offset of buffer[0]. */
  base = 0;
  /** Valid bytes in buffer. */
  length = 0;
  /** Read position in buffer. */
  cursor = 0;
  private eof = false;
  /** Awaited before each read from the file: lets a slow consumer hold the reader back. */
  beforeRead: (() => Promise<void>) | null = null;

  constructor(private readonly file: SequentialFile) {}

  get fileOffset(): number {
    return this.base + this.cursor;
  }

  get available(): number {
    return this.length - this.cursor;
  }

  /** True when `count` bytes are available at the cursor; false only at the end of the file. */
  async ensure(count: number): Promise<boolean> {
    while (this.length - this.cursor < count) {
      if (this.eof) return false;
      if (this.cursor > 0) {
        this.buffer.copyWithin(0, this.cursor, this.length);
        this.base += this.cursor;
        this.length -= this.cursor;
        this.cursor = 0;
      }
      if (count > this.buffer.length) {
        const grown = new Uint8Array(Math.max(count, this.buffer.length * 2));
        grown.set(this.buffer.subarray(0, this.length));
        this.buffer = grown;
        this.view = new DataView(grown.buffer);
      }
      if (this.beforeRead !== null) await this.beforeRead();
      const bytesRead = await this.file.read(this.buffer, this.length, this.buffer.length - this.length);
      if (bytesRead === 0) this.eof = true;
      this.length += bytesRead;
    }
    return true;
  }

  u16(at: number, littleEndian: boolean): number {
    return this.view.getUint16(this.cursor + at, littleEndian);
  }

  u32(at: number, littleEndian: boolean): number {
    return this.view.getUint32(this.cursor + at, littleEndian);
  }
}

/** An opened capture file whose header has been checked; `read` delivers its packets once. */
export class CaptureFileReader {
  readonly path: string;
  readonly format: CaptureFileFormat;
  private readonly file: SequentialFile;
  private readonly reader: ChunkReader;
  private readonly littleEndian: boolean;
  private readonly nanoseconds: boolean;
  private readonly classicInterface: CaptureInterface | null;

  private constructor(path: string, file: SequentialFile, reader: ChunkReader, format: CaptureFileFormat, littleEndian: boolean, nanoseconds: boolean, classicInterface: CaptureInterface | null) {
    this.path = path;
    this.file = file;
    this.reader = reader;
    this.format = format;
    this.littleEndian = littleEndian;
    this.nanoseconds = nanoseconds;
    this.classicInterface = classicInterface;
  }

  /** Opens `path` and checks its file header; rejects with a readable error when it is no capture file. */
  static async open(path: string): Promise<CaptureFileReader> {
    const handle = await open(path, 'r');
    return CaptureFileReader.from(path, {
      read: async (buffer, offset, length) => (await handle.read(buffer, offset, length, null)).bytesRead,
      close: () => handle.close(),
    });
  }

  /** Checks the file header of a capture opened elsewhere (named `path` in messages); closes it when it is no capture. */
  static async from(path: string, file: SequentialFile): Promise<CaptureFileReader> {
    try {
      const reader = new ChunkReader(file);
      if (!(await reader.ensure(4))) throw new CaptureFileError(path, 0, 'file too short to be a pcap or pcapng capture');
      const magicBigEndian = reader.u32(0, false);
      const magicLittleEndian = reader.u32(0, true);
      if (magicBigEndian === PCAPNG_SECTION_HEADER) {
        return new CaptureFileReader(path, file, reader, 'pcapng', true, false, null);
      }
      for (const littleEndian of [true, false]) {
        const magic = littleEndian ? magicLittleEndian : magicBigEndian;
        if (magic !== PCAP_MAGIC_MICROS && magic !== PCAP_MAGIC_NANOS) continue;
        if (!(await reader.ensure(24))) throw new CaptureFileError(path, 0, 'truncated pcap file header (needs 24 bytes)');
        const linkType = reader.u32(20, littleEndian) & 0xffff;
        reader.cursor += 24;
        return new CaptureFileReader(path, file, reader, 'pcap', littleEndian, magic === PCAP_MAGIC_NANOS, { index: 0, linkType, name: null });
      }
      throw new CaptureFileError(
        path,
        0,
        `not a pcap or pcapng file (magic 0x${magicBigEndian.toString(16).padStart(8, '0')}); ` +
          'knocktail reads tcpdump/Wireshark captures (.pcap, .pcapng)',
      );
    } catch (error) {
      await file.close();
      throw error;
    }
  }

  /**
   * Calls `onPacket` for every packet in file order, then closes the file. Rejects with CaptureFileError on a
   * truncated or corrupt record (after delivering the packets before it). Stops early when `signal` aborts.
   * `beforeRead` is awaited before each further read from the file (backpressure for pull-based consumers).
   */
  async read(onPacket: (packet: CapturedPacket) => void, signal?: AbortSignal, beforeRead?: () => Promise<void>): Promise<ReadSummary> {
    this.reader.beforeRead = beforeRead ?? null;
    try {
      return this.format === 'pcap' ? await this.readClassic(onPacket, signal) : await this.readPcapng(onPacket, signal);
    } finally {
      await this.file.close();
    }
  }

  private async readClassic(onPacket: (packet: CapturedPacket) => void, signal: AbortSignal | undefined): Promise<ReadSummary> {
    const reader = this.reader;
    const le = this.littleEndian;
    const fractionToMs = this.nanoseconds ? 1e-6 : 1e-3;
    const packet: CapturedPacket = {
      time: 0,
      buffer: reader.buffer,
      offset: 0,
      capturedLength: 0,
      originalLength: 0,
      interface: this.classicInterface!,
      recordOffset: 0,
    };
    const summary: ReadSummary = { packets: 0, bytes: 0, aborted: false };
    for (;;) {
      if (signal?.aborted) return { ...summary, aborted: true };
      if (reader.available < 16 && !(await reader.ensure(16))) {
        if (reader.available > 0) throw new CaptureFileError(this.path, reader.fileOffset, `truncated packet record header (${reader.available} of 16 bytes)`);
        return summary;
      }
      const capturedLength = reader.u32(8, le);
      if (capturedLength > MAX_CAPTURED_LENGTH) {
        throw new CaptureFileError(this.path, reader.fileOffset, `corrupt packet record: captured length ${capturedLength} exceeds ${MAX_CAPTURED_LENGTH}`);
      }
      if (reader.available < 16 + capturedLength && !(await reader.ensure(16 + capturedLength))) {
        throw new CaptureFileError(this.path, reader.fileOffset, `truncated packet record: ${capturedLength} captured bytes announced, ${reader.available - 16} present`);
      }
      packet.time = reader.u32(0, le) * 1000 + reader.u32(4, le) * fractionToMs;
      packet.originalLength = reader.u32(12, le);
      packet.capturedLength = capturedLength;
      packet.buffer = reader.buffer;
      packet.offset = reader.cursor + 16;
      packet.recordOffset = reader.fileOffset;
      onPacket(packet);
      reader.cursor += 16 + capturedLength;
      summary.packets++;
      summary.bytes += capturedLength;
    }
  }

  private async readPcapng(onPacket: (packet: CapturedPacket) => void, signal: AbortSignal | undefined): Promise<ReadSummary> {
    const reader = this.reader;
    let le = true;
    let interfaces: PcapngInterface[] = [];
    const packet: CapturedPacket = { time: 0, buffer: reader.buffer, offset: 0, capturedLength: 0, originalLength: 0, interface: { index: 0, linkType: 0, name: null }, recordOffset: 0 };
    const summary: ReadSummary = { packets: 0, bytes: 0, aborted: false };
    // A Simple Packet Block has no timestamp: it gets the time of the packet before it.
    let lastTime = 0;
    let sawSection = false;
    for (;;) {
      if (signal?.aborted) return { ...summary, aborted: true };
      const blockOffset = reader.fileOffset;
      if (reader.available < 12 && !(await reader.ensure(12))) {
        if (reader.available > 0) throw new CaptureFileError(this.path, blockOffset, `truncated block header (${reader.available} of 12 bytes)`);
        return summary;
      }
      const blockType = reader.u32(0, le);
      if (blockType === PCAPNG_SECTION_HEADER) {
        // The byte order of a section is known only from its own byte-order magic.
        const orderMagicLittle = reader.u32(8, true);
        if (orderMagicLittle === PCAPNG_BYTE_ORDER_MAGIC) le = true;
        else if (reader.u32(8, false) === PCAPNG_BYTE_ORDER_MAGIC) le = false;
        else throw new CaptureFileError(this.path, blockOffset, 'corrupt section header block: bad byte-order magic');
        interfaces = [];
        sawSection = true;
      } else if (!sawSection) {
        throw new CaptureFileError(this.path, blockOffset, 'pcapng file does not start with a section header block');
      }
      const blockLength = reader.u32(4, le);
      if (blockLength < 12 || blockLength % 4 !== 0 || blockLength > MAX_BLOCK_LENGTH) {
        throw new CaptureFileError(this.path, blockOffset, `corrupt block (type 0x${blockType.toString(16)}): total length ${blockLength}`);
      }
      if (reader.available < blockLength && !(await reader.ensure(blockLength))) {
        throw new CaptureFileError(this.path, blockOffset, `truncated block (type 0x${blockType.toString(16)}): ${blockLength} bytes announced, ${reader.available} present`);
      }
      if (reader.u32(blockLength - 4, le) !== blockLength) {
        throw new CaptureFileError(this.path, blockOffset, `corrupt block (type 0x${blockType.toString(16)}): trailing length differs from leading length ${blockLength}`);
      }
      const corrupt = (problem: string): CaptureFileError => new CaptureFileError(this.path, blockOffset, problem);
      switch (blockType) {
        case PCAPNG_SECTION_HEADER:
          if (blockLength < 28) throw corrupt('corrupt section header block: shorter than 28 bytes');
          if (reader.u16(12, le) !== 1) throw corrupt(`unsupported pcapng major version ${reader.u16(12, le)}`);
          break;
        case BLOCK_INTERFACE_DESCRIPTION:
          if (blockLength < 20) throw corrupt('corrupt interface description block: shorter than 20 bytes');
          interfaces.push(this.interfaceDescription(interfaces.length, blockLength, le, corrupt));
          break;
        case BLOCK_ENHANCED_PACKET:
        case BLOCK_PACKET_OBSOLETE: {
          if (blockLength < 32) throw corrupt('corrupt packet block: shorter than 32 bytes');
          const enhanced = blockType === BLOCK_ENHANCED_PACKET;
          const interfaceId = enhanced ? reader.u32(8, le) : reader.u16(8, le);
          const iface = interfaces[interfaceId];
          if (iface === undefined) throw corrupt(`packet block for interface ${interfaceId}, but only ${interfaces.length} interface(s) are described`);
          const capturedLength = reader.u32(20, le);
          if (capturedLength > blockLength - 32) throw corrupt(`corrupt packet block: captured length ${capturedLength} does not fit in block of ${blockLength} bytes`);
          lastTime = (reader.u32(12, le) * TWO_POW_32 + reader.u32(16, le)) * iface.msPerUnit + iface.offsetMs;
          this.deliver(packet, onPacket, iface, lastTime, reader.cursor + 28, capturedLength, reader.u32(24, le), blockOffset);
          summary.packets++;
          summary.bytes += capturedLength;
          break;
        }
        case BLOCK_SIMPLE_PACKET: {
          if (blockLength < 16) throw corrupt('corrupt simple packet block: shorter than 16 bytes');
          const iface = interfaces[0];
          if (iface === undefined) throw corrupt('simple packet block before any interface description block');
          const originalLength = reader.u32(8, le);
          let capturedLength = Math.min(originalLength, blockLength - 16);
          if (iface.snapLength > 0) capturedLength = Math.min(capturedLength, iface.snapLength);
          this.deliver(packet, onPacket, iface, lastTime, reader.cursor + 12, capturedLength, originalLength, blockOffset);
          summary.packets++;
          summary.bytes += capturedLength;
          break;
        }
        default:
          // Name resolution, statistics, decryption secrets, custom blocks: nothing a knock needs.
          break;
      }
      reader.cursor += blockLength;
    }
  }

  private deliver(
    packet: CapturedPacket,
    onPacket: (packet: CapturedPacket) => void,
    iface: CaptureInterface,
    time: number,
    offset: number,
    capturedLength: number,
    originalLength: number,
    recordOffset: number,
  ): void {
    packet.time = time;
    packet.buffer = this.reader.buffer;
    packet.offset = offset;
    packet.capturedLength = capturedLength;
    packet.originalLength = originalLength;
    packet.interface = iface;
    packet.recordOffset = recordOffset;
    onPacket(packet);
  }

  private interfaceDescription(index: number, blockLength: number, le: boolean, corrupt: (problem: string) => CaptureFileError): PcapngInterface {
    const reader = this.reader;
    const iface: PcapngInterface = { index, linkType: reader.u16(8, le), name: null, snapLength: reader.u32(12, le), msPerUnit: 1e-3, offsetMs: 0 };
    const optionsEnd = blockLength - 4;
    let at = 16;
    while (at + 4 <= optionsEnd) {
      const code = reader.u16(at, le);
      const length = reader.u16(at + 2, le);
      if (code === OPTION_END) break;
      const valueAt = at + 4;
      if (valueAt + length > optionsEnd) throw corrupt(`corrupt interface description block: option ${code} runs past the block`);
      if (code === OPTION_IF_NAME) {
        const start = reader.cursor + valueAt;
        let end = start + length;
        while (end > start && reader.buffer[end - 1] === 0) end--;
        iface.name = Buffer.from(reader.buffer.buffer, reader.buffer.byteOffset + start, end - start).toString('utf8');
      } else if (code === OPTION_IF_TSRESOL && length >= 1) {
        const resolution = reader.buffer[reader.cursor + valueAt];
        const exponent = resolution & 0x7f;
        const unitsPerSecond = resolution & 0x80 ? 2 ** exponent : 10 ** exponent;
        iface.msPerUnit = 1000 / unitsPerSecond;
      } else if (code === OPTION_IF_TSOFFSET && length >= 8) {
        const high = reader.view.getInt32(reader.cursor + valueAt + (le ? 4 : 0), le);
        const low = reader.u32(valueAt + (le ? 0 : 4), le);
        iface.offsetMs = (high * TWO_POW_32 + low) * 1000;
      }
      at = valueAt + ((length + 3) & ~3);
    }
    return iface;
  }
}
