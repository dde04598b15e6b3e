/** The control socket's daemon end, asked through a real Unix socket: early, unknown, oversized and good requests. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { ControlError, ControlServer, controlSocketPath, type DaemonStatus, requestStatus } from '../../src/daemon/control.js';
import { tempDir } from '../helpers.js';

/** Sends `request` raw and collects everything the server says until it closes the connection. */
async function ask(stateDir: string, request: string): Promise<string> {
  const socket = connect(controlSocketPath(stateDir));
  socket.setEncoding('utf8');
  let answer = '';
  socket.on('data', (chunk: string) => (answer += chunk));
  socket.on('error', () => undefined); // a reset after an oversized request is an answer too: none
  await once(socket, 'connect');
  socket.write(request);
  await once(socket, 'close');
  return answer;
}

const servers: ControlServer[] = [];
after(() => {
  for (const server of servers) server.close();
});

async function listening(): Promise<{ stateDir: string; server: ControlServer }> {
  const stateDir = tempDir();
  const server = await ControlServer.listen(stateDir);
  servers.push(server);
  return { stateDir, server };
}

const status = { knocktail: 'test', pid: process.pid, state: 'running' } as unknown as DaemonStatus;

describe('control socket (the daemon end)', () => {
  it('answers a request that comes before the daemon is ready with "knocktail is starting"', async () => {
    const { stateDir } = await listening();
    assert.deepEqual(JSON.parse(await ask(stateDir, 'status\n')), { error: 'knocktail is starting' });
    await assert.rejects(requestStatus(stateDir), (error: unknown) => error instanceof ControlError && /says: knocktail is starting/.test(error.message));
  });

  it('names an unknown request (cut to 40 characters) and answers nothing else', async () => {
    const { stateDir, server } = await listening();
    let asked = 0;
    server.serve(() => {
      asked++;
      return status;
    });
    assert.deepEqual(JSON.parse(await ask(stateDir, 'reload now\n')), { error: 'unknown request "reload now"' });
    assert.deepEqual(JSON.parse(await ask(stateDir, `${'x'.repeat(100)}\n`)), { error: `unknown request "${'x'.repeat(40)}"` });
    assert.equal(asked, 0, 'the status handler never ran');
  });

  it('drops an oversized request without a newline, and still answers the next client', async () => {
    const { stateDir, server } = await listening();
    server.serve(() => status);
    assert.equal(await ask(stateDir, 'status'.repeat(400)), '', 'no answer, connection closed');
    assert.equal((await requestStatus(stateDir)).pid, process.pid);
  });

  it('answers status with the handler\'s value; a second daemon on the same state directory is refused', async () => {
    const { stateDir, server } = await listening();
    server.serve(() => status);
    assert.deepEqual(await requestStatus(stateDir), status);
    await assert.rejects(ControlServer.listen(stateDir), new RegExp(`another knocktail daemon \\(pid ${process.pid}\\) is running with StateDir`));
    server.close();
    assert.equal(existsSync(controlSocketPath(stateDir)), false, 'closing removes the socket');
  });
});
