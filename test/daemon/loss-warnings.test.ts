import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LossWarnings } from '../../src/daemon/loss-warnings.js';
import type { Input, Loss } from '../../src/inputs/input.js';

/** An input whose losses the test sets. */
function input(id: string, losses: Loss[]): Input & { losses: Loss[] } {
  return {
    id,
    losses,
    start: async () => undefined,
    stop: async () => undefined,
    status: () => ({ id, kind: 'test' }),
    lost() {
      return this.losses;
    },
  };
}

const ring = (count: number): Loss => ({ count, unit: 'kernel log records', cause: 'the ring overwrote them', remedy: 'log_buf_len=16M' });
const drops = (count: number): Loss => ({ count, unit: 'netlink messages', cause: 'buffer full', remedy: 'raise rmem_max' });

describe('loss warnings', () => {
  test('the first loss at once, growth at most once a minute per input with how many more and the total, nothing without growth', () => {
    const warnings = new LossWarnings(60_000);
    const kmsg = input('kmsg', []);
    const nflog = input('nflog:5', [drops(3)]);
    const quiet = { id: 'file', start: async () => undefined, stop: async () => undefined, status: () => ({ id: 'file', kind: 'file' }) } satisfies Input;
    assert.deepEqual(warnings.check([kmsg, nflog, quiet], 0), ['nflog:5 lost 3 netlink messages: buffer full; fix: raise rmem_max']);
    kmsg.losses = [ring(10)];
    nflog.losses = [drops(50)];
    assert.deepEqual(warnings.check([kmsg, nflog], 5_000), ['kmsg lost 10 kernel log records: the ring overwrote them; fix: log_buf_len=16M'], 'kmsg at once; nflog:5 waits for its minute');
    assert.deepEqual(warnings.check([kmsg, nflog], 59_999), []);
    assert.deepEqual(warnings.check([kmsg, nflog], 60_000), ['nflog:5 lost 47 more netlink messages since 1970-01-01T00:00:00.000Z (50 in all): buffer full; fix: raise rmem_max']);
    assert.deepEqual(warnings.check([kmsg, nflog], 200_000), [], 'no growth, no warning');
    nflog.losses = [drops(51), ring(2)];
    assert.deepEqual(warnings.check([nflog], 260_000), [
      'nflog:5 lost 1 more netlink messages since 1970-01-01T00:01:00.000Z (51 in all): buffer full; fix: raise rmem_max',
      'nflog:5 lost 2 kernel log records: the ring overwrote them; fix: log_buf_len=16M',
    ]);
  });
});
