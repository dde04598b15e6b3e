import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { explainConfig } from '../../src/config/explain.js';
import { parseConfigText } from '../../src/config/parse.js';
import { ConfigError, formatDiagnostic } from '../../src/config/types.js';
import { uncertainLogWarnings, untrustedLogProblems } from '../../src/inputs/trust.js';

const DOOR = '[door]\n  sequence = 7000,8000,9000\n  start_command = true\n';

function errorsOf(text: string): string[] {
  try {
    parseConfigText(text, '/etc/knocktail/test.conf');
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.diagnostics.map(formatDiagnostic);
  }
  assert.fail('no error');
}

describe('FirewallLog kernel sources: nflog:GROUP, kmsg, journal', () => {
  test('kept as they are (never made paths), with NflogPrefix; trusted without a warning; explained', () => {
    const config = parseConfigText(`[options]\n  FirewallLog = nflog:5, kmsg, journal, nflog:00007, nflog:65535, custom.log\n  NflogPrefix = knock:\n${DOOR}`, '/etc/knocktail/test.conf');
    assert.deepEqual(config.options.firewallLogs, ['nflog:5', 'kmsg', 'journal', 'nflog:7', 'nflog:65535', '/etc/knocktail/custom.log']);
    assert.equal(config.options.nflogPrefix, 'knock:');
    assert.deepEqual(untrustedLogProblems(config), []);
    assert.deepEqual(uncertainLogWarnings(config).map((warning) => warning.message.split(':')[0]), ['/etc/knocktail/custom.log']);
    const explained = explainConfig(config);
    assert.match(explained, /following NFLOG group 5, the kernel log \(\/dev\/kmsg\), the kernel journal, NFLOG group 7, NFLOG group 65535/);
    assert.match(explained, /NFLOG messages count only with the rule prefix "knock:"/);
    assert.equal(parseConfigText(`[options]\n  FirewallLog = nflog:5\n${DOOR}`, '/etc/t.conf').options.nflogPrefix, null, 'any prefix by default');
  });

  test('a group that is not 0-65535, a listed twice group, a prefix NFLOG cannot carry: errors with the fix', () => {
    for (const [value, message] of [
      ['nflog:65536', /"nflog:65536" is not an NFLOG group[\s\S]*nflog:GROUP/],
      ['nflog:', /"nflog:" is not an NFLOG group/],
      ['nflog:five', /"nflog:five" is not an NFLOG group/],
      ['nflog:5, nflog:05', /nflog:5 is listed twice/],
    ] as const) {
      assert.match(errorsOf(`[options]\n  FirewallLog = ${value}\n${DOOR}`).join('\n'), message, value);
    }
    assert.match(errorsOf(`[options]\n  NflogPrefix = ${'x'.repeat(64)}\n${DOOR}`).join('\n'), /cannot be an NFLOG prefix[\s\S]*at most 63/);
  });
});
