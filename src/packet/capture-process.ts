/**
 * The process that owns the libpcap sessions of one PcapLiveInput (started by src/inputs/pcap-live.ts with
 * `fork`; it does nothing when merely imported).
 *
 * Why a process of its own: the `pcap` module cannot release an idle session. Its `close()` only calls
 * pcap_breakloop; the handle and its libuv poll handle (which it uv_ref's) are freed in FinalizeClose, which
 * runs only when pcap_dispatch returns -2, and in the non-blocking mode the module always sets, libpcap
 * notices the break only while handing over a packet (pcap-linux.c). With no matching packet, or on an
 * interface that was deleted, the session keeps the event loop alive forever. So the sessions live here,
 * and closing them means this process exiting; a filter change is a new process plus a timestamp handover.
 * It also keeps a crash in the unmaintained native addon away from the daemon.
 *
 * Packets are parsed here with our own parser, synchronously in the packet handler (the module reuses one
 * buffer for every packet), and only TCP/UDP hits cross to the parent, in batches.
 */
import { endianness } from 'node:os';
import { emptyPacketFields, DLT_RAW, LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_NULL, type PacketParser, packetParser } from './parse.js';

export interface CaptureSessionConfig {
  iface: string;
  filter: string;
}

export interface CaptureConfig {
  sessions: CaptureSessionConfig[];
  promiscuous: boolean;
  snapLength: number;
  bufferSize: number;
  /** How often capture statistics are reported, in ms. */
  statsIntervalMs: number;
}

/** A hit as sent to the parent: [time ms, src, dst, proto, sport, dport, flags, session index]. */
export type HitTuple = [number, string, string, 'tcp' | 'udp', number, number, number, number];

export interface SessionStats {
  received: number;
  dropped: number;
  ifdropped: number;
}

export interface SessionReport {
  iface: string;
  /** libpcap link type, or null when the session could not be opened. */
  linkType: number | null;
  error: string | null;
}

export type ParentMessage = { type: 'open'; config: CaptureConfig } | { type: 'stop' };

export type ChildMessage =
  | { type: 'unavailable'; cause: string }
  | { type: 'ready'; sessions: SessionReport[] }
  | { type: 'hits'; hits: HitTuple[] }
  | { type: 'stats'; stats: Array<SessionStats | null>; discarded: number }
  | { type: 'failed'; session: number; error: string };

/** The slice of the `pcap` module (3.1.0) used here. `session` is the native handle behind PcapSession. */
interface PcapModule {
  createSession(device: string, options: object): PcapSession;
  warningHandler: (text: string) => void;
}

interface PcapSession {
  link_type: string;
  buf: Buffer;
  header: Buffer;
  on(event: 'packet', listener: (packet: { buf: Buffer; header: Buffer }) => void): void;
  stats(): { ps_recv: number; ps_drop: number; ps_ifdrop: number };
  session: { read_callback: () => void; dispatch(buf: Buffer, header: Buffer): number };
}

/** The argument that makes this module act as the capture process. */
export const CAPTURE_PROCESS_FLAG = '--knocktail-capture';

/** Batches waiting for the parent beyond this are discarded (and counted) rather than queued without bound. */
const MAX_PENDING_BATCHES = 64;

const LINK_TYPE_BY_MODULE_NAME: ReadonlyMap<string, number> = new Map([
  ['LINKTYPE_NULL', LINKTYPE_NULL],
  ['LINKTYPE_ETHERNET', LINKTYPE_ETHERNET],
  ['LINKTYPE_RAW', DLT_RAW],
  ['LINKTYPE_LINUX_SLL', LINKTYPE_LINUX_SLL],
  ['LINKTYPE_IEEE802_11_RADIO', 127],
]);

/** The module reports the link type as a name, or `Unknown linktype N`. */
function moduleLinkType(name: string): number {
  const known = LINK_TYPE_BY_MODULE_NAME.get(name);
  if (known !== undefined) return known;
  const number = /(\d+)$/.exec(name);
  return number ? Number(number[1]) : -1;
}

function send(message: ChildMessage, done?: () => void): boolean {
  return process.send!(message, undefined, {}, done ? () => done() : undefined);
}

