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
import { readdirSync, readFileSync, readlinkSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { prefixMatcher } from './nflog.js';
import { emptyPacketFields, DLT_RAW, LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_NULL, LINKTYPE_NFLOG, type NflogFields, type PacketParser, nflogParser, packetParser } from './parse.js';

export interface CaptureSessionConfig {
  iface: string;
  filter: string;
  /** An `nflog:GROUP` device: only messages with this rule prefix count (null: any). */
  nflog?: { prefix: string | null };
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
  /**
   * nflog devices: messages the kernel could not queue to the socket (its drop counter in /proc/net/netlink; null
   * when that row was not found), the bytes waiting in the socket, the logged packets missing from the group's
   * sequence numbers (null: the kernel sends none), and the group's flush timeout in ms as the kernel reports it.
   */
  netlink?: { drops: number | null; queued: number | null; gaps: number | null; flushMs: number | null };
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

/**
 * Hits sent but not yet taken by the parent beyond which new ones are discarded (and counted) rather than
 * queued without bound: about a second of a 100k packets/s flood, some 10 MB. A count of hits, not of
 * batches: under load a batch holds hundreds.
 */
const MAX_PENDING_HITS = 100_000;

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

/** Large enough for any batch the kernel sends (see the session options). */
const NFLOG_SNAP_LENGTH = 65535;
/** linux/netfilter/nfnetlink.h, nfnetlink_log.h, netlink.h. */
const NFNL_SUBSYS_ULOG = 4;
const NFULNL_MSG_CONFIG = 1;
const NFULA_CFG_TIMEOUT = 4;
const NFULA_CFG_FLAGS = 6;
const NFULNL_CFG_F_SEQ = 1;
const NLM_F_REQUEST = 1;
/** The kernel's batches are flushed after this long (in 1/100 s): a knock on a quiet host waits at most 10 ms. */
const NFLOG_FLUSH_TIMEOUT_CENTISECONDS = 1;
/** How often an nflog session read by timer looks again when nothing came (see pumpNflog). */
const NFLOG_PUMP_IDLE_MS = 5;

/** This process's open sockets: inode → file descriptor. */
function openSockets(): Map<string, number> {
  const sockets = new Map<string, number>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (match) sockets.set(match[1]!, Number(fd));
    } catch {
      // closed meanwhile (the directory's own descriptor, among others)
    }
  }
  return sockets;
}

/** The one socket opened since `before` (the session's netlink socket), or null when that is not clear. */
function newSocket(before: ReadonlyMap<string, number>): { inode: string; fd: number } | null {
  const added = [...openSockets()].filter(([inode]) => !before.has(inode));
  return added.length === 1 ? { inode: added[0]![0], fd: added[0]![1] } : null;
}

/**
 * Sets the group's flush timeout to 10 ms and asks for sequence numbers, written on libpcap's own socket (the
 * kernel takes a group's settings only from the socket bound to it, and libpcap sets neither). Without this,
 * the kernel holds messages up to 1 s to batch them (nfnetlink_log's default), and a lost batch leaves no trace
 * in the messages. The kernel answers only on error, and libpcap skips such answers; flushTimeoutMs() checks.
 */
