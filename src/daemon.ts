/**
 * The daemon: wires the configured inputs into the pipeline, logs the way knockd does, and handles
 * reload and shutdown. Start-up order follows knockd (config, log, inputs, pid file, signals).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import cron, { type ScheduledTask } from 'node-cron';
import { SystemClock } from './actions/clock.js';
import { ShellRunner } from './actions/runner.js';
import { MemoryStopStore } from './actions/stop-store.js';
import { debugConfigLines } from './config/explain.js';
import { loadConfig } from './config/parse.js';
import { type Config, ConfigError } from './config/types.js';
import type { EventSink } from './events.js';
import { FormatRegistry } from './formats/registry.js';
import type { KnockHit } from './hit.js';
import type { Input } from './inputs/input.js';
import { createInputs, type InputSet } from './inputs/factory.js';
import { untrustedLogProblems } from './inputs/trust.js';
import { Logger } from './logging.js';
import { Pipeline } from './pipeline.js';

/** Command-line settings (knockd's flags and ours). */
export interface DaemonFlags {
  configPath: string;
  /** -i (repeatable): wins over `Interface =`. */
  interfaces: string[];
  verbose: boolean;
  debug: boolean;
  lookup: boolean;
  /** -p: the config's PidFile wins (knockd). */
  pidFile: string | null;
  /** -g: the config's LogFile wins (knockd). */
  logFile: string | null;
  ipv4Only: boolean;
  fromEnd: boolean;
}

/**
 * Knocks are judged by the time written in the log, which lags the clock a little (rsyslog, journald
 * batching): a timeout is declared only once the clock is this far past it, so a last knock logged
 * just before its deadline but read just after still counts. The timeout event keeps its exact time.
 */
const EXPIRY_GRACE_MS = 1000;

/** How often cursors are saved (a clean stop saves them too). */
const PERSIST_EVERY = '*/5 * * * * *';

export class Daemon {
  private config: Config;
  private readonly logger: Logger;
  private readonly pipeline: Pipeline;
  private inputs: Input[] = [];
  private inputSet: InputSet | null = null;
  /** pcap mode: the capture interfaces' addresses (doors without Target accept these destinations). */
  private localAddresses: ReadonlySet<string> = new Set();
  private deadlineTimer: NodeJS.Timeout | null = null;
  private deadlineDue = Infinity;
  private housekeeping: ScheduledTask | null = null;
  private readonly sinks: EventSink[];

  private constructor(
    private readonly flags: DaemonFlags,
    config: Config,
  ) {
    this.config = config;
    this.logger = new Logger(this.loggerOptions(config));
    this.sinks = [
      (event) => this.logger.event(event),
      (event) => {
        // A one-time door moved on: capture filters must let its next sequence through.
        if (event.type === 'sequence' || event.type === 'exhausted') this.inputSet?.doorsChanged();
      },
    ];
    this.pipeline = new Pipeline(config, {
      clock: new SystemClock(),
      runner: new ShellRunner(),
      store: new MemoryStopStore(),
      // File mode: the firewall's LOG rule already decided which packets are for this host.
      isLocal: config.options.mode === 'pcap' ? (dst) => this.localAddresses.has(dst) : null,
      sinks: this.sinks,
      onWarning: (message) => this.logger.error(`warning: ${message}`),
    });
  }

  /** Loads the config and starts everything; throws ConfigError / Error when it cannot. */
  static async start(flags: DaemonFlags): Promise<Daemon> {
    const config = loadUsableConfig(flags.configPath);
    const daemon = new Daemon(flags, config);
    await daemon.startInputs();
    return daemon;
  }

  private loggerOptions(config: Config) {
    return {
      // knockd: the config's LogFile overrides -g.
      logFile: config.options.logFile ?? this.flags.logFile,
      useSyslog: config.options.useSyslog,
      verbose: this.flags.verbose,
      debug: this.flags.debug,
      lookup: this.flags.lookup,
    };
  }

  /** Where what this daemon reads is named (file mode: the logs; pcap mode: the interfaces). */
  private listeningOn(): string {
    return this.config.options.mode === 'pcap' ? this.interfaces().join(',') : this.config.options.firewallLogs.join(',');
  }

