// Parses and validates the scheduled policy's two forms: weekly windows ("Mon-Fri 08:00-20:00 Europe/Madrid") and cron.
//
// Window grammar, three words separated by spaces:
//   DAYS   `Mon`, a list `Mon,Wed,Fri`, a range `Mon-Fri` (ranges may wrap: `Fri-Mon` is Fri, Sat, Sun, Mon), lists
//          of days and ranges mixed (`Mon-Wed,Fri`), or `daily` / `*` for every day. Day names are the English
//          three-letter abbreviations, in any case.
//   TIMES  `HH:MM-HH:MM`, 24-hour with two-digit hours, 00:00 to 23:59; `24:00` is allowed as an end. An end before the
//          start crosses midnight: `Fri 22:00-02:00` runs from Friday 22:00 to Saturday 02:00 (DAYS are the days
//          a window starts on). Start equal to end is an error (use 00:00-24:00 for a whole day).
//   ZONE   an IANA time zone (`Europe/Madrid`, `UTC`), required so that "08:00" is never ambiguous.
// Cron: the standard 5 fields (minute hour day-of-month month day-of-week) as croner reads them, plus its nicknames
// (@daily, @hourly, …); the 6- and 7-field forms with seconds/years are refused, since a workload starts at most
// once a minute.
import { Cron } from 'croner';

export interface ParsedWindow {
  /** Days the window starts on, 0 = Sunday … 6 = Saturday, ascending, no duplicates. */
  days: number[];
  /** Minutes after local midnight, 0‥1439. */
  startMinute: number;
  /** Minutes after local midnight, 0‥1440 (1440 = 24:00); below startMinute when the window crosses midnight. */
  endMinute: number;
  timeZone: string;
  crossesMidnight: boolean;
}

export type WindowParseResult = { ok: true; window: ParsedWindow } | { ok: false; error: string };

export const windowExample = 'Mon-Fri 08:00-20:00 Europe/Madrid';

const dayNames = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const dayList = 'Mon, Tue, Wed, Thu, Fri, Sat, Sun';

