// The scheduled policy's forms: weekly windows (days, 24-hour times, IANA zones, across midnight) and 5-field cron.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isValidTimeZone, parseWindow, validateCron, type ParsedWindow } from '../../../shared/spec/schedule.ts';

function window(text: string): ParsedWindow {
  const result = parseWindow(text);
  assert.ok(result.ok, `expected "${text}" to parse, got: ${result.ok ? '' : result.error}`);
  return result.window;
}

function windowError(text: string): string {
  const result = parseWindow(text);
  assert.ok(!result.ok, `expected "${text}" to be refused`);
  return result.error;
}

describe('parseWindow', () => {
  it('reads a weekday range with times and a DST zone', () => {
    assert.deepEqual(window('Mon-Fri 08:00-20:00 Europe/Madrid'), {
      days: [1, 2, 3, 4, 5],
      startMinute: 480,
      endMinute: 1200,
      timeZone: 'Europe/Madrid',
      crossesMidnight: false,
    });
  });

  it('reads day lists, single days and mixed lists, in any case, sorted without duplicates', () => {
    assert.deepEqual(window('Mon,Wed,Fri 09:00-17:00 UTC').days, [1, 3, 5]);
    assert.deepEqual(window('sat 10:00-12:00 UTC').days, [6]);
    assert.deepEqual(window('Fri,Mon-Wed,MON 10:00-12:00 UTC').days, [1, 2, 3, 5]);
  });

  it('wraps a day range over the weekend', () => {
    assert.deepEqual(window('Fri-Mon 10:00-12:00 UTC').days, [0, 1, 5, 6]);
    assert.deepEqual(window('Sat-Sun 00:00-24:00 UTC').days, [0, 6]);
  });

  it('takes daily and * for every day', () => {
    assert.deepEqual(window('daily 00:00-06:00 UTC').days, [0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(window('* 00:00-06:00 UTC').days, [0, 1, 2, 3, 4, 5, 6]);
  });

  it('crosses midnight when the end is before the start', () => {
    const w = window('Fri 22:00-02:00 America/New_York');
    assert.equal(w.crossesMidnight, true);
    assert.equal(w.startMinute, 22 * 60);
    assert.equal(w.endMinute, 120);
  });

  it('accepts 24:00 as an end, and not as a start', () => {
    assert.equal(window('Mon 20:00-24:00 Asia/Tokyo').endMinute, 1440);
    assert.equal(window('Mon 00:00-24:00 UTC').crossesMidnight, false);
    assert.match(windowError('Mon 24:00-02:00 UTC'), /24:00 is only allowed as the end/);
  });

  it('accepts zones with daylight saving time and the southern hemisphere', () => {
    for (const zone of ['Europe/London', 'America/Los_Angeles', 'Australia/Sydney', 'America/Argentina/Buenos_Aires', 'Etc/GMT+5']) {
      assert.equal(window(`Mon-Fri 08:00-20:00 ${zone}`).timeZone, zone);
    }
  });

  it('refuses a window that starts and ends at the same time', () => {
    assert.match(windowError('Mon-Fri 08:00-08:00 UTC'), /starts and ends at 08:00.*00:00-24:00/);
  });

  it('refuses hours past 23, minutes past 59 and times without two-digit hours', () => {
    assert.match(windowError('Mon 08:00-25:00 UTC'), /"25:00".*00 to 23/);
    assert.match(windowError('Mon 08:60-10:00 UTC'), /minutes go from 00 to 59/);
    assert.match(windowError('Mon 8:00-10:00 UTC'), /24-hour HH:MM/);
    assert.match(windowError('Mon 08:00 UTC'), /not a time range/);
  });

  it('refuses unknown day names and says which ones exist', () => {
    assert.match(windowError('Monday-Fri 08:00-20:00 UTC'), /unknown day "Monday": use Mon, Tue/);
    assert.match(windowError('Mon,,Fri 08:00-20:00 UTC'), /empty entry/);
    assert.match(windowError('Mon-Wed-Fri 08:00-20:00 UTC'), /not a day or a day range/);
  });

  it('refuses unknown zones and UTC offsets', () => {
    assert.match(windowError('Mon-Fri 08:00-20:00 Europe/Madird'), /"Europe\/Madird" is not an IANA time zone/);
    assert.match(windowError('Mon-Fri 08:00-20:00 +01:00'), /not an IANA time zone/);
  });

  it('says what is missing from a short window', () => {
    assert.match(windowError('Mon-Fri 08:00-20:00'), /needs a time zone at the end/);
    assert.match(windowError('08:00-20:00 UTC'), /needs its days first/);
    assert.match(windowError(''), /DAYS HH:MM-HH:MM ZONE/);
  });
});

describe('validateCron', () => {
  it('accepts 5-field expressions, names and steps, in any IANA zone', () => {
    for (const expr of ['0 2 * * *', '*/15 * * * *', '0 8 * * MON-FRI', '30 1 1 JAN,JUL *', '0 0 * * 0', '@daily', '@hourly']) {
      assert.equal(validateCron(expr, 'UTC'), null, expr);
    }
    assert.equal(validateCron('0 2 * * *', 'Europe/Madrid'), null);
    assert.equal(validateCron('30 2 * * *', 'America/New_York'), null, 'a time inside a DST gap is still a valid schedule');
  });

  it('refuses values out of range, with the field named', () => {
    assert.match(validateCron('0 25 * * *', 'UTC') ?? '', /not a valid cron expression.*hour/i);
    assert.match(validateCron('61 * * * *', 'UTC') ?? '', /minute/i);
    assert.match(validateCron('0 2 * * 8', 'UTC') ?? '', /day ?of ?week/i);
  });

  it('refuses the seconds and years forms, and wrong field counts', () => {
    assert.match(validateCron('0 0 2 * * *', 'UTC') ?? '', /6 fields: cron with seconds is not accepted/);
    assert.match(validateCron('0 0 2 * * * 2030', 'UTC') ?? '', /7 fields/);
    assert.match(validateCron('0 2 *', 'UTC') ?? '', /has 3 fields/);
    assert.match(validateCron('', 'UTC') ?? '', /5 fields/);
    assert.match(validateCron('2030-01-01T00:00:00', 'UTC') ?? '', /has 1 field/);
  });

  it('refuses @reboot and expressions that never fire', () => {
    assert.match(validateCron('@reboot', 'UTC') ?? '', /not a cron nickname/);
    assert.match(validateCron('0 0 30 2 *', 'UTC') ?? '', /never fires/);
  });

  it('refuses an unknown time zone', () => {
    assert.match(validateCron('0 2 * * *', 'Mars/Olympus_Mons') ?? '', /not an IANA time zone/);
  });
});

describe('isValidTimeZone', () => {
  it('knows IANA zones and UTC, and nothing else', () => {
    assert.equal(isValidTimeZone('UTC'), true);
    assert.equal(isValidTimeZone('Europe/Madrid'), true);
    assert.equal(isValidTimeZone('Europe/Atlantis'), false);
    assert.equal(isValidTimeZone('+02:00'), false);
    assert.equal(isValidTimeZone(''), false);
  });
});
