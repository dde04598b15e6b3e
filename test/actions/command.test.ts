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

describe('%FIREWALL% (a collector: the firewall that saw the knock)', () => {
  it('is the canonical firewall name, also as KNOCK_FIREWALL', () => {
    const t = new CommandTemplate('ssh root@%FIREWALL% nft add element inet fw knock { %IP% }');
    assert.equal(t.needsFirewall, true);
    assert.equal(t.expand({ ...values, firewall: '192.0.2.1' }), 'ssh root@192.0.2.1 nft add element inet fw knock { 10.66.0.2 }');
    assert.equal(t.expand({ ...values, firewall: 'edge-1.example.net' }), 'ssh root@edge-1.example.net nft add element inet fw knock { 10.66.0.2 }');
    assert.equal(commandEnvironment({ ...values, firewall: '2001:db8::1' }).KNOCK_FIREWALL, '2001:db8::1');
    assert.equal('KNOCK_FIREWALL' in commandEnvironment(values), false);
  });
  it('refuses a knock whose firewall is unknown, and any name that is not canonical', () => {
    const t = new CommandTemplate('ssh root@%FIREWALL% true');
    assert.throws(() => t.expand(values), /with %FIREWALL% for a knock from a log that names no firewall/);
    assert.equal(new CommandTemplate('echo %IP%').expand(values), 'echo 10.66.0.2', 'a command without %FIREWALL% runs either way');
    for (const firewall of ['-oProxyCommand=id', 'a;b', '$(id)', 'Edge', 'a b', '']) {
      assert.throws(() => t.expand({ ...values, firewall }), /refusing to run a command for firewall/, JSON.stringify(firewall));
      assert.throws(() => commandEnvironment({ ...values, firewall }), /refusing/, JSON.stringify(firewall));
    }
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