/** True when `tz` names an IANA time zone this runtime knows (`UTC` included); UTC offsets such as "+01:00" are not zones. */
export function isValidTimeZone(tz: string): boolean {
  if (typeof tz !== 'string' || !/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(tz)) return false;
  try {
    Intl.DateTimeFormat(undefined, { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** An error message for a bad time zone, or null. */
export function validateTimeZone(tz: string): string | null {
  return isValidTimeZone(tz) ? null : `"${tz}" is not an IANA time zone (e.g. UTC, Europe/Madrid, America/New_York)`;
}

function parseDay(word: string): number | string {
  const i = dayNames.findIndex((name) => name === word.toLowerCase());
  return i >= 0 ? i : `unknown day "${word}": use ${dayList}`;
}

function parseDays(text: string): number[] | string {
  if (/^(daily|\*)$/i.test(text)) return [0, 1, 2, 3, 4, 5, 6];
  const days = new Set<number>();
  for (const part of text.split(',')) {
    if (part === '') return `"${text}" has an empty entry: list days as Mon,Wed,Fri`;
    const range = part.split('-');
    if (range.length > 2) return `"${part}" is not a day or a day range (Mon-Fri)`;
    const from = parseDay(range[0]!);
    if (typeof from === 'string') return from;
    const to = range[1] === undefined ? from : parseDay(range[1]);
    if (typeof to === 'string') return to;
    // A range whose end comes before its start wraps over the weekend: Fri-Mon.
    for (let d = from; ; d = (d + 1) % 7) {
      days.add(d);
      if (d === to) break;
    }
  }
  return [...days].sort((a, b) => a - b);
}

function parseTime(text: string, role: 'start' | 'end'): number | string {
  const m = /^(\d{2}):(\d{2})$/.exec(text);
  if (!m) return `"${text}" is not a 24-hour HH:MM time (e.g. 08:00)`;
  const hours = Number(m[1]);
  const minutes = Number(m[2]);
  if (minutes > 59) return `"${text}" is not a time: minutes go from 00 to 59`;
  if (hours === 24 && minutes === 0) return role === 'end' ? 1440 : '24:00 is only allowed as the end of a window (start at 00:00)';
  if (hours > 23) return `"${text}" is not a time: hours go from 00 to 23 (24:00 only as an end)`;
  return hours * 60 + minutes;
}

/** Parses a window such as "Mon-Fri 08:00-20:00 Europe/Madrid" (grammar at the top of this file). */
export function parseWindow(text: string): WindowParseResult {
  const fail = (error: string): WindowParseResult => ({ ok: false, error });
  if (typeof text !== 'string') return fail('a window is a string such as "' + windowExample + '"');
  const words = text.trim().split(/\s+/).filter((w) => w !== '');
  if (words.length !== 3) {
    if (words.length === 2 && /^\d/.test(words[1]!)) return fail(`the window needs a time zone at the end, e.g. "${words.join(' ')} UTC"`);
    if (words.length === 2 && /^\d/.test(words[0]!)) return fail(`the window needs its days first (daily for every day), e.g. "daily ${words.join(' ')}"`);
    return fail(`a window is "DAYS HH:MM-HH:MM ZONE", e.g. "${windowExample}" or "daily 00:00-06:00 UTC"`);
  }
  const [daysText, timesText, timeZone] = words as [string, string, string];
  const days = parseDays(daysText);
  if (typeof days === 'string') return fail(days);
  const times = timesText.split('-');
  if (times.length !== 2) return fail(`"${timesText}" is not a time range: write HH:MM-HH:MM, e.g. 08:00-20:00`);
  const startMinute = parseTime(times[0]!, 'start');
  if (typeof startMinute === 'string') return fail(startMinute);
  const endMinute = parseTime(times[1]!, 'end');
  if (typeof endMinute === 'string') return fail(endMinute);
  if (startMinute === endMinute) return fail(`the window starts and ends at ${times[0]}, so it would be empty (for a whole day write 00:00-24:00)`);
  const zoneError = validateTimeZone(timeZone);
  if (zoneError) return fail(zoneError);
  return { ok: true, window: { days, startMinute, endMinute, timeZone, crossesMidnight: endMinute < startMinute } };
}

const cronNicknames = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'];
const cronFields = 'minute hour day-of-month month day-of-week';
/** A fixed start for the "does it ever fire" check, so the answer does not depend on today's date. */
const referenceDate = new Date(Date.UTC(2000, 0, 1));

/** An error message for a bad 5-field cron expression or time zone, or null when both are fine. */
export function validateCron(expr: string, timeZone: string): string | null {
  if (typeof expr !== 'string' || expr.trim() === '') return `a cron expression has 5 fields (${cronFields}), e.g. "0 2 * * *"`;
  const zoneError = validateTimeZone(timeZone);
  if (zoneError) return zoneError;
  const trimmed = expr.trim();
  if (trimmed.startsWith('@')) {
    if (!cronNicknames.includes(trimmed)) return `"${trimmed}" is not a cron nickname ikhub accepts: use ${cronNicknames.join(', ')} or 5 fields`;
  } else {
    const count = trimmed.split(/\s+/).length;
    if (count === 6 || count === 7) {
      const what = count === 7 ? 'seconds and years' : 'seconds';
      return `"${trimmed}" has ${count} fields: cron with ${what} is not accepted, use the 5 fields ${cronFields} (e.g. "0 2 * * *")`;
    }
    if (count !== 5) return `"${trimmed}" has ${count} field${count === 1 ? '' : 's'}: a cron expression has 5 (${cronFields}), e.g. "0 2 * * *"`;
  }
  let job: Cron;
  try {
    job = new Cron(trimmed, { mode: '5-part', timezone: timeZone, paused: true });
  } catch (err) {
    const reason = err instanceof Error ? err.message.replace(/^Cron\w*:\s*/, '') : String(err);
    return `"${trimmed}" is not a valid cron expression: ${reason}`;
  }
  const next = job.nextRun(referenceDate);
  job.stop();
  return next === null ? `"${trimmed}" never fires (no date matches it)` : null;
}
