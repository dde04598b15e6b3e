import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CHECK_BITS, checkOf, deriveDoorKeys, firstCheckState, nextCheckState, encodeMessage, fromSymbols, openMessage, payloadBytes, slotOf, slotPattern, toSymbols } from '../../src/knocks/format.js';
import { random } from '../random.js';
import { SECRET } from './message-support.js';

const keys = deriveDoorKeys(SECRET, 'ssh');
const input = { request: { port: 22, duration: 60, address: null }, time: 1_767_225_610, nonce: Buffer.from('01020304', 'hex'), source: '192.0.2.7' };

describe('symbols', () => {
  it('round-trip every payload length and symbol width, and refuse non-zero padding', () => {
    const next = random(15);
    for (let bits = 6; bits <= 13; bits++) {
      for (const length of [17, 21, 33]) {
        const bytes = Buffer.from(Array.from({ length }, () => Math.floor(next() * 256)));
        const symbols = toSymbols(bytes, bits);
        assert.equal(symbols.length, Math.ceil((length * 8) / bits));
        assert.ok(symbols.every((symbol) => symbol >= 0 && symbol < 2 ** bits));
        assert.deepEqual(fromSymbols(symbols, bits, length), bytes);
        const padding = symbols.length * bits - length * 8;
        if (padding > 0) {
          const spoiled = [...symbols];
          spoiled[spoiled.length - 1]! ^= 1;
          assert.equal(fromSymbols(spoiled, bits, length), null, `padding bit at ${bits} bits, ${length} bytes`);
        }
      }
    }
  });
});

describe('keys and patterns', () => {
  it('differ between doors sharing a key file, and between slots and kinds', () => {
    const other = deriveDoorKeys(SECRET, 'ssh2');
    assert.notDeepEqual(other.aead, keys.aead);
    assert.notDeepEqual(keys.sync, keys.aead);
    const slot = slotOf(input.time);
    const patterns = [slotPattern(keys, slot, 'source', 15), slotPattern(keys, slot + 1, 'source', 15), slotPattern(keys, slot, 'ipv4', 15), slotPattern(other, slot, 'source', 15)];
    assert.equal(new Set(patterns.map((pattern) => `${pattern.sync} ${pattern.seed}`)).size, 4);
  });
});

describe('encodeMessage', () => {
  it('refuses what the format cannot carry', () => {
    const bad: Array<[string, Parameters<typeof encodeMessage>[2], number?]> = [
      ['port 0', { ...input, request: { ...input.request, port: 0 } }],
      ['port 65536', { ...input, request: { ...input.request, port: 65536 } }],
      ['duration 0', { ...input, request: { ...input.request, duration: 0 } }],
      ['duration 70000', { ...input, request: { ...input.request, duration: 70_000 } }],
      ['fractional time', { ...input, time: 1.5 }],
      ['a 3-byte nonce', { ...input, nonce: Buffer.alloc(3) }],
      ['a host name', { ...input, request: { ...input.request, address: 'example.org' } }],
      ['no source for a message without an address', { ...input, source: null }],
      ['a span of 2^16', input, 16],
      ['a span of 2^7', input, 7],
    ];
    for (const [what, message, bits] of bad) assert.throws(() => encodeMessage(keys, bits ?? 15, message), Error, what);
  });

  it('seals the payload so that openMessage gives back the request, and nothing for another source or key', () => {
    const values = encodeMessage(keys, 12, input);
    const pattern = slotPattern(keys, slotOf(input.time), 'source', 12);
    const symbols = values.slice(1).map((value) => value >> CHECK_BITS);
    const chain = [firstCheckState(pattern)];
    for (let j = 1; j < symbols.length; j++) chain.push(nextCheckState(chain[j - 1]!, j, symbols[j - 1]!));
    assert.deepEqual(
      values.slice(1).map((value) => value & 7),
      chain.map(checkOf),
    );
    assert.equal(symbols.length, Math.ceil((payloadBytes('source') * 8) / (12 - CHECK_BITS)));
    const opened = openMessage(keys, pattern, symbols, 12, '192.0.2.7');
    assert.deepEqual(opened?.request, input.request);
    assert.equal(opened?.time, input.time);
    assert.equal(openMessage(keys, pattern, symbols, 12, '192.0.2.8'), null, 'another source');
    assert.equal(openMessage(deriveDoorKeys(SECRET, 'web'), pattern, symbols, 12, '192.0.2.7'), null, 'another door');
  });
});
