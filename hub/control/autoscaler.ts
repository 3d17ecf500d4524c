// The autoscaler's decision (DESIGN §7, Knative's KPA as the model): the replica count an autoscaling workload wants now.
import { defaultBackendMetric, type AutoscalingConfig } from '../../shared/spec/policies.ts';
import type { LoadAverages } from './load-window.ts';

export const stableWindowS = 60;
export const panicWindowS = 6;
/** Panic starts when the panic window asks for this many times the ready replicas (Knative: 200%). */
export const panicThreshold = 2;
/** Panic lasts this long after its condition last held: by then the surge is inside the stable window. */
export const panicHoldMs = stableWindowS * 1000;

/** One decision's recommendation, kept for the up- and downscale delays. */
interface Recommendation {
  readonly atMs: number;
  readonly count: number;
}

/** What one decision hands the next; plain data, never mutated. Start from `initialAutoscalerState()`. */
export interface AutoscalerState {
  /** The first decision's time: an upscale delay counts only time that was watched. */
  readonly startedMs: number | null;
  /** When the panic condition last held (or the restart guard began); null: not in panic. */
  readonly panicAtMs: number | null;
  /** The latest activity the previous decision saw: newer activity wakes a workload at zero. */
  readonly seenActivityMs: number | null;
  /** Recommendations within the downscale delay, counts strictly falling: the first is their maximum. */
  readonly highs: readonly Recommendation[];
  /** Recommendations within the upscale delay, counts strictly rising: the first is their minimum. */
  readonly lows: readonly Recommendation[];
}

export function initialAutoscalerState(): AutoscalerState {
  return { startedMs: null, panicAtMs: null, seenActivityMs: null, highs: [], lows: [] };
}

export interface ScaleInput {
  readonly nowMs: number;
  readonly config: AutoscalingConfig;
  /** The count decided last time (what the reconciler is working towards). */
  readonly current: number;
  /** Replicas ready now: panic compares demand with them. */
  readonly ready: number;
  /** Load over the stable window (`stableWindowS`). */
  readonly stable: LoadAverages;
  /** Load over the panic window (`panicWindowS`). */
  readonly panic: LoadAverages;
  /** Requests in flight now, including those waiting in the cold-start queue. */
  readonly inFlight: number;
  /** From LoadWindow; null: never any activity. */
  readonly lastActivityMs: number | null;
  /** When autoscaling of this workload began (creation, activation): the idle timer starts no earlier. */
  readonly sinceMs: number;
  /** What one more replica costs per hour (0: its workers have no price, so no cost cap). */
  readonly replicaHourlyCostUsd: number;
  /** The most replicas the eligible workers could hold (for private workers, their number); Infinity when unknown. */
  readonly placeable: number;
  readonly state: AutoscalerState;
}

export type ScaleCapName = 'max_workers' | 'max_instances' | 'max_hourly_cost_usd' | 'cloud_pool.max_hourly_cost_usd' | 'placeable';

export interface ScaleCap {
  readonly by: ScaleCapName;
  /** The count the cap allows. */
  readonly limit: number;
  /** For a cost cap: the hourly cap in USD that set it. */
  readonly usd?: number;
}

/** The figures behind a decision, for events and explanations. */
export interface ScaleNumbers {
  /** The metric over the stable window; null: a backend metric with no samples in it. */
  readonly stableValue: number | null;
  readonly panicValue: number | null;
  /** ceil(value / target) for each window. */
  readonly stableDesired: number;
  readonly panicDesired: number;
  /** This decision's recommendation before the delays: the stable figure, or in panic the highest of both and current. */
  readonly recommended: number;
  /** The lowest recommendation over the upscale delay: the count rises to it (0 until the delay has been watched). */
  readonly upscaleFloor: number;
  /** The highest recommendation over the downscale delay: the count falls no lower than it. */
  readonly downscaleCeiling: number;
  /** Whole seconds since the last activity, or since autoscaling began when that is later. */
  readonly idleS: number;
  /** The upper bound that cut the count, when one did. */
  readonly cap: ScaleCap | null;
}

export interface ScaleDecision {
  readonly desired: number;
  readonly state: AutoscalerState;
  readonly panic: boolean;
  /** Why the count changed, with its numbers; null when it did not. */
  readonly reason: string | null;
  readonly numbers: ScaleNumbers;
}

