import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TimestampParser } from '../../src/formats/timestamp.js';

process.env.TZ = 'UTC';
const ref = { reference: Date.parse('2026-11-21T05:00:00Z'), bootTime: 0 };

describe('TimestampParser', () => {
  it('parses RFC 3339 stamps of rsyslog, journalctl and dmesg', () => {
    const p = new TimestampParser();
    assert.equal(p.parse('2026-11-21T04:16:16.719457+00:00', ref), Date.parse('2026-11-21T04:16:16.719Z') + 0.457);
    assert.equal(p.parse('2026-11-21T04:16:16+0000', ref), Date.parse('2026-11-21T04:16:16Z'));
    assert.equal(p.parse('2026-11-21T04:16:16,351538+00:00', ref), Date.parse('2026-11-21T04:16:16.351Z') + 0.538);
    assert.equal(p.parse('2026-11-21T05:16:16.5+01:00', ref), Date.parse('2026-11-21T04:16:16.500Z'));
    assert.equal(p.parse('2026-11-20T23:16:16-05:00', ref), Date.parse('2026-11-21T04:16:16Z'));
    assert.equal(p.parse('2026-11-21T04:16:16Z', ref), Date.parse('2026-11-21T04:16:16Z'));
    assert.equal(p.formCounts.rfc3339, 6);
    assert.equal(p.lastForm, 'rfc3339');
  });
  it('uses the fraction even when the second is cached', () => {
    const p = new TimestampParser();
    const a = p.parse('2026-11-21T04:16:16.100000+00:00', ref);
    const b = p.parse('2026-11-21T04:16:16.900000+00:00', ref);
    assert.equal(b - a, 800);
  });
  it('parses ctime stamps (OpenWrt logread) with their own year, in local time, and refuses malformed ones', () => {
    const p = new TimestampParser();
    assert.equal(p.parse('Sat Dec  5 11:18:56 2026', ref), Date.parse('2026-12-05T11:18:56Z'));
    assert.equal(p.parse('Fri Apr 26 23:19:12 2024', ref), Date.parse('2024-04-26T23:19:12Z'));
    assert.equal(p.lastForm, 'ctime');
    assert.equal(p.lastPrecision, 1000);
    assert.equal(p.formCounts.ctime, 2);
    const local = new TimestampParser();
    process.env.TZ = 'Europe/Berlin';
    try {
      assert.equal(local.parse('Fri Apr 26 23:19:12 2024', ref), Date.parse('2024-04-26T21:19:12Z'));
    } finally {
      process.env.TZ = 'UTC';
    }
    for (const bad of ['Xyz Apr 26 23:19:12 2024', 'Fri Foo 26 23:19:12 2024', 'Fri Apr 32 23:19:12 2024', 'Fri Apr 26 24:19:12 2024', 'Fri Apr 26 23:19:12 20x4', 'Fri Apr 26 23-19-12 2024']) {
      assert.ok(Number.isNaN(new TimestampParser().parse(bad, ref)), bad);
    }
  });
  it('parses traditional syslog stamps in local time with the year inferred', () => {
    const p = new TimestampParser();
    assert.equal(p.parse('Nov 21 04:16:16', ref), Date.parse('2026-11-21T04:16:16Z'));
    assert.equal(p.parse('Nov  2 04:16:16', ref), Date.parse('2026-11-02T04:16:16Z'));
    assert.equal(p.lastForm, 'syslog');
  });
  it('adds the fraction of journalctl -o short-precise stamps, caching the second', () => {
    const p = new TimestampParser();
    assert.equal(p.parse('Nov 21 04:16:16.719198', ref), Date.parse('2026-11-21T04:16:16.719Z') + 0.198);
    assert.equal(p.lastPrecision, 1e-3);
    assert.equal(p.parse('Nov 21 04:16:16.5', ref), Date.parse('2026-11-21T04:16:16.500Z'));
    assert.equal(p.lastPrecision, 100);
    assert.equal(p.parse('Nov 21 04:16:16', ref), Date.parse('2026-11-21T04:16:16Z'));
    assert.equal(p.lastPrecision, 1000);
    for (const bad of ['Nov 21 04:16:16.', 'Nov 21 04:16:16.x', 'Nov 21 04:16:16.5.5']) assert.ok(Number.isNaN(p.parse(bad, ref)), bad);
  });
  it('puts stamps more than a day after the reference in the previous year', () => {
    const p = new TimestampParser();
    const january = { reference: Date.parse('2027-01-03T00:00:00Z'), bootTime: 0 };
    assert.equal(p.parse('Dec 31 23:59:59', january), Date.parse('2026-12-31T23:59:59Z'));
    assert.equal(p.parse('Jan  2 10:00:00', january), Date.parse('2027-01-02T10:00:00Z'));
    assert.equal(p.parse('Jan  3 10:00:00', january), Date.parse('2027-01-03T10:00:00Z'));
    assert.equal(p.parse('Jan  5 10:00:00', january), Date.parse('2026-01-05T10:00:00Z'));
  });
  it('adds printk uptime to the boot time', () => {
    const p = new TimestampParser();
    const boot = { reference: 0, bootTime: Date.parse('2026-11-21T04:08:50.365Z') };
    assert.equal(p.parse('[  446.351538]', boot), boot.bootTime + 446351.538);
    assert.equal(p.parse('446.351538', boot), boot.bootTime + 446351.538);
    assert.equal(p.lastForm, 'uptime');
    // /dev/kmsg: whole µs since boot (fewer than 16 digits; 16 and more are µs since 1970).
    assert.equal(p.parse('446351538', boot), boot.bootTime + 446351.538);
    assert.equal(p.lastForm, 'uptime');
    assert.equal(p.parse('999999999999999', boot), boot.bootTime + 999999999999999 / 1000);
    assert.equal(p.parse('1763698576719457', boot), 1763698576719.457);
    assert.equal(p.lastForm, 'epoch');
  });
  it('reads epoch stamps', () => {
    const p = new TimestampParser();
    assert.equal(p.parse('@1763698576.5', ref), 1763698576500);
    assert.equal(p.parse('1763698576719457', ref), 1763698576719.457);
    assert.equal(p.lastForm, 'epoch');
  });
  it('returns NaN for numbers too large to be a time (never Infinity)', () => {
    const p = new TimestampParser();
    assert.ok(Number.isNaN(p.parse(`[${'9'.repeat(400)}.5]`, ref)));
    assert.ok(Number.isNaN(p.parse('9'.repeat(400), ref)));
    assert.ok(Number.isNaN(p.parse(`@${'9'.repeat(400)}`, ref)));
  });

  it('returns NaN for anything else', () => {
    const p = new TimestampParser();
    for (const bad of ['', 'Foo 21 04:16:16', 'Nov 32 04:16:16', 'Nov 21 24:16:16', 'Nov 21 04:16', '2026-13-21T04:16:16Z', '2026-11-21T04:16:16+25', 'x2026', '[abc]', '2026-11-21T04:16:16.+00:00']) {
      assert.ok(Number.isNaN(p.parse(bad, ref)), bad);
    }
  });
});
