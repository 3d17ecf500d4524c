// The scheduled policy at an instant: open or closed, the next start and the current/next end, for weekly windows
// (DST included) and cron runs; and the Retry-After derived from it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ScheduledConfig } from '../../../shared/spec/policies.ts';
import { retryAfterSeconds, scheduleState } from '../../../shared/spec/schedule-time.ts';

const ms = (iso: string): number => {
  const t = Date.parse(iso);
  assert.ok(Number.isFinite(t), `bad test instant ${iso}`);
  return t;
};
const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

/** The state as ISO strings, so a failure shows the instants. */
function at(config: ScheduledConfig, now: string): { open: boolean; opensAt: string | null; closesAt: string | null } {
  const s = scheduleState(config, ms(now));
  return { open: s.open, opensAt: iso(s.opensAtMs), closesAt: iso(s.closesAtMs) };
}
const open = (closesAt: string | null) => ({ open: true, opensAt: null, closesAt });
const closed = (opensAt: string | null, closesAt: string | null) => ({ open: false, opensAt, closesAt });

const window = (text: string): ScheduledConfig => ({ window: text, replicas: 1 });
const cron = (expr: string, duration_s: number, timezone = 'UTC'): ScheduledConfig => ({ cron: expr, duration_s, timezone, replicas: 1 });