/**
 * Decides the replica count of one autoscaling workload; called about once a second (the delays are measured on
 * the decisions' own times, so a long gap between calls shortens them to what was watched).
 *
 * 1. Each window's figure (in-flight, arrivals/s, or the backend metric) over `target` gives a count: ceil(value / target).
 * 2. Panic starts when the panic window's demand, in exact replicas, reaches 2 × max(ready, 1), and lasts 60 s past
 *    the last time that held. In panic the count follows the higher figure upwards at once (no upscale delay) and
 *    never falls. The first decision with current > 1 starts in panic too (Knative's restart guard), so a hub
 *    restart, whose load windows are empty, does not shed replicas before the stable window has filled.
 * 3. Outside panic the count rises to the lowest recommendation of the last `upscale_delay_s` (so only a rise that
 *    held that long applies), and falls to the highest of the last `downscale_delay_s` (so a dip shorter than that
 *    never scales down). A backend metric without samples holds the count.
 * 4. Zero only by idleness: min_workers 0, nothing in flight, and no activity for `scale_to_zero_delay_s` since the
 *    later of the last activity and `sinceMs`. Otherwise a running workload keeps at least one replica. At zero, a
 *    request in flight or activity the previous decision had not seen asks for one replica at once.
 * 5. Bounds: min_workers, then the caps (max_workers, cloud_pool.max_instances, the lower hourly cost cap over the
 *    replica's price, `placeable`); a cap beats min_workers, as money and hardware are hard limits.
 */
export function decideScale(input: ScaleInput): ScaleDecision {
  const { nowMs, config, current, state } = input;
  const stableValue = metricValue(config, input.stable);
  const panicValue = metricValue(config, input.panic);
  const stableDesired = replicasFor(stableValue ?? 0, config.target);
  const panicDesired = replicasFor(panicValue ?? 0, config.target);

  const startedMs = state.startedMs ?? nowMs;
  let panicAtMs = state.panicAtMs;
  if (state.startedMs === null && current > 1) panicAtMs = nowMs;
  if ((panicValue ?? 0) / config.target >= panicThreshold * Math.max(input.ready, 1)) panicAtMs = nowMs;
  let panic = panicAtMs !== null && nowMs - panicAtMs < panicHoldMs;

  let recommended: number;
  if (panic) recommended = Math.max(stableDesired, panicDesired, current);
  else if (stableValue === null) recommended = current;
  else recommended = stableDesired;

  const highs = recordHigh(state.highs, nowMs, recommended, config.downscale_delay_s * 1000);
  const lows = recordLow(state.lows, nowMs, recommended, config.upscale_delay_s * 1000);
  const downscaleCeiling = highs[0]?.count ?? recommended;
  const upscaleWatched = nowMs - startedMs >= config.upscale_delay_s * 1000;
  const upscaleFloor = upscaleWatched ? (lows[0]?.count ?? recommended) : 0;
  let count = panic ? recommended : Math.min(Math.max(current, upscaleFloor), downscaleCeiling);
  // A count away from the recommendation is the delays' doing, and the reason should say so (one replica, though, a
  // running workload keeps until it is idle, delay or not).
  let heldBy: 'upscale_delay_s' | 'downscale_delay_s' | null = null;
  if (!panic && count < current && count > Math.max(recommended, 1)) heldBy = 'downscale_delay_s';
  if (!panic && count > current && count < recommended) heldBy = 'upscale_delay_s';

  const idleFromMs = Math.max(input.lastActivityMs ?? -Infinity, input.sinceMs);
  const idleMs = Math.max(0, nowMs - idleFromMs);
  const freshActivity =
    input.lastActivityMs !== null &&
    input.lastActivityMs >= input.sinceMs &&
    (state.seenActivityMs === null || input.lastActivityMs > state.seenActivityMs);
  const idle = config.min_workers === 0 && input.inFlight === 0 && !freshActivity && idleMs >= config.scale_to_zero_delay_s * 1000;
  const woken = current === 0 && (input.inFlight > 0 || freshActivity);
  let cause: 'idle' | 'woken' | 'load' = 'load';
  if (idle) {
    count = 0;
    cause = 'idle';
    // Idle ends a surge too: nothing arrived for the whole delay.
    panic = false;
  } else if (current === 0 && !woken) {
    count = 0;
  } else {
    // Waking asks for one replica; more than one is the load's doing and says so.
    if (woken && count <= 1) cause = 'woken';
    count = Math.max(count, 1);
  }
  if (!panic) panicAtMs = null;

  const raised = count < config.min_workers;
  const atLeastMin = Math.max(count, config.min_workers);
  const cap = tightestCap(input);
  const desired = cap && cap.limit < atLeastMin ? cap.limit : atLeastMin;
  const cut = cap && cap.limit < atLeastMin ? cap : null;

  const numbers: ScaleNumbers = {
    stableValue,
    panicValue,
    stableDesired,
    panicDesired,
    recommended,
    upscaleFloor,
    downscaleCeiling,
    idleS: Math.floor(idleMs / 1000),
    cap: cut,
  };
  let reason: string | null = null;
  if (desired !== current) {
    let why: string;
    if (cause === 'idle') why = `idle for ${numbers.idleS} s`;
    else if (cause === 'woken') why = input.inFlight > 0 ? 'a request arrived' : 'activity resumed';
    else if (panic && panicDesired >= stableDesired) why = describeLoad(config, panicValue, panicWindowS, true);
    else why = describeLoad(config, stableValue, stableWindowS, false);
    if (cause === 'load' && heldBy && desired === count) why += `, held at ${count} by ${heldBy} ${config[heldBy]}`;
    if (raised && !cut) why += `, raised to min_workers ${config.min_workers}`;
    if (cut) why += `, capped at ${cut.limit} by ${describeCap(cut, input)}`;
    reason = `scale ${current}→${desired}: ${why}`;
  }

  return {
    desired,
    state: { startedMs, panicAtMs, seenActivityMs: input.lastActivityMs ?? state.seenActivityMs, highs, lows },
    panic,
    reason,
    numbers,
  };
}

