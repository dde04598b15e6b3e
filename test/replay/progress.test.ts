/**
 * replay's progress line, through the real CLI with standard error on a pseudo-terminal (python's pty module):
 * shown for a large input on a terminal (bytes and lines read, rate, time left), erased at the end, never in a
 * pipe, never with --json, never for a small input. Nothing here depends on how fast the machine is: the line is
 * drawn at the first chunk read once the input is known to be large.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LARGE_INPUT_BYTES } from '../../src/replay/progress.js';
import { knockLine } from '../daemon/harness.js';
import { cliPath, fixture, needs, runCli, tempDir } from '../helpers.js';

const CONF = fixture('conf', 'manifest.conf');

/** Runs argv with stdout to a file and stderr on a pseudo-terminal; returns what the terminal showed. */
const ON_A_TERMINAL = `
import json, os, pty, subprocess, sys, tempfile
master, slave = pty.openpty()
with tempfile.TemporaryFile() as out:
    child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=out, stderr=slave)
    os.close(slave)
    terminal = b''
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        terminal += data
    child.wait()
    out.seek(0)
    print(json.dumps({'code': child.returncode, 'terminal': terminal.decode('utf8', 'replace'), 'stdout': out.read().decode('utf8', 'replace')}))
`;

function onATerminal(argv: string[]): Promise<{ code: number; terminal: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', ON_A_TERMINAL, ...argv], { timeout: 90_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, TZ: 'UTC' } }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

/** A log of `bytes` or a little more: packets to a port no door uses, so reading it is all the work. */
function logOf(bytes: number): string {
  const file = join(tempDir('knocktail-progress-'), 'kern.log');
  const line = knockLine('192.0.2.7', 22, { time: new Date('2026-11-21T05:00:00Z') });
  const block = Buffer.from(line.repeat(Math.ceil((1 << 20) / line.length)));
  const fd = openSync(file, 'w');
  for (let written = 0; written < bytes; written += block.length) writeSync(fd, block);
  closeSync(fd);
  return file;
}

const PROGRESS = /\r\x1b\[Kreplay: [\d.]+ MB of ([\d.]+) MB \(\d+ %\), [\d,]+ lines, [\d.]+ MB\/s, about \d+ (?:s|min) left/;

describe('replay progress line', { skip: needs({ tools: ['python3'] }) }, () => {
  const large = logOf(LARGE_INPUT_BYTES + (4 << 20));
  const size = (readFileSync(large).length / 1e6).toFixed(1);

  it('a large input on a terminal: bytes of all, lines, rate and time left; erased at the end; stdout untouched', async () => {
    const result = await onATerminal([process.execPath, cliPath, 'replay', '-c', CONF, large]);
    assert.equal(result.code, 0, result.terminal);
    const shown = PROGRESS.exec(result.terminal);
    assert.ok(shown, JSON.stringify(result.terminal.slice(0, 400)));
    assert.equal(shown[1], size);
    assert.ok(result.terminal.endsWith('\r\x1b[K'), `erased at the end: ${JSON.stringify(result.terminal.slice(-200))}`);
    assert.doesNotMatch(result.stdout, /replay: |\x1b/);
    assert.match(result.stdout, /kern\.log: lines: read \d+/);
  });

  it('from a pipe (size unknown): bytes, lines and rate, no time left', async () => {
    const result = await onATerminal(['/bin/sh', '-c', 'cat "$1" | "$2" "$3" replay -c "$4" -', 'sh', large, process.execPath, cliPath, CONF]);
    assert.equal(result.code, 0, result.terminal);
    assert.match(result.terminal, /\r\x1b\[Kreplay: [\d.]+ MB, [\d,]+ lines, [\d.]+ MB\/s(?:\r|$)/);
    assert.doesNotMatch(result.terminal, / of |left/);
  });

  it('never with --json, never for a small input, never when standard error is a pipe', async () => {
    const json = await onATerminal([process.execPath, cliPath, 'replay', '--json', '-c', CONF, large]);
    assert.equal(json.code, 0, json.terminal);
    assert.equal(json.terminal, '');
    const small = await onATerminal([process.execPath, cliPath, 'replay', '-c', CONF, fixture('real', 'iptables-kernlog.log')]);
    assert.equal(small.code, 0, small.terminal);
    assert.equal(small.terminal, '');
    const piped = await runCli(['replay', '-c', CONF, large]);
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stderr, '');
  });
});
