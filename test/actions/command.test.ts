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