function configureNflogGroup(fd: number, group: number): void {
  const attribute = (type: number, value: Buffer): Buffer => {
    const bytes = Buffer.alloc((4 + value.length + 3) & ~3);
    const little = endianness() === 'LE';
    little ? bytes.writeUInt16LE(4 + value.length, 0) : bytes.writeUInt16BE(4 + value.length, 0);
    little ? bytes.writeUInt16LE(type, 2) : bytes.writeUInt16BE(type, 2);
    value.copy(bytes, 4);
    return bytes;
  };
  const timeout = Buffer.alloc(4);
  timeout.writeUInt32BE(NFLOG_FLUSH_TIMEOUT_CENTISECONDS);
  const flags = Buffer.alloc(2);
  flags.writeUInt16BE(NFULNL_CFG_F_SEQ);
  const groupHeader = Buffer.from([0 /* AF_UNSPEC */, 0 /* version */, group >> 8, group & 255]);
  const body = Buffer.concat([groupHeader, attribute(NFULA_CFG_TIMEOUT, timeout), attribute(NFULA_CFG_FLAGS, flags)]);
  const header = Buffer.alloc(16);
  const little = endianness() === 'LE';
  const u32 = (value: number, at: number) => (little ? header.writeUInt32LE(value, at) : header.writeUInt32BE(value, at));
  const u16 = (value: number, at: number) => (little ? header.writeUInt16LE(value, at) : header.writeUInt16BE(value, at));
  u32(16 + body.length, 0);
  u16((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG, 4);
  u16(NLM_F_REQUEST, 6);
  u32(0, 8);
  u32(0, 12);
  writeSync(fd, Buffer.concat([header, body]));
}

/** The group's flush timeout in ms, from /proc/net/netfilter/nfnetlink_log (this network namespace), or null. */
function flushTimeoutMs(group: number): number | null {
  try {
    for (const line of readFileSync('/proc/net/netfilter/nfnetlink_log', 'latin1').split('\n')) {
      const cells = line.trim().split(/\s+/);
      if (cells.length >= 6 && Number(cells[0]) === group) return Number(cells[5]) * 10;
    }
  } catch {
    // not there: unknown
  }
  return null;
}

/**
 * /proc/net/netlink (this network namespace): per socket inode, the kernel's count of messages it could not
 * queue (Drops: the receive buffer was full) and the bytes queued (Rmem).
 */
function netlinkRows(): Map<string, { drops: number; queued: number }> {
  const rows = new Map<string, { drops: number; queued: number }>();
  let text: string;
  try {
    text = readFileSync('/proc/net/netlink', 'latin1');
  } catch {
    return rows;
  }
  const lines = text.split('\n');
  const columns = (lines[0] ?? '').trim().split(/\s+/);
  const [rmem, drops, inode] = ['Rmem', 'Drops', 'Inode'].map((name) => columns.indexOf(name));
  if (rmem! < 0 || drops! < 0 || inode! < 0) return rows;
  for (const line of lines.slice(1)) {
    const cells = line.trim().split(/\s+/);
    if (cells.length < columns.length) continue;
    rows.set(cells[inode!]!, { drops: Number(cells[drops!]), queued: Number(cells[rmem!]) });
  }
  return rows;
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
  const fields: NflogFields = { ...emptyPacketFields(), time: NaN, seq: NaN };
  /**
   * nflog sessions: the netlink socket's inode (to find its drop counter; null when it was not found), the group,
   * and the logged packets missing from its sequence numbers (null: not asked for).
   */
  const netlink: Array<{ inode: string | null; group: number; lastSeq: number | null; gaps: number | null } | undefined> = [];
  /** Packets libpcap handed over, on every session (the nflog pump reads again at once while it grows). */
  let packetsSeen = 0;
  let batch: HitTuple[] = [];
  let pendingHits = 0;
  let discarded = 0;
  const flush = (): void => {
    const hits = batch;
    batch = [];
    if (pendingHits >= MAX_PENDING_HITS) {
      discarded += hits.length;
      return;
    }
    pendingHits += hits.length;
    send({ type: 'hits', hits }, () => (pendingHits -= hits.length));
  };

  const sessions: Array<PcapSession | null> = [];
  const reports: SessionReport[] = [];
  config.sessions.forEach(({ iface, filter, nflog }, index) => {
    let session: PcapSession;
    let parse: PacketParser;
    let linkType: number | null = null;
    const socketsBefore = nflog === undefined ? null : openSockets();
    try {
      session = pcap.createSession(iface, {
        filter,
        buffer_timeout: 0,
        promiscuous: config.promiscuous,
        // libpcap reads each netlink datagram into a buffer of 128 + snap length bytes, and the kernel batches
        // several messages into one datagram: a smaller buffer would cut batches and stop the capture.
        snap_length: nflog === undefined ? config.snapLength : NFLOG_SNAP_LENGTH,
        buffer_size: config.bufferSize,
      });
      linkType = moduleLinkType(session.link_type);
      parse = nflog === undefined ? packetParser(linkType) : nflogParser(nflog.prefix === null ? null : prefixMatcher(nflog.prefix));
      if (nflog !== undefined && linkType !== LINKTYPE_NFLOG) throw new Error(`${iface} is not an NFLOG device (link type ${linkType})`);
    } catch (error) {
      sessions.push(null);
      reports.push({ iface, linkType, error: error instanceof Error ? error.message : String(error) });
      return;
    }
    session.on('packet', ({ buf, header }) => {
      packetsSeen++;
      const captured = Math.min(readHeaderU32(header, 8), buf.length);
      fields.seq = NaN;
      const ok = parse(buf, 0, captured, fields);
      const socket = netlink[index];
      if (socket !== undefined && socket.gaps !== null && !Number.isNaN(fields.seq)) {
        // The group numbers every message it logs (32 bits, wrapping); a jump is messages the kernel dropped.
        const gap = socket.lastSeq === null ? 0 : (fields.seq - socket.lastSeq - 1) >>> 0;
        if (gap < 2 ** 31) socket.gaps += gap;
        socket.lastSeq = fields.seq;
      }
      if (!ok) return;
      if (batch.length === 0) process.nextTick(flush);
      // NFLOG messages carry the kernel's log time; libpcap stamps them when it reads them (after a batch).
      const time = Number.isFinite(fields.time) ? fields.time : readHeaderU32(header, 0) * 1000 + readHeaderU32(header, 4) / 1000;
      batch.push([time, fields.src, fields.dst, fields.proto, fields.sport, fields.dport, fields.flags, index]);
    });
    // Same as the module's own callback, but it sees dispatch's result: -1 means the capture broke
    // (interface deleted or down), which the module would otherwise swallow. On an nflog device libpcap returns
    // -1 also when the socket is merely empty (EAGAIN), and an nflog device cannot go away: there, -1 only ends
    // the read.
    const native = session.session;
    let pumping = false;
    native.read_callback = () => {
      const result = native.dispatch(session.buf, session.header);
      if (nflog !== undefined) {
        if (!pumping && session.stats().ps_drop > 0) {
          pumping = true;
          pumpNflog(session, index);
        }
        return;
      }
      if (result === -1 && sessions[index] !== null) {
        sessions[index] = null;
        send({ type: 'failed', session: index, error: `capture on ${iface} stopped: the interface went away or went down` });
      }
    };
    if (nflog !== undefined) {
      const socket = newSocket(socketsBefore!);
      const group = Number(iface.slice(iface.indexOf(':') + 1));
      let configured = false;
      if (socket !== null) {
        try {
          configureNflogGroup(socket.fd, group);
          configured = true;
        } catch {
          // The group keeps the kernel's defaults; status shows its flush timeout.
        }
      }
      netlink[index] = { inode: socket?.inode ?? null, group, lastSeq: null, gaps: configured ? 0 : null };
    }
    sessions.push(session);
    reports.push({ iface, linkType, error: null });
  });
  send({ type: 'ready', sessions: reports });

  /**
   * After the kernel found an nflog socket's buffer full, the socket reports an error through poll, and libuv
   * stops polling on an error for good (uv__poll_io), while the pcap module goes on believing it polls: nothing
   * would be read again. From the first overrun on, that session is read by timer instead: at once while
   * messages come, every NFLOG_PUMP_IDLE_MS when none do, and not while the daemon is behind with the batches
   * already sent (the socket's buffer holds the rest meanwhile, and the kernel counts what does not fit).
   */
  const pumpNflog = (session: PcapSession, index: number): void => {
    const pump = (): void => {
      if (sessions[index] === null) return;
      if (pendingHits >= MAX_PENDING_HITS) {
        setTimeout(pump, 1);
        return;
      }
      const before = packetsSeen;
      session.session.read_callback();
      if (packetsSeen > before) setImmediate(pump);
      else setTimeout(pump, NFLOG_PUMP_IDLE_MS);
    };
    setImmediate(pump);
  };

  const reportStats = (done?: () => void): void => {
    const rows = netlink.some((socket) => socket?.inode != null) ? netlinkRows() : null;
    const stats = sessions.map((session, index): SessionStats | null => {
      if (session === null) return null;
      try {
        const { ps_recv, ps_drop, ps_ifdrop } = session.stats();
        const socket = netlink[index];
        if (socket === undefined) return { received: ps_recv, dropped: ps_drop, ifdropped: ps_ifdrop };
        const row = socket.inode === null ? undefined : rows?.get(socket.inode);
        const netlinkStats = { drops: row?.drops ?? null, queued: row?.queued ?? null, gaps: socket.gaps, flushMs: flushTimeoutMs(socket.group) };
        return { received: ps_recv, dropped: ps_drop, ifdropped: ps_ifdrop, netlink: netlinkStats };
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
