import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { KnockDecoder } from '../../src/knocks/decoder.js';
import { ADDRESS_KINDS, dataKnocks, deriveDoorKeys, encodeMessage, slotPattern } from '../../src/knocks/format.js';
import { MemoryUsedKnocks } from '../../src/knocks/used.js';
import { PortSpan } from '../../src/knocks/span.js';
import type { PortRange } from '../../src/config/types.js';
import { repoRoot } from '../helpers.js';
import { documentVectors } from './message-support.js';
import { referenceVector } from './reference.js';

const DOC = readFileSync(join(repoRoot, 'docs', 'encrypted-knocks.md'), 'utf8');


/** Port_Span text → ranges, the way the config parser reads the simple forms used in the vectors. */
function ranges(text: string): PortRange[] {
  return text.split(',').map((item) => {
    const [range, proto] = item.trim().split(':');
    const [first, last] = range!.split('-').map(Number);
    return { proto: proto === 'udp' ? 'udp' : 'tcp', first: first!, last: last ?? first! };
  });
}

describe('the test vectors of docs/encrypted-knocks.md', () => {
  const all = documentVectors();

  it('cover each address kind', () => {
    assert.deepEqual(all.map((vector) => vector.kind).sort(), [0, 1, 2]);
  });

  for (const vector of all) {
    describe(vector.name, () => {
      it('follow from the specification text (second implementation)', () => {
        const { name, keyFile, door, portSpan, time, nonce, request, source } = vector;
        assert.deepEqual(referenceVector({ name, keyFile, door, portSpan, time, nonce, request, source }), vector);
      });

      it('are what knocktail sends', () => {
        const keys = deriveDoorKeys(Buffer.from(vector.keyFile, 'hex'), vector.door);
        assert.equal(keys.aead.toString('hex'), vector.aeadKey);
        assert.equal(keys.sync.toString('hex'), vector.syncKey);
        const span = new PortSpan(ranges(vector.portSpan));
        const values = encodeMessage(keys, span.bits, { request: vector.request, time: vector.time, nonce: Buffer.from(vector.nonce, 'hex'), source: vector.source });
        assert.deepEqual(values, vector.values);
        const ports = values.map((value) => span.portOf(value)).map(({ proto, port }) => (proto === 'udp' ? `${port}:udp` : `${port}`));
        assert.equal(ports.join(','), vector.knocks);
        const pattern = slotPattern(keys, vector.slot, ADDRESS_KINDS[vector.kind]!, span.bits);
        assert.equal(pattern.sync, values[0]);
        assert.equal(pattern.length, values.length - 1);
      });

      it('open the door when knocked from the source', () => {
        const keys = deriveDoorKeys(Buffer.from(vector.keyFile, 'hex'), vector.door);
        const span = new PortSpan(ranges(vector.portSpan));
        const allowed = vector.request.port;
        const door = { name: vector.door, keys, span, allowsPort: (port: number) => port === allowed, maxDuration: 65535, windowMs: 60_000, trustKnockIp: true, timeoutMs: 25_000 };
        const target = new KnockDecoder(door, new MemoryUsedKnocks(), 10);
        const knocks = vector.knocks.split(',').map((text) => {
          const [port, proto] = text.split(':');
          return target.valueOf(proto === 'udp' ? 'udp' : 'tcp', Number(port));
        });
        const outcomes = knocks.flatMap((value, i) => target.knock(vector.source, value, vector.time * 1000 + 400 + i));
        assert.deepEqual(
          outcomes.map((outcome) => (outcome.type === 'open' ? { request: outcome.request, openFor: outcome.openFor, messageTime: outcome.messageTime } : outcome)),
          [{ request: vector.request, openFor: vector.request.address ?? vector.source, messageTime: vector.time * 1000 }],
        );
      });
    });
  }

  it('agree with the table of knocks per message', () => {
    const table = /\| span \|([^\n]+)\n\|[-| ]+\n((?:\|[^\n]+\n){3})/.exec(DOC);
    assert.ok(table, 'the knock count table is in the document');
    const bits = [...table[1]!.matchAll(/2\^(\d+)/g)].map((match) => Number(match[1]));
    const rows = table[2]!.trim().split('\n').map((row) => [...row.split('|').slice(2, -1)].map((cell) => Number(cell.replaceAll('*', '').trim())));
    assert.deepEqual(
      rows,
      ADDRESS_KINDS.map((kind) => bits.map((k) => 1 + dataKnocks(kind, k))),
    );
  });
});
