// When a scheduled workload is open: the scheduled policy's two forms (schedule.ts parses them) evaluated at an
// instant. Pure: the time comes in as milliseconds since the epoch, nothing reads the clock.
//
// Cron form: each fire time f of the cron (read in its time zone; croner does the zone and DST math) starts a run
// [f, f + duration_s). The workload is open at `now` when some run holds it: start inclusive, end exclusive. Runs
// that overlap or touch (a duration as long as the cron's period or longer) merge into one open period.
//
// Window form: every listed day D, the window runs from its start time on D to its end time on D (or on D + 1 when
// it crosses midnight; 24:00 is the next day's 00:00), in local wall time of the window's zone. Wall times become
// instants by these rules, the same for starts and ends (and the same as croner's for cron fire times):
//   - a wall time that does not exist (skipped by a spring-forward change, e.g. 02:30 on 2026-03-29 in
//     Europe/Madrid) is the first instant after the gap: the instant of the change (03:00 local, 01:00Z);
//   - a wall time that occurs twice (repeated by a fall-back change, e.g. 02:30 on 2026-10-25 in Europe/Madrid)
//     is its first occurrence (02:30 summer time, 00:30Z).
//   So a window's real length can differ from its wall-clock length on change days, and a window lying wholly in a
//   gap (a start and an end both skipped) is empty that day and does not open.
//
// The state:
//   open        whether `now` lies in a run.
//   opensAtMs   when closed: the start of the next run (null when there is none: the cron never fires again, or no
//               window opens in the next two weeks, which only a window that a DST gap empties can cause); when
//               open: always null (the current run's start is not reported).
//   closesAtMs  the end of the current run when open, of the next run when closed; runs that touch or overlap are
//               one run, so this is the end of the merged period. Null when that period outlasts the search horizon
//               (35 days from now when open, from its start when closed; for cron also at most 16 back-to-back runs
//               followed): the workload is in effect always open ("daily 00:00-24:00 UTC", or a cron whose
//               duration covers its period, such as "0 * * * *" for 7200 s).
// The next cron start is croner's answer however far off (croner's own search is bounded and returns null for a
// cron that never fires again); a window's next start is looked for over the next two weeks.
import { Cron } from 'croner';
import type { ScheduledConfig } from './policies.ts';
import { parseWindow, type ParsedWindow } from './schedule.ts';

export interface ScheduleState {
  open: boolean;
  /** Closed: when the next run starts (null: never, within the horizon). Open: null. */
  opensAtMs: number | null;
  /** When the current run (open) or the next run (closed) ends; null: not within the search horizon. */
  closesAtMs: number | null;
}

const minuteMs = 60_000;
const dayMs = 86_400_000;
/** How far ahead a merged open period is followed before it counts as "does not close". */
const mergeHorizonMs = 35 * dayMs;
/** How many back-to-back cron runs are followed at most when merging (each costs two croner look-ups, ~60 µs each). */
const maxCronMergeSteps = 16;
/** How many days ahead a window's next opening is looked for. */
const windowSearchDays = 15;
/** Entries kept in each memo (parsed windows, cron jobs, zone formatters). */
const memoSize = 256;

const never: ScheduleState = { open: false, opensAtMs: null, closesAtMs: null };

function remember<V>(memo: Map<string, V>, key: string, value: V, evict?: (old: V) => void): V {
  if (memo.size >= memoSize) {
    const oldest = memo.keys().next();
    if (!oldest.done) {
      const old = memo.get(oldest.value);
      memo.delete(oldest.value);
      if (evict && old !== undefined) evict(old);
    }
  }
  memo.set(key, value);
  return value;
}

/** The state of `config` at `nowMs` (rules at the top of this file). A config that does not parse is never open. */
export function scheduleState(config: ScheduledConfig, nowMs: number): ScheduleState {
  if ('window' in config) {
    const window = cachedWindow(config.window);
    return window ? windowState(window, nowMs) : never;
  }
  const job = cachedCron(config.cron, config.timezone);
  return job ? cronState(job, config.duration_s * 1000, nowMs) : never;
}

/** Seconds until the state's next opening, rounded up and at least 1 (an HTTP Retry-After); 3600 when unknown. */
export function retryAfterSeconds(state: ScheduleState, nowMs: number): number {
  if (state.opensAtMs === null) return 3600;
  return Math.max(1, Math.ceil((state.opensAtMs - nowMs) / 1000));
}

// cron

const cronMemo = new Map<string, Cron | null>();

function cachedCron(expr: string, timeZone: string): Cron | null {
  const key = `${timeZone}\u0000${expr}`;
  const known = cronMemo.get(key);
  if (known !== undefined) return known;
  let job: Cron | null;
  try {
    job = new Cron(expr.trim(), { mode: '5-part', timezone: timeZone, paused: true });
  } catch {
    job = null;
  }
  return remember(cronMemo, key, job, (old) => old?.stop());
}

/** The first fire time strictly after `ms`, or null. */
function fireAfter(job: Cron, ms: number): number | null {
  return job.nextRun(new Date(ms))?.getTime() ?? null;
}

function cronState(job: Cron, durationMs: number, nowMs: number): ScheduleState {
  // The earliest run still going at `now` starts in (now - duration, now]: end exclusive, start inclusive.
  const first = fireAfter(job, nowMs - durationMs);
  if (first !== null && first <= nowMs) return { open: true, opensAtMs: null, closesAtMs: cronRunEnd(job, durationMs, first + durationMs, nowMs) };
  // Otherwise no run starts in (now - duration, now], so the first fire after that is the next start.
  if (first === null) return never;
  return { open: false, opensAtMs: first, closesAtMs: cronRunEnd(job, durationMs, first + durationMs, first) };
}

