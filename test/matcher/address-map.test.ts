import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AddressMap, type SourceKey, sourceKey, sourceText, storedSourceKey } from '../../src/matcher/address-map.js';
import { random } from '../random.js';


describe('source keys', () => {
  it('are numbers for canonical IPv4 text and give the same text back', () => {
    for (const ip of ['0.0.0.0', '10.0.0.1', '127.0.0.1', '128.0.0.0', '192.0.2.255', '255.255.255.255', '1.22.133.4']) {
      const key = sourceKey(ip);
      assert.equal(typeof key, 'number', ip);
      assert.ok(Number.isInteger(key) && (key as number) >= -(2 ** 31) && (key as number) < 2 ** 31, `${ip}: a 32-bit small integer`);
      assert.equal(sourceText(key), ip);
      assert.equal(storedSourceKey(key), key);
    }
  });

  it('keep any other text as text (IPv6, and anything that is not canonical dotted-quad)', () => {
    for (const text of ['2001:db8::1', '::ffff:192.0.2.1', '010.0.0.1', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', '', '1.2.3.4 ', 'a.b.c.d']) {
      assert.equal(sourceKey(text), text);
      assert.equal(storedSourceKey(sourceKey(text)), text);
      assert.equal(sourceText(sourceKey(text)), text);
    }
  });

  it('differ for different addresses', () => {
    const keys = new Set<SourceKey>();
    for (let i = 0; i < 70_000; i++) keys.add(sourceKey(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`));
    keys.add(sourceKey('255.255.255.255'));
    keys.add(sourceKey('0.0.0.0'));
    assert.equal(keys.size, 70_002);
  });
});

describe('AddressMap', () => {
  it('agrees with a Map through random insertions, replacements and deletions (growing past its first size)', () => {
    const next = random(7);
    const map = new AddressMap<number>();
    const reference = new Map<SourceKey, number>();
    // A small address space, so keys come back after deletion and probe runs get long and wrap around.
    const keyAt = (n: number): SourceKey => (n % 5 === 0 ? `2001:db8::${n.toString(16)}` : sourceKey(`198.51.${n >> 8}.${n & 255}`));
    for (let step = 0; step < 200_000; step++) {
      const key = keyAt(Math.floor(next() * 3000));
      const op = next();
      if (op < 0.5) {
        map.set(key, step);
        reference.set(key, step);
      } else if (op < 0.8) {
        assert.equal(map.delete(key), reference.delete(key));
      } else {
        assert.equal(map.get(key), reference.get(key));
      }
      assert.equal(map.size, reference.size);
    }
    for (const [key, value] of reference) assert.equal(map.get(key), value);
    assert.deepEqual(map.valuesCopy().sort((a, b) => a - b), [...reference.values()].sort((a, b) => a - b));
  });

  it('holds a million distinct sources and finds each one', () => {
    const map = new AddressMap<number>();
    for (let i = 0; i < 1_000_000; i++) map.set(sourceKey(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`), i);
    assert.equal(map.size, 1_000_000);
    for (let i = 0; i < 1_000_000; i += 997) assert.equal(map.get(sourceKey(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)), i);
    assert.equal(map.get(sourceKey('11.0.0.0')), undefined);
  });

  it('tells text and number keys apart', () => {
    const map = new AddressMap<string>();
    map.set(sourceKey('192.0.2.1'), 'v4');
    map.set('192.0.2.1x', 'text');
    assert.equal(map.get(sourceKey('192.0.2.1')), 'v4');
    assert.equal(map.get('192.0.2.1x'), 'text');
    assert.equal(map.size, 2);
  });
});
