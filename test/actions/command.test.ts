import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CommandTemplate, commandEnvironment } from '../../src/actions/command.js';

const values = { ip: '10.66.0.2', door: 'openSSH', timeout: 30, action: 'start' as const };

describe('CommandTemplate', () => {
  it('replaces every %IP% (knockd) and the extra placeholders', () => {
    const t = new CommandTemplate('iptables -A INPUT -s %IP% -j ACCEPT # %IP% %DOOR% %TIMEOUT%s');
    assert.equal(t.expand(values), 'iptables -A INPUT -s 10.66.0.2 -j ACCEPT # 10.66.0.2 openSSH 30s');
  });
  it('is case-sensitive and leaves unknown %WORDS% alone, like knockd', () => {
    assert.equal(new CommandTemplate('echo %ip% %PORTS% %% date +%s').expand(values), 'echo %ip% %PORTS% %% date +%s');
  });
  it('does not expand recursively', () => {
    assert.equal(new CommandTemplate('%DOOR%').expand({ ...values, door: '%IP%' }), '%IP%');
  });
  it('refuses to put anything but a canonical address into a command', () => {
    const t = new CommandTemplate('echo %IP%');
    for (const ip of ['10.0.0.1; reboot', '$(id)', '`id`', '10.0.0.1 ', 'FD66::2', '::1\n', "'", '', 'a'.repeat(40)]) {
      assert.throws(() => t.expand({ ...values, ip }), /non-canonical address/, JSON.stringify(ip));
    }
    assert.equal(t.expand({ ...values, ip: '2001:db8::1' }), 'echo 2001:db8::1');
  });
});

describe('CommandTemplate with an encrypted message\'s request', () => {
  const request = { port: 2222, duration: 900, knockIp: '198.51.100.1' };
  const text = 'iptables -I INPUT -s %IP% -p tcp --dport %PORT% -j ACCEPT # %DURATION% s, knocked from %KNOCK_IP%, %TIMEOUT%';

  it('fills %PORT%, %DURATION% and %KNOCK_IP% in a door with Knock_Key', () => {
    assert.equal(
      new CommandTemplate(text, true).expand({ ...values, ip: '203.0.113.9', timeout: 900, request }),
      'iptables -I INPUT -s 203.0.113.9 -p tcp --dport 2222 -j ACCEPT # 900 s, knocked from 198.51.100.1, 900',
    );
  });

  it('leaves them as text elsewhere, as knockd does', () => {
    assert.equal(new CommandTemplate(text).expand({ ...values, request }), 'iptables -I INPUT -s 10.66.0.2 -p tcp --dport %PORT% -j ACCEPT # %DURATION% s, knocked from %KNOCK_IP%, 30');
  });

  it('refuses to run without a request, or with values out of their safe form', () => {
    const t = new CommandTemplate(text, true);
    assert.throws(() => t.expand(values), /%PORT% but no encrypted message/);
    const bad: Array<Partial<typeof request>> = [{ port: 0 }, { port: 65536 }, { port: 22.5 }, { duration: 0 }, { duration: -1 }, { knockIp: '1.2.3.4; reboot' }, { knockIp: '$(id)' }];
    for (const change of bad) assert.throws(() => t.expand({ ...values, request: { ...request, ...change } }), /refusing to run a command/, JSON.stringify(change));
  });
});

describe('commandEnvironment', () => {
  it('adds the request for an encrypted message', () => {
    assert.deepEqual(commandEnvironment({ ...values, timeout: 900, request: { port: 2222, duration: 900, knockIp: '198.51.100.1' } }), {
      KNOCK_IP: '10.66.0.2',
      KNOCK_FAMILY: '4',
      KNOCK_DOOR: 'openSSH',
      KNOCK_TIMEOUT: '900',
      KNOCK_ACTION: 'start',
      KNOCK_PORT: '2222',
      KNOCK_DURATION: '900',
      KNOCK_SOURCE_IP: '198.51.100.1',
    });
  });

  it('carries the same values', () => {
    assert.deepEqual(commandEnvironment({ ...values, ip: 'fd66::2', action: 'stop' }), {
      KNOCK_IP: 'fd66::2',
      KNOCK_FAMILY: '6',
      KNOCK_DOOR: 'openSSH',
      KNOCK_TIMEOUT: '30',
      KNOCK_ACTION: 'stop',
    });
  });
});