describe('scheduleState: weekly windows', () => {
  // Madrid is UTC+2 in June: 08:00-20:00 local is 06:00Z-18:00Z. 2026-06-17 is a Wednesday.
  const office = window('Mon-Fri 08:00-20:00 Europe/Madrid');

  it('is open inside the window on a weekday, closing at the local end', () => {
    assert.deepEqual(at(office, '2026-06-17T10:00:00.000Z'), open('2026-06-17T18:00:00.000Z'));
  });

  it('is closed after the end on a weekday, opening the next morning', () => {
    assert.deepEqual(at(office, '2026-06-17T19:00:00.000Z'), closed('2026-06-18T06:00:00.000Z', '2026-06-18T18:00:00.000Z'));
  });

  it('is closed just before the start and open exactly at it (start inclusive)', () => {
    assert.deepEqual(at(office, '2026-06-17T05:59:59.999Z'), closed('2026-06-17T06:00:00.000Z', '2026-06-17T18:00:00.000Z'));
    assert.deepEqual(at(office, '2026-06-17T06:00:00.000Z'), open('2026-06-17T18:00:00.000Z'));
  });

  it('is closed exactly at the end (end exclusive)', () => {
    assert.deepEqual(at(office, '2026-06-17T17:59:59.999Z'), open('2026-06-17T18:00:00.000Z'));
    assert.deepEqual(at(office, '2026-06-17T18:00:00.000Z'), closed('2026-06-18T06:00:00.000Z', '2026-06-18T18:00:00.000Z'));
  });

  it('opens on Monday when asked over the weekend or on Friday evening', () => {
    const monday = closed('2026-06-22T06:00:00.000Z', '2026-06-22T18:00:00.000Z');
    assert.deepEqual(at(office, '2026-06-20T10:00:00.000Z'), monday); // Saturday
    assert.deepEqual(at(office, '2026-06-21T23:00:00.000Z'), monday); // Monday 01:00 local
    assert.deepEqual(at(office, '2026-06-19T18:00:00.000Z'), monday); // Friday at the end
  });

  it('follows a day list', () => {
    const w = window('Mon,Wed,Fri 09:00-17:00 UTC');
    assert.deepEqual(at(w, '2026-06-16T10:00:00.000Z'), closed('2026-06-17T09:00:00.000Z', '2026-06-17T17:00:00.000Z')); // Tue
    assert.deepEqual(at(w, '2026-06-17T12:00:00.000Z'), open('2026-06-17T17:00:00.000Z')); // Wed
    assert.deepEqual(at(w, '2026-06-17T17:00:00.000Z'), closed('2026-06-19T09:00:00.000Z', '2026-06-19T17:00:00.000Z')); // Wed end → Fri
    assert.deepEqual(at(w, '2026-06-19T17:30:00.000Z'), closed('2026-06-22T09:00:00.000Z', '2026-06-22T17:00:00.000Z')); // Fri → Mon
  });

  it('follows a day range that wraps over the weekend', () => {
    const w = window('Fri-Mon 10:00-12:00 UTC');
    assert.deepEqual(at(w, '2026-06-16T11:00:00.000Z'), closed('2026-06-19T10:00:00.000Z', '2026-06-19T12:00:00.000Z')); // Tue → Fri
    assert.deepEqual(at(w, '2026-06-21T11:00:00.000Z'), open('2026-06-21T12:00:00.000Z')); // Sun
    assert.deepEqual(at(w, '2026-06-22T11:00:00.000Z'), open('2026-06-22T12:00:00.000Z')); // Mon
    assert.deepEqual(at(w, '2026-06-22T12:00:00.000Z'), closed('2026-06-26T10:00:00.000Z', '2026-06-26T12:00:00.000Z')); // Mon end → Fri
  });

  it('runs a window across midnight from its start day into the next', () => {
    // Friday 22:00 to Saturday 02:00 Madrid time (UTC+2): Friday 20:00Z to Saturday 00:00Z.
    const w = window('Fri 22:00-02:00 Europe/Madrid');
    assert.deepEqual(at(w, '2026-06-19T23:00:00.000Z'), open('2026-06-20T00:00:00.000Z')); // Sat 01:00 local
    assert.deepEqual(at(w, '2026-06-20T01:00:00.000Z'), closed('2026-06-26T20:00:00.000Z', '2026-06-27T00:00:00.000Z')); // Sat 03:00
    assert.deepEqual(at(w, '2026-06-18T21:00:00.000Z'), closed('2026-06-19T20:00:00.000Z', '2026-06-20T00:00:00.000Z')); // Thu 23:00
    assert.deepEqual(at(w, '2026-06-19T20:00:00.000Z'), open('2026-06-20T00:00:00.000Z')); // Fri 22:00 exactly
  });

  it('starts a window whose start time is skipped by spring-forward at the end of the gap (Europe/Madrid)', () => {
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z). The day before, 02:30 CET is 01:30Z.
    const w = window('daily 02:30-04:00 Europe/Madrid');
    assert.deepEqual(at(w, '2026-03-28T01:29:00.000Z'), closed('2026-03-28T01:30:00.000Z', '2026-03-28T03:00:00.000Z'));
    assert.deepEqual(at(w, '2026-03-29T00:45:00.000Z'), closed('2026-03-29T01:00:00.000Z', '2026-03-29T02:00:00.000Z'));
    assert.deepEqual(at(w, '2026-03-29T00:59:59.999Z'), closed('2026-03-29T01:00:00.000Z', '2026-03-29T02:00:00.000Z'));
    assert.deepEqual(at(w, '2026-03-29T01:00:00.000Z'), open('2026-03-29T02:00:00.000Z'));
    assert.deepEqual(at(w, '2026-03-29T02:00:00.000Z'), closed('2026-03-30T00:30:00.000Z', '2026-03-30T02:00:00.000Z'));
  });

  it('opens an hour later in UTC after fall-back, and uses the first of a repeated time (Europe/Madrid)', () => {
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET (at 01:00Z).
    const day = window('daily 08:00-20:00 Europe/Madrid');
    assert.deepEqual(at(day, '2026-10-18T00:00:00.000Z'), closed('2026-10-18T06:00:00.000Z', '2026-10-18T18:00:00.000Z'));
    assert.deepEqual(at(day, '2026-10-25T00:00:00.000Z'), closed('2026-10-25T07:00:00.000Z', '2026-10-25T19:00:00.000Z'));
    assert.deepEqual(at(day, '2026-10-25T06:30:00.000Z'), closed('2026-10-25T07:00:00.000Z', '2026-10-25T19:00:00.000Z'));
    // 02:30 happens twice that night (00:30Z in summer time, 01:30Z in winter time): the window starts at the first.
    const repeated = window('daily 02:30-03:30 Europe/Madrid');
    assert.deepEqual(at(repeated, '2026-10-25T00:00:00.000Z'), closed('2026-10-25T00:30:00.000Z', '2026-10-25T02:30:00.000Z'));
    assert.deepEqual(at(repeated, '2026-10-25T01:15:00.000Z'), open('2026-10-25T02:30:00.000Z'));
  });

  it('follows America/New_York across its spring change (2026-03-08)', () => {
    // 09:00-17:00 is 14:00Z-22:00Z in EST (UTC-5) and 13:00Z-21:00Z in EDT (UTC-4).
    const w = window('Mon-Fri 09:00-17:00 America/New_York');
    assert.deepEqual(at(w, '2026-03-06T13:59:00.000Z'), closed('2026-03-06T14:00:00.000Z', '2026-03-06T22:00:00.000Z'));
    assert.deepEqual(at(w, '2026-03-06T22:00:00.000Z'), closed('2026-03-09T13:00:00.000Z', '2026-03-09T21:00:00.000Z'));
    // Saturday 22:00 EST to Sunday 04:00 EDT lasts five hours, not six.
    const night = window('Sat 22:00-04:00 America/New_York');
    assert.deepEqual(at(night, '2026-03-07T12:00:00.000Z'), closed('2026-03-08T03:00:00.000Z', '2026-03-08T08:00:00.000Z'));
    assert.deepEqual(at(night, '2026-03-08T07:59:59.999Z'), open('2026-03-08T08:00:00.000Z'));
  });

  it('is always open for daily 00:00-24:00, with no end in sight', () => {
    const always = window('daily 00:00-24:00 UTC');
    for (const now of ['2026-01-01T00:00:00.000Z', '2026-06-17T23:59:59.999Z', '2026-10-25T01:00:00.000Z']) assert.deepEqual(at(always, now), open(null));
    assert.deepEqual(at(window('daily 00:00-24:00 Europe/Madrid'), '2026-03-29T01:00:00.000Z'), open(null));
  });

  it('merges touching days into one open period', () => {
    const weekend = window('Sat-Sun 00:00-24:00 UTC');
    assert.deepEqual(at(weekend, '2026-06-20T12:00:00.000Z'), open('2026-06-22T00:00:00.000Z'));
    assert.deepEqual(at(weekend, '2026-06-17T12:00:00.000Z'), closed('2026-06-20T00:00:00.000Z', '2026-06-22T00:00:00.000Z'));
  });

  it('is never open for a window that does not parse', () => {
    assert.deepEqual(at(window('Funday 08:00-20:00 UTC'), '2026-06-17T10:00:00.000Z'), closed(null, null));
  });
});