/**
 * Follows runs that start before (or exactly at) the current end, from `end`; null past the horizon, counted from
 * `fromMs` (now when open, the run's start when closed).
 */
function cronRunEnd(job: Cron, durationMs: number, end: number, fromMs: number): number | null {
  for (let step = 0; step < maxCronMergeSteps; step++) {
    // A run that starts in (end - duration, end] reaches past `end`; none means the period ends at `end`.
    const next = fireAfter(job, end - durationMs);
    if (next === null || next > end) return end;
    if (end > fromMs + mergeHorizonMs) return null;
    // Jump to the latest such run (the whole stretch between is covered).
    const latest = job.previousRuns(1, new Date(end + 1))[0]?.getTime();
    end = Math.max(next, latest !== undefined && latest <= end ? latest : next) + durationMs;
  }
  return null;
}

// window

const windowMemo = new Map<string, ParsedWindow | null>();

function cachedWindow(text: string): ParsedWindow | null {
  const known = windowMemo.get(text);
  if (known !== undefined) return known;
  const parsed = parseWindow(text);
  return remember(windowMemo, text, parsed.ok ? parsed.window : null);
}

const formatterMemo = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  return (
    formatterMemo.get(timeZone) ??
    remember(
      formatterMemo,
      timeZone,
      new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      }),
    )
  );
}

/** The zone's offset from UTC at instant `ms`, in ms (local wall time = ms + offset), to the second. */
function offsetAt(timeZone: string, ms: number): number {
  const whole = Math.floor(ms / 1000) * 1000;
  const f: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(whole)) if (part.type !== 'literal') f[part.type] = Number(part.value);
  const wall = Date.UTC(f.year ?? 1970, (f.month ?? 1) - 1, f.day ?? 1, f.hour ?? 0, f.minute ?? 0, f.second ?? 0);
  return wall - whole;
}

/**
 * The instant of local wall time `wallMs` (a local date and time written as if it were UTC) in `timeZone`: the
 * first occurrence when it is repeated, the first instant after the gap when it is skipped. Assumes at most one
 * offset change within a day either side, as every real zone has.
 */
function instantOf(timeZone: string, wallMs: number): number {
  const before = offsetAt(timeZone, wallMs - dayMs);
  const after = offsetAt(timeZone, wallMs + dayMs);
  let best: number | null = null;
  for (const offset of before === after ? [before] : [before, after]) {
    const t = wallMs - offset;
    if (offsetAt(timeZone, t) === offset && (best === null || t < best)) best = t;
  }
  if (best !== null) return best;
  // Skipped: the change happens between the instant that reads `wallMs` in the later offset (still before the
  // change) and the one that reads it in the earlier offset (already after); find it.
  let lo = wallMs - Math.max(before, after);
  let hi = wallMs - Math.min(before, after);
  const old = offsetAt(timeZone, lo);
  if (offsetAt(timeZone, hi) === old) return hi;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (offsetAt(timeZone, mid) === old) lo = mid;
    else hi = mid;
  }
  return hi;
}

interface Occurrence {
  start: number;
  end: number;
}

/** The window's run that starts on local day `day` (days since 1970-01-01), or null (not a listed day, or empty). */
function occurrence(w: ParsedWindow, day: number): Occurrence | null {
  const weekday = (((day + 4) % 7) + 7) % 7; // 1970-01-01 was a Thursday
  if (!w.days.includes(weekday)) return null;
  const start = instantOf(w.timeZone, day * dayMs + w.startMinute * minuteMs);
  const end = instantOf(w.timeZone, (w.crossesMidnight ? day + 1 : day) * dayMs + w.endMinute * minuteMs);
  return end > start ? { start, end } : null;
}

/**
 * The end of the period that runs on from an occurrence on `day` ending at `end`, merging touching days; null past
 * the horizon, counted from `fromMs` (now when open, the run's start when closed).
 */
function windowRunEnd(w: ParsedWindow, day: number, end: number, fromMs: number): number | null {
  for (let next = day + 1; end <= fromMs + mergeHorizonMs; next++) {
    const o = occurrence(w, next);
    if (o === null || o.start > end) return end;
    end = Math.max(end, o.end);
  }
  return null;
}

function windowState(w: ParsedWindow, nowMs: number): ScheduleState {
  // Every day, all day: open whatever the offsets do (each day's 24:00 is the next day's 00:00).
  if (w.days.length === 7 && w.startMinute === 0 && w.endMinute === 1440) return { open: true, opensAtMs: null, closesAtMs: null };
  const today = Math.floor((nowMs + offsetAt(w.timeZone, nowMs)) / dayMs);
  // A run holding `now` started today or yesterday (across midnight); the day before that is checked for safety
  // around offset changes at midnight.
  for (let day = today - 2; day <= today; day++) {
    const o = occurrence(w, day);
    if (o !== null && o.start <= nowMs && nowMs < o.end) return { open: true, opensAtMs: null, closesAtMs: windowRunEnd(w, day, o.end, nowMs) };
  }
  for (let day = today - 1; day <= today + windowSearchDays; day++) {
    const o = occurrence(w, day);
    if (o !== null && o.start > nowMs) return { open: false, opensAtMs: o.start, closesAtMs: windowRunEnd(w, day, o.end, o.start) };
  }
  return never;
}
