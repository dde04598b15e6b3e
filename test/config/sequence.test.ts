import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_RST, TCP_SYN, TCP_URG } from '../../src/hit.js';
import { flagRuleTokens, formatSequence, MAX_STEPS, mergeFlagRules, parseSequence, parseTcpFlags, SequenceError } from '../../src/config/sequence.js';

function sequenceError(text: string): string {
  let message = '';
  assert.throws(
    () => parseSequence(text),
    (error: unknown) => {
      assert.ok(error instanceof SequenceError, `expected a SequenceError for ${JSON.stringify(text)}`);
      message = error.message;
      return true;
    },
  );
  return message;
}

function flagError(text: string): string {
  let message = '';
  assert.throws(
    () => parseTcpFlags(text),
    (error: unknown) => {
      assert.ok(error instanceof SequenceError, `expected a SequenceError for ${JSON.stringify(text)}`);
      message = error.message;
      return true;
    },
  );
  return message;
}

test('parseSequence: ports default to TCP, protocols are per step', () => {
  assert.deepEqual(parseSequence('7000,8000:udp,9000:tcp'), [
    { port: 7000, proto: 'tcp' },
    { port: 8000, proto: 'udp' },
    { port: 9000, proto: 'tcp' },
  ]);
});

test('parseSequence: blanks around ports and protocols, protocol in any case (knockd: same)', () => {
  assert.deepEqual(parseSequence(' 1000:TCP, 2000 : UdP ,3000 '), [
    { port: 1000, proto: 'tcp' },
    { port: 2000, proto: 'udp' },
    { port: 3000, proto: 'tcp' },
  ]);
});

test('parseSequence: bounds 1 and 65535 are valid, duplicates allowed', () => {
  assert.deepEqual(parseSequence('1,65535,1'), [
    { port: 1, proto: 'tcp' },
    { port: 65535, proto: 'tcp' },
    { port: 1, proto: 'tcp' },
  ]);
});

test('parseSequence: a third :field is ignored like knockd, with a warning', () => {
  const warnings: string[] = [];
  assert.deepEqual(parseSequence('3000:tcp:junk,4000', (message) => warnings.push(message)), [
    { port: 3000, proto: 'tcp' },
    { port: 4000, proto: 'tcp' },
  ]);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /3000:tcp:junk/);
});

test('parseSequence: knockd wraps or zeroes bad ports; we reject each with the user-facing message', () => {
  assert.equal(sequenceError('-1'), 'port "-1" is invalid: ports are 1-65535');
  for (const bad of ['0', '65536', '99999999999', 'abc', '0x50', '1e3', '+7', '80.5']) {
    assert.equal(sequenceError(`7000,${bad}`), `port "${bad}" is invalid: ports are 1-65535`, bad);
  }
});

test('parseSequence: empty elements and an empty value are errors (knockd: port 0)', () => {
  assert.match(sequenceError('1,,2'), /empty step in "1,,2"/);
  assert.match(sequenceError('1,2,'), /empty step/);
  assert.match(sequenceError(''), /the sequence is empty/);
  assert.match(sequenceError('   '), /the sequence is empty/);
  assert.match(sequenceError(':udp'), /port "" is invalid/);
});

test('parseSequence: unknown or empty protocol is an error (knockd: same)', () => {
  assert.match(sequenceError('1,2:'), /protocol "" in "2:" is invalid: use tcp or udp/);
  assert.match(sequenceError('1:icmp'), /protocol "icmp"/);
});

test(`parseSequence: ${MAX_STEPS} steps are fine, one more is an error (knockd: same)`, () => {
  const ports = Array.from({ length: MAX_STEPS + 1 }, (_, i) => 1000 + i);
  assert.equal(parseSequence(ports.slice(0, MAX_STEPS).join(',')).length, MAX_STEPS);
  assert.match(sequenceError(ports.join(',')), /33 steps is too many: knockd allows at most 32/);
});

test('formatSequence gives knockd -D form and round-trips', () => {
  const text = '7000:tcp,8000:udp,65535:tcp';
  assert.equal(formatSequence(parseSequence(text)), text);
  assert.equal(formatSequence(parseSequence('7000, 8000:UDP')), '7000:tcp,8000:udp');
  assert.equal(formatSequence([]), '');
});

test('parseTcpFlags: set and clear masks, any case, blanks trimmed (knockd rejects "syn, ack")', () => {
  assert.deepEqual(parseTcpFlags('syn,!ack'), { set: TCP_SYN, clear: TCP_ACK });
  assert.deepEqual(parseTcpFlags('syn, ack'), { set: TCP_SYN | TCP_ACK, clear: 0 });
  assert.deepEqual(parseTcpFlags(' FIN , !Rst,! urg '), { set: TCP_FIN, clear: TCP_RST | TCP_URG });
  assert.deepEqual(parseTcpFlags('ece,!cwr'), { set: TCP_ECE, clear: TCP_CWR });
  assert.deepEqual(parseTcpFlags('syn,syn'), { set: TCP_SYN, clear: 0 });
});

test('parseTcpFlags: unknown, empty and contradictory tokens are errors naming the token', () => {
  assert.match(flagError('syn,bogus'), /unknown TCP flag "BOGUS": use FIN, SYN, RST, PSH, ACK, URG, ECE or CWR/);
  assert.match(flagError('!'), /unknown TCP flag "!"/);
  assert.match(flagError('syn,,ack'), /empty flag in "syn,,ack"/);
  assert.match(flagError(''), /TCPFlags is empty/);
  assert.match(flagError('syn,!syn'), /SYN both required and forbidden/);
});

test('mergeFlagRules: a later rule overrides only the flags it names (knockd accumulation)', () => {
  const first = parseTcpFlags('syn,!ack,fin');
  assert.deepEqual(mergeFlagRules(first, parseTcpFlags('!syn')), { set: TCP_FIN, clear: TCP_SYN | TCP_ACK });
  assert.deepEqual(mergeFlagRules(first, parseTcpFlags('ack')), { set: TCP_SYN | TCP_FIN | TCP_ACK, clear: 0 });
});

test('flagRuleTokens: knockd tokens in header order', () => {
  assert.deepEqual(flagRuleTokens(parseTcpFlags('!ack,cwr,syn')), ['SYN', '!ACK', 'CWR']);
  assert.deepEqual(flagRuleTokens({ set: 0, clear: 0 }), []);
});