/** The configured metric's figure in a window; null only for a backend metric without samples. */
function metricValue(config: AutoscalingConfig, load: LoadAverages): number | null {
  switch (config.metric) {
    case 'concurrency':
      return load.concurrency;
    case 'rps':
      return load.rps;
    case 'backend':
      return load.backend;
  }
}

/** Replicas for `value` at `target` each; the slack keeps float noise (16.000000000000004 / 16) from adding one. */
function replicasFor(value: number, target: number): number {
  return value <= 0 ? 0 : Math.ceil(value / target - 1e-9);
}

/** Adds a recommendation and keeps the last `delayMs` of them as falling counts (their maximum first). */
function recordHigh(previous: readonly Recommendation[], atMs: number, count: number, delayMs: number): Recommendation[] {
  const kept = previous.filter((r) => r.atMs >= atMs - delayMs && r.count > count);
  kept.push({ atMs, count });
  return kept;
}

/** Adds a recommendation and keeps the last `delayMs` of them as rising counts (their minimum first). */
function recordLow(previous: readonly Recommendation[], atMs: number, count: number, delayMs: number): Recommendation[] {
  const kept = previous.filter((r) => r.atMs >= atMs - delayMs && r.count < count);
  kept.push({ atMs, count });
  return kept;
}

/**
 * The lowest upper bound on the count, or null when nothing bounds it. Ties go to the first named here. `placeable`
 * never bounds below 1: a workload with nowhere to go still asks for a replica, so it waits with the scheduler's
 * explanation instead of quietly showing zero.
 */
function tightestCap(input: ScaleInput): ScaleCap | null {
  const { config } = input;
  const pool = config.workers?.source === 'cloud' ? config.workers.cloud_pool : undefined;
  const caps: ScaleCap[] = [{ by: 'max_workers', limit: config.max_workers }];
  if (pool?.max_instances !== undefined) caps.push({ by: 'max_instances', limit: pool.max_instances });
  const cost = costCap(config.max_hourly_cost_usd, pool?.max_hourly_cost_usd);
  if (cost && input.replicaHourlyCostUsd > 0)
    caps.push({ by: cost.by, limit: Math.floor(cost.usd / input.replicaHourlyCostUsd + 1e-9), usd: cost.usd });
  if (Number.isFinite(input.placeable)) caps.push({ by: 'placeable', limit: Math.max(1, Math.floor(input.placeable)) });
  let tightest: ScaleCap | null = null;
  for (const cap of caps) if (!tightest || cap.limit < tightest.limit) tightest = cap;
  return tightest;
}

/** The lower of the two hourly caps (the config's wins a tie), or null when neither is set. */
function costCap(workload: number | undefined, pool: number | undefined): { by: ScaleCapName; usd: number } | null {
  if (workload !== undefined && (pool === undefined || workload <= pool)) return { by: 'max_hourly_cost_usd', usd: workload };
  if (pool !== undefined) return { by: 'cloud_pool.max_hourly_cost_usd', usd: pool };
  return null;
}

function describeLoad(config: AutoscalingConfig, value: number | null, windowS: number, panic: boolean): string {
  const over = `over ${windowS} s${panic ? ' (panic)' : ''}, target ${config.target}`;
  switch (config.metric) {
    case 'concurrency':
      return `in-flight ${(value ?? 0).toFixed(1)} ${over}`;
    case 'rps':
      return `rps ${(value ?? 0).toFixed(1)} ${over}`;
    case 'backend': {
      const name = config.backend_metric ?? defaultBackendMetric;
      return value === null ? `no ${name} samples ${over}` : `${name} ${value.toFixed(1)} ${over}`;
    }
  }
}

function describeCap(cap: ScaleCap, input: ScaleInput): string {
  const { config } = input;
  switch (cap.by) {
    case 'max_workers':
      return `max_workers ${config.max_workers}`;
    case 'max_instances':
      return `max_instances ${cap.limit}`;
    case 'max_hourly_cost_usd':
    case 'cloud_pool.max_hourly_cost_usd':
      return `${cap.by} ${usdFigure(cap.usd ?? 0)} (${usdFigure(input.replicaHourlyCostUsd)}/replica)`;
    case 'placeable': {
      const n = cap.limit;
      return config.workers?.source === 'private'
        ? `${n} private worker${n === 1 ? '' : 's'}`
        : `room for ${n} replica${n === 1 ? '' : 's'} on eligible workers`;
    }
  }
}

function usdFigure(usd: number): string {
  return String(Math.round(usd * 10_000) / 10_000);
}
