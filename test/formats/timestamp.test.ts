import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Stamp, TimestampParser } from '../../src/formats/timestamp.js';
import { timeZoneForEachTest } from '../helpers.js';

// Traditional stamps are local time: the expectations below are written for UTC.
timeZoneForEachTest('UTC');
const ref = { reference: Date.parse('2026-11-21T05:00:00Z'), bootTime: 0 };

/** The stamp's time (NaN when the text is none). */
function ms(stamp: Stamp | null): number {
  return stamp === null ? Number.NaN : stamp.ms;
}

describe('TimestampParser', () => {
  it('parses RFC 3339 stamps of rsyslog, journalctl and dmesg', () => {
    const p = new TimestampParser();
    assert.equal(ms(p.parse('2026-11-21T04:16:16.719457+00:00', ref)), Date.parse('2026-11-21T04:16:16.719Z') + 0.457);
    assert.equal(ms(p.parse('2026-11-21T04:16:16+0000', ref)), Date.parse('2026-11-21T04:16:16Z'));
    assert.equal(ms(p.parse('2026-11-21T04:16:16,351538+00:00', ref)), Date.parse('2026-11-21T04:16:16.351Z') + 0.538);
    assert.equal(ms(p.parse('2026-11-21T05:16:16.5+01:00', ref)), Date.parse('2026-11-21T04:16:16.500Z'));
    assert.equal(ms(p.parse('2026-11-20T23:16:16-05:00', ref)), Date.parse('2026-11-21T04:16:16Z'));
    const last = p.parse('2026-11-21T04:16:16Z', ref);
    assert.deepEqual(last, { ms: Date.parse('2026-11-21T04:16:16Z'), precisionMs: 1000, form: 'rfc3339' });
  });
  it('uses the fraction even when the second is cached', () => {
    const p = new TimestampParser();
    const a = ms(p.parse('2026-11-21T04:16:16.100000+00:00', ref));
    const b = ms(p.parse('2026-11-21T04:16:16.900000+00:00', ref));
    assert.equal(b - a, 800);
  });
  it('parses ctime stamps (OpenWrt logread) with their own year, in local time, and refuses malformed ones', () => {
    const p = new TimestampParser();
    assert.equal(ms(p.parse('Sat Dec  5 11:18:56 2026', ref)), Date.parse('2026-12-05T11:18:56Z'));
    assert.deepEqual(p.parse('Fri Apr 26 23:19:12 2024', ref), { ms: Date.parse('2024-04-26T23:19:12Z'), precisionMs: 1000, form: 'ctime' });
    const local = new TimestampParser();
    process.env.TZ = 'Europe/Berlin';
    try {
      assert.equal(ms(local.parse('Fri Apr 26 23:19:12 2024', ref)), Date.parse('2024-04-26T21:19:12Z'));
    } finally {
      process.env.TZ = 'UTC';
    }
    for (const bad of ['Xyz Apr 26 23:19:12 2024', 'Fri Foo 26 23:19:12 2024', 'Fri Apr 32 23:19:12 2024', 'Fri Apr 26 24:19:12 2024', 'Fri Apr 26 23:19:12 20x4', 'Fri Apr 26 23-19-12 2024']) {
      assert.equal(new TimestampParser().parse(bad, ref), null, bad);
    }
  });
  it('parses traditional syslog stamps in local time with the year inferred', () => {
    const p = new TimestampParser();
    assert.equal(ms(p.parse('Nov 21 04:16:16', ref)), Date.parse('2026-11-21T04:16:16Z'));
    const stamp = p.parse('Nov  2 04:16:16', ref);
    assert.equal(stamp?.ms, Date.parse('2026-11-02T04:16:16Z'));
    assert.equal(stamp?.form, 'syslog');
  });
  it('adds the fraction of journalctl -o short-precise stamps, caching the second, and says how precise each is', () => {
    const p = new TimestampParser();
    assert.deepEqual(p.parse('Nov 21 04:16:16.719198', ref), { ms: Date.parse('2026-11-21T04:16:16.719Z') + 0.198, precisionMs: 1e-3, form: 'syslog' });
    assert.deepEqual(p.parse('Nov 21 04:16:16.5', ref), { ms: Date.parse('2026-11-21T04:16:16.500Z'), precisionMs: 100, form: 'syslog' });
    assert.deepEqual(p.parse('Nov 21 04:16:16', ref), { ms: Date.parse('2026-11-21T04:16:16Z'), precisionMs: 1000, form: 'syslog' });
    for (const bad of ['Nov 21 04:16:16.', 'Nov 21 04:16:16.x', 'Nov 21 04:16:16.5.5']) assert.equal(p.parse(bad, ref), null, bad);
  });
  it('puts stamps more than a day after the reference in the previous year', () => {
    const p = new TimestampParser();
    const january = { reference: Date.parse('2027-01-03T00:00:00Z'), bootTime: 0 };
    assert.equal(ms(p.parse('Dec 31 23:59:59', january)), Date.parse('2026-12-31T23:59:59Z'));
    assert.equal(ms(p.parse('Jan  2 10:00:00', january)), Date.parse('2027-01-02T10:00:00Z'));
    assert.equal(ms(p.parse('Jan  3 10:00:00', january)), Date.parse('2027-01-03T10:00:00Z'));
    assert.equal(ms(p.parse('Jan  5 10:00:00', january)), Date.parse('2026-01-05T10:00:00Z'));
  });
  it('adds printk uptime to the boot time', () => {
    const p = new TimestampParser();
    const boot = { reference: 0, bootTime: Date.parse('2026-11-21T04:08:50.365Z') };
    assert.equal(ms(p.parse('[  446.351538]', boot)), boot.bootTime + 446351.538);
    assert.deepEqual(p.parse('446.351538', boot), { ms: boot.bootTime + 446351.538, precisionMs: 1e-3, form: 'uptime' });
    // /dev/kmsg: whole µs since boot (fewer than 16 digits; 16 and more are µs since 1970).
    assert.deepEqual(p.parse('446351538', boot), { ms: boot.bootTime + 446351.538, precisionMs: 1e-3, form: 'uptime' });
    assert.equal(ms(p.parse('999999999999999', boot)), boot.bootTime + 999999999999999 / 1000);
    assert.deepEqual(p.parse('1763698576719457', boot), { ms: 1763698576719.457, precisionMs: 1e-3, form: 'epoch' });
  });
  it('reads epoch stamps', () => {
    const p = new TimestampParser();
    assert.equal(ms(p.parse('@1763698576.5', ref)), 1763698576500);
    assert.equal(p.parse('1763698576719457', ref)?.form, 'epoch');
  });
  it('finds no time in numbers too large to be one (never Infinity)', () => {
    const p = new TimestampParser();
    assert.equal(p.parse(`[${'9'.repeat(400)}.5]`, ref), null);
    assert.equal(p.parse('9'.repeat(400), ref), null);
    assert.equal(p.parse(`@${'9'.repeat(400)}`, ref), null);
  });

  it('finds no time in anything else', () => {
    const p = new TimestampParser();
    for (const bad of ['', 'Foo 21 04:16:16', 'Nov 32 04:16:16', 'Nov 21 24:16:16', 'Nov 21 04:16', '2026-13-21T04:16:16Z', '2026-11-21T04:16:16+25', 'x2026', '[abc]', '2026-11-21T04:16:16.+00:00']) {
      assert.equal(p.parse(bad, ref), null, bad);
    }
  });
});
