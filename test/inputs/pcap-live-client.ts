/**
 * The test side of pcap-live-driver.js: a PcapLiveInput running in a network namespace (Node cannot enter one
 * itself), seen through the events it prints, told what to do on its stdin.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from '../helpers.js';
import type { DriverConfig } from './pcap-live-driver.js';

export const DRIVER = join(repoRoot, 'dist', 'test', 'inputs', 'pcap-live-driver.js');

export interface HitEvent {
  src: string;
  dst: string;
  proto: string;
  sport: number;
  dport: number;
  flags: number;
  iface: string | null;
  input: string;
  time: number;
}

export type Event = { event: string; hit?: HitEvent; status?: { [key: string]: unknown }; message?: string; local?: { v4: string[]; v6: string[] } };

/** A PcapLiveInput running in a namespace, seen through its events. */
export class Driver {
  readonly events: Event[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private readonly waiters = new Set<() => void>();

  constructor(command: string, args: string[], cwd?: string) {
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'], cwd });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.events.push(JSON.parse(line) as Event);
      for (const wake of this.waiters) wake();
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  static inNamespace(ns: string, config: DriverConfig): Driver {
    return new Driver('ip', ['netns', 'exec', ns, process.execPath, DRIVER, '--driver', JSON.stringify(config)]);
  }

  /** The first event (from the start) that matches; fails after `limitMs` with what was seen. */
  until(predicate: (event: Event) => boolean, what: string, limitMs = 20_000): Promise<Event> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.events.find(predicate);
        if (found === undefined) return false;
        this.waiters.delete(wake);
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const wake = (): void => void check();
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`no ${what} within ${limitMs} ms; events: ${JSON.stringify(this.events).slice(0, 3000)}`));
      }, limitMs);
      this.waiters.add(wake);
      check();
    });
  }

  hit(predicate: (hit: HitEvent) => boolean, what: string): Promise<Event> {
    return this.until((e) => e.event === 'hit' && predicate(e.hit!), what);
  }

  hits(): HitEvent[] {
    return this.events.filter((e) => e.event === 'hit').map((e) => e.hit!);
  }

  command(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** A fresh status event. */
  async status(): Promise<{ [key: string]: unknown }> {
    const before = this.events.length;
    this.command('status');
    const event = await this.until((e) => e.event === 'status' && this.events.indexOf(e) >= before, 'status');
    return event.status!;
  }

  /** Sends `stop`; the process must then exit by itself (no kill, no process.exit in the driver). */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.command('stop');
    await this.until((e) => e.event === 'stopped', 'stopped event');
    return this.exitedOnItsOwn();
  }

  async exitedOnItsOwn(limitMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), limitMs);
    });
    const result = await Promise.race([this.exited, hung]);
    clearTimeout(timer);
    if (result === null) {
      this.kill();
      assert.fail(`the capture process did not exit within ${limitMs} ms of stop()`);
    }
    return result;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