describe('scheduleState: cron runs', () => {
  const nightly = cron('0 2 * * *', 3600);

  it('is open during a run and closes at fire time + duration', () => {
    assert.deepEqual(at(nightly, '2026-06-17T02:30:00.000Z'), open('2026-06-17T03:00:00.000Z'));
    assert.deepEqual(at(nightly, '2026-06-17T02:00:00.000Z'), open('2026-06-17T03:00:00.000Z'));
  });

  it('is closed at the end (exclusive) and before the start, opening at the next fire time', () => {
    assert.deepEqual(at(nightly, '2026-06-17T03:00:00.000Z'), closed('2026-06-18T02:00:00.000Z', '2026-06-18T03:00:00.000Z'));
    assert.deepEqual(at(nightly, '2026-06-17T02:59:59.999Z'), open('2026-06-17T03:00:00.000Z'));
    assert.deepEqual(at(nightly, '2026-06-17T01:59:59.999Z'), closed('2026-06-17T02:00:00.000Z', '2026-06-17T03:00:00.000Z'));
  });

  it('reads the cron in its time zone across the DST change', () => {
    // 09:00 Madrid on weekdays: 08:00Z in winter (Fri 2026-03-27), 07:00Z in summer (Mon 2026-03-30).
    const morning = cron('0 9 * * 1-5', 3600, 'Europe/Madrid');
    assert.deepEqual(at(morning, '2026-03-27T00:00:00.000Z'), closed('2026-03-27T08:00:00.000Z', '2026-03-27T09:00:00.000Z'));
    assert.deepEqual(at(morning, '2026-03-27T09:00:00.000Z'), closed('2026-03-30T07:00:00.000Z', '2026-03-30T08:00:00.000Z'));
    assert.deepEqual(at(morning, '2026-03-30T07:30:00.000Z'), open('2026-03-30T08:00:00.000Z'));
  });

  it('stays open when each run lasts longer than the period', () => {
    const overlapping = cron('0 * * * *', 7200);
    for (const now of ['2026-06-17T00:00:00.000Z', '2026-06-17T13:59:59.999Z', '2026-12-31T23:30:00.000Z']) assert.deepEqual(at(overlapping, now), open(null));
    assert.deepEqual(at(cron('* * * * *', 60), '2026-06-17T10:00:30.000Z'), open(null)); // touching runs
  });

  it('merges overlapping runs up to the last end', () => {
    // Runs 00:00-01:30 and 01:00-02:30 make one period 00:00-02:30.
    const twice = cron('0 0,1 * * *', 5400);
    assert.deepEqual(at(twice, '2026-06-17T00:30:00.000Z'), open('2026-06-17T02:30:00.000Z'));
    assert.deepEqual(at(twice, '2026-06-17T01:45:00.000Z'), open('2026-06-17T02:30:00.000Z'));
    assert.deepEqual(at(twice, '2026-06-16T23:00:00.000Z'), closed('2026-06-17T00:00:00.000Z', '2026-06-17T02:30:00.000Z'));
    assert.deepEqual(at(twice, '2026-06-17T02:30:00.000Z'), closed('2026-06-18T00:00:00.000Z', '2026-06-18T02:30:00.000Z'));
  });

  it('accepts a nickname: @hourly for ten minutes', () => {
    const hourly = cron('@hourly', 600);
    assert.deepEqual(at(hourly, '2026-06-17T10:05:00.000Z'), open('2026-06-17T10:10:00.000Z'));
    assert.deepEqual(at(hourly, '2026-06-17T10:10:00.000Z'), closed('2026-06-17T11:00:00.000Z', '2026-06-17T11:10:00.000Z'));
  });

  it('reports a far-off next run exactly (Feb 29 in the next leap year)', () => {
    assert.deepEqual(at(cron('0 0 29 2 *', 3600), '2026-06-17T00:00:00.000Z'), closed('2028-02-29T00:00:00.000Z', '2028-02-29T01:00:00.000Z'));
  });
});

describe('retryAfterSeconds', () => {
  const now = ms('2026-06-17T10:00:00.000Z');
  const closedUntil = (opensAtMs: number | null) => ({ open: false, opensAtMs, closesAtMs: null });

  it('rounds the wait up to whole seconds, at least 1', () => {
    assert.equal(retryAfterSeconds(closedUntil(now + 1500), now), 2);
    assert.equal(retryAfterSeconds(closedUntil(now + 60_000), now), 60);
    assert.equal(retryAfterSeconds(closedUntil(now + 60_001), now), 61);
    assert.equal(retryAfterSeconds(closedUntil(now + 1), now), 1);
    assert.equal(retryAfterSeconds(closedUntil(now), now), 1);
  });

  it('is an hour when there is no next start', () => {
    assert.equal(retryAfterSeconds(closedUntil(null), now), 3600);
  });

  it('counts to the next start of a real schedule', () => {
    const state = scheduleState(cron('0 2 * * *', 3600), ms('2026-06-17T01:59:58.200Z'));
    assert.equal(retryAfterSeconds(state, ms('2026-06-17T01:59:58.200Z')), 2);
  });
});