  private interfaces(): string[] {
    return this.flags.interfaces.length > 0 ? this.flags.interfaces : this.config.options.interfaces;
  }

  private async startInputs(): Promise<void> {
    const { config, logger } = this;
    for (const line of debugConfigLines(config)) logger.debug(line);
    for (const warning of config.warnings) logger.error(`warning: ${warning.at.file}:${warning.at.line}: ${warning.message}`);
    mkdirSync(join(config.options.stateDir, 'cursors'), { recursive: true, mode: 0o700 });
    this.pipeline.actions.restore();
    this.inputSet = createInputs({
      config,
      interfaces: this.flags.interfaces,
      fromEnd: this.flags.fromEnd,
      ipv4Only: this.flags.ipv4Only,
      matcher: this.pipeline.matcher,
      onWarning: (message) => this.logger.error(`warning: ${message}`),
      onLocalAddresses: (addresses) => {
        this.localAddresses = addresses;
      },
    });
    this.inputs = this.inputSet.inputs;
    for (const input of this.inputs) await input.start((hit) => this.hit(hit));
    logger.verbose(`listening on ${this.listeningOn()}...`);
    logger.log(`starting up, listening on ${this.listeningOn()}`);
    this.housekeeping = cron.schedule(PERSIST_EVERY, () => this.persistPositions(), { noOverlap: true, name: 'knocktail-persist' });
    this.armDeadline();
  }

  private hit(hit: KnockHit): void {
    // -4 (knockd --only-ip-v4): IPv6 knocks do not exist for the doors.
    if (this.flags.ipv4Only && hit.src.includes(':')) return;
    if (this.logger.debugging) this.logger.debugHit(hit);
    this.pipeline.hit(hit);
    this.armDeadline();
  }

  /** Keeps one timer on the earliest sequence deadline, so timeouts are logged when they happen. */
  private armDeadline(): void {
    const next = this.pipeline.matcher.nextDeadline();
    if (next === null || next >= this.deadlineDue) return;
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer);
    this.deadlineDue = next;
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = null;
      this.deadlineDue = Infinity;
      this.pipeline.matcher.expire(Date.now() - EXPIRY_GRACE_MS);
      this.armDeadline();
    }, Math.max(0, next + EXPIRY_GRACE_MS - Date.now()));
  }

  private persistPositions(): void {
    for (const input of this.inputs) input.persist?.();
  }

  /** The config's PidFile (knockd: it wins over -p). */
  pidFile(): string | null {
    return this.config.options.pidFile;
  }

  /** SIGHUP: re-read the config; a broken one is reported and the daemon keeps the old one (knockd dies). */
  async reload(): Promise<boolean> {
    this.logger.log(`re-reading config file: ${this.flags.configPath}`);
    let config: Config;
    try {
      config = loadUsableConfig(this.flags.configPath);
    } catch (error) {
      this.logger.error(`${(error as Error).message}\nreload failed: still running with the previous config`);
      return false;
    }
    this.config = config;
    this.logger.reopen(this.loggerOptions(config));
    this.pipeline.reload(config);
    this.inputSet?.doorsChanged();
    this.armDeadline();
    return true;
  }

  /** SIGTERM/SIGINT: stop reading, keep pending stops (or run them with CloseOnExit), flush positions. */
  async stop(): Promise<void> {
    this.housekeeping?.destroy();
    this.housekeeping = null;
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
    for (const input of this.inputs) await input.stop();
    const { actions } = this.pipeline;
    if (this.config.options.closeOnExit) await actions.closeAll();
    else actions.disarm();
    await actions.settled();
    this.logger.log('shutting down');
    this.logger.close();
  }
}

/** A config the daemon can run: parsed, its formats compiled, its logs trusted (throws ConfigError otherwise). */
function loadUsableConfig(path: string): Config {
  const config = loadConfig(path);
  FormatRegistry.load(config).resolve(config.options.logFormats, config.optionsAt.logFormats ?? { file: config.path, line: 0 });
  const problems = untrustedLogProblems(config);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