async function loadPcap(): Promise<PcapModule | null> {
  // A variable specifier keeps tsc from resolving the optional module at build time.
  const specifier = 'pcap';
  try {
    const namespace = (await import(specifier)) as { default?: PcapModule };
    return namespace.default ?? (namespace as unknown as PcapModule);
  } catch (error) {
    send({ type: 'unavailable', cause: error instanceof Error ? error.message : String(error) }, () => process.exit(1));
    return null;
  }
}

/** Opens the sessions and reports `ready`; returns the stop procedure (null when the module is unavailable). */
async function run(config: CaptureConfig): Promise<((done: () => void) => void) | null> {
  const pcap = await loadPcap();
  if (pcap === null) return null;
  // Its only warning comes from pcap_lookupnet ("no IPv4 address assigned"): that netmask matters only to
  // `ip broadcast` filters, which we never generate, so the default console.warn would be noise.
  pcap.warningHandler = () => {};

  const readHeaderU32 = endianness() === 'LE' ? (b: Buffer, at: number) => b.readUInt32LE(at) : (b: Buffer, at: number) => b.readUInt32BE(at);
  const fields = emptyPacketFields();
  let batch: HitTuple[] = [];
  let pendingBatches = 0;
  let discarded = 0;
  const flush = (): void => {
    const hits = batch;
    batch = [];
    if (pendingBatches >= MAX_PENDING_BATCHES) {
      discarded += hits.length;
      return;
    }
    pendingBatches++;
    send({ type: 'hits', hits }, () => pendingBatches--);
  };

  const sessions: Array<PcapSession | null> = [];
  const reports: SessionReport[] = [];
  config.sessions.forEach(({ iface, filter }, index) => {
    let session: PcapSession;
    let parse: PacketParser;
    let linkType: number | null = null;
    try {
      session = pcap.createSession(iface, {
        filter,
        buffer_timeout: 0,
        promiscuous: config.promiscuous,
        snap_length: config.snapLength,
        buffer_size: config.bufferSize,
      });
      linkType = moduleLinkType(session.link_type);
      parse = packetParser(linkType);
    } catch (error) {
      sessions.push(null);
      reports.push({ iface, linkType, error: error instanceof Error ? error.message : String(error) });
      return;
    }
    session.on('packet', ({ buf, header }) => {
      const captured = Math.min(readHeaderU32(header, 8), buf.length);
      if (!parse(buf, 0, captured, fields)) return;
      if (batch.length === 0) process.nextTick(flush);
      batch.push([readHeaderU32(header, 0) * 1000 + readHeaderU32(header, 4) / 1000, fields.src, fields.dst, fields.proto, fields.sport, fields.dport, fields.flags, index]);
    });
    // Same as the module's own callback, but it sees dispatch's result: -1 means the capture broke
    // (interface deleted or down), which the module would otherwise swallow.
    const native = session.session;
    native.read_callback = () => {
      if (native.dispatch(session.buf, session.header) === -1 && sessions[index] !== null) {
        sessions[index] = null;
        send({ type: 'failed', session: index, error: `capture on ${iface} stopped: the interface went away or went down` });
      }
    };
    sessions.push(session);
    reports.push({ iface, linkType, error: null });
  });
  send({ type: 'ready', sessions: reports });

  const reportStats = (done?: () => void): void => {
    const stats = sessions.map((session) => {
      if (session === null) return null;
      try {
        const { ps_recv, ps_drop, ps_ifdrop } = session.stats();
        return { received: ps_recv, dropped: ps_drop, ifdropped: ps_ifdrop };
      } catch {
        return null;
      }
    });
    send({ type: 'stats', stats, discarded }, done);
  };
  setInterval(reportStats, config.statsIntervalMs);

  return (done) => {
    // Take what is already in the rings, report it and the final counters, then `done` exits.
    for (const session of sessions) session?.session.read_callback();
    if (batch.length > 0) flush();
    reportStats(done);
  };
}

if (process.send !== undefined && process.argv[2] === CAPTURE_PROCESS_FLAG) {
  // An orphan must not keep capturing: leave when the parent goes away.
  process.on('disconnect', () => process.exit(0));
  let running: ReturnType<typeof run> | null = null;
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'open' && running === null) {
      running = run(message.config);
    } else if (message.type === 'stop') {
      // Leaving is how these sessions close (see above).
      const leave = (): never => process.exit(0);
      void (running ?? Promise.resolve(null)).then((drain) => (drain ? drain(leave) : leave()));
    }
  });
}
