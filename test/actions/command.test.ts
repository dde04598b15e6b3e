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
    assert.equal(new CommandTemplate('echo %ip% %PORT% %% date +%s').expand(values), 'echo %ip% %PORT% %% date +%s');
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
