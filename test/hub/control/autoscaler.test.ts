// The autoscaler's decisions, second by second: a load window on a fake clock feeds decideScale as the hub's loop would.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decideScale,
  initialAutoscalerState,
  panicWindowS,
  stableWindowS,
  type AutoscalerState,
  type ScaleDecision,
  type ScaleInput,
} from '../../../hub/control/autoscaler.ts';
import { LoadWindow, type LoadAverages } from '../../../hub/control/load-window.ts';
import { FakeClock } from '../../../shared/clock.ts';
import type { AutoscalingConfig } from '../../../shared/spec/policies.ts';

/** The normalized defaults (upscale 0 s, downscale 300 s, zero after 600 s, target 16 in flight), 0‥10 replicas. */
function config(o: Partial<AutoscalingConfig> = {}): AutoscalingConfig {
  return {
    min_workers: 0,
    max_workers: 10,
    metric: 'concurrency',
    target: 16,
    upscale_delay_s: 0,
    downscale_delay_s: 300,
    scale_to_zero_delay_s: 600,
    cold_start_timeout_s: 300,
    max_queue: 100,
    ...o,
  };
}

interface SimOptions {
  current?: number;
  replicaHourlyCostUsd?: number;
  placeable?: number;
}

/**
 * One workload under the hub's loop: load happens at whole seconds, then the clock moves one second and the
 * autoscaler decides; what it decides is at once both the next `current` and the ready count (instant starts).
 */
class Sim {
  readonly clock = new FakeClock();
  readonly window = new LoadWindow(this.clock);
  readonly t0 = this.clock.now();
  /** Seconds since t0. */
  t = 0;
  current: number;
  state: AutoscalerState = initialAutoscalerState();
  readonly log = new Map<number, ScaleDecision>();

  constructor(
    readonly config: AutoscalingConfig,
    private readonly o: SimOptions = {},
  ) {
    this.current = o.current ?? 1;
  }

  /** Opens or closes requests until `n` are in flight. */
  hold(n: number): void {
    while (this.window.inFlight < n) this.window.requestStarted();
    while (this.window.inFlight > n) this.window.requestEnded();
  }

  /** Requests that arrive and finish at once (they count for rps and activity, not for in-flight). */
  arrive(n: number): void {
    for (let i = 0; i < n; i++) {
      this.window.requestStarted();
      this.window.requestEnded();
    }
  }

  tick(): ScaleDecision {
    this.clock.advance(1000);
    this.t += 1;
    const decision = decideScale({
      nowMs: this.clock.now(),
      config: this.config,
      current: this.current,
      ready: this.current,
      stable: this.window.averages(stableWindowS),
      panic: this.window.averages(panicWindowS),
      inFlight: this.window.inFlight,
      lastActivityMs: this.window.lastActivityMs,
      sinceMs: this.t0,
      replicaHourlyCostUsd: this.o.replicaHourlyCostUsd ?? 0,
      placeable: this.o.placeable ?? Infinity,
      state: this.state,
    });
    this.state = decision.state;
    this.current = decision.desired;
    this.log.set(this.t, decision);
    return decision;
  }

  /** Ticks until second `until`; `load(t)` runs first at each whole second t (t = the time since t0). */
  runUntil(until: number, load?: (t: number) => void): void {
    while (this.t < until) {
      load?.(this.t);
      this.tick();
    }
  }

  at(t: number): ScaleDecision {
    const decision = this.log.get(t);
    if (!decision) throw new Error(`no decision at ${t} s`);
    return decision;
  }

  /** The count decided at each of these seconds. */
  countsAt(...ts: number[]): number[] {
    return ts.map((t) => this.at(t).desired);
  }

  /** Every change: [second, reason]. */
  changes(): Array<[number, string | null]> {
    return [...this.log].filter(([, d]) => d.reason !== null).map(([t, d]) => [t, d.reason]);
  }
}

const quiet: LoadAverages = { concurrency: 0, rps: 0, backend: null };
const T0 = Date.UTC(2026, 10, 23, 9, 0, 0);

/** One decision from plain numbers, for bounds and wording. */
function decideOnce(o: Partial<ScaleInput>): ScaleDecision {
  return decideScale({
    nowMs: T0,
    config: config(),
    current: 1,
    ready: 1,
    stable: quiet,
    panic: quiet,
    inFlight: 1,
    lastActivityMs: T0,
    sinceMs: T0 - 3_600_000,
    replicaHourlyCostUsd: 0,
    placeable: Infinity,
    state: initialAutoscalerState(),
    ...o,
  });
}

/** Wants `n` replicas by the stable window (n × 16 in flight) without panic (the panic window is calm). */
const wants = (n: number): Partial<ScaleInput> => ({ stable: { ...quiet, concurrency: n * 16 }, panic: { ...quiet, concurrency: 16 } });

describe('decideScale under a steady load', () => {
  it('rises once the stable window passes the target, then stays put', () => {
    const sim = new Sim(config());
    sim.runUntil(1200, () => sim.hold(20));
    // The stable window fills at 20/60 per second: 16.0 at 48 s is one replica's worth, 16.3 at 49 s is not.
    assert.deepEqual(sim.changes(), [[49, 'scale 1→2: in-flight 16.3 over 60 s, target 16']]);
    assert.deepEqual(sim.countsAt(48, 49, 600, 1200), [1, 2, 2, 2]);
    assert.equal(sim.at(1200).panic, false);
  });

  it('holds the count through a restart: the first decision over 1 starts in panic until the stable window fills', () => {
    const sim = new Sim(config({ downscale_delay_s: 0 }), { current: 4 });
    sim.runUntil(700);
    assert.deepEqual(sim.countsAt(1, 60, 61, 599, 600), [4, 4, 1, 1, 0]);
    assert.equal(sim.at(60).panic, true);
    assert.deepEqual(sim.changes(), [
      [61, 'scale 4→1: in-flight 0.0 over 60 s, target 16'],
      [600, 'scale 1→0: idle for 600 s'],
    ]);
  });
});

describe('decideScale in panic', () => {
  /** 8 in flight for 120 s on one replica, then a step to 100; the load stops at 150 s. */
  function stepSim(downscaleDelayS: number): Sim {
    const sim = new Sim(config({ downscale_delay_s: downscaleDelayS }));
    sim.runUntil(210, (t) => sim.hold(t < 120 ? 8 : t < 150 ? 100 : 0));
    return sim;
  }

  it('rises at once on a step, following the panic window upwards', () => {
    const sim = stepSim(0);
    assert.deepEqual(sim.countsAt(120, 121, 122, 123, 124, 125, 126, 140), [1, 1, 3, 4, 5, 6, 7, 7]);
    // At 121 s the panic window holds 23.3 in flight, 1.46 replicas' worth: under 200% of one ready replica.
    assert.equal(sim.at(121).panic, false);
    assert.equal(sim.at(122).panic, true);
    assert.equal(sim.at(122).reason, 'scale 1→3: in-flight 38.7 over 6 s (panic), target 16');
    assert.equal(sim.at(126).reason, 'scale 6→7: in-flight 100.0 over 6 s (panic), target 16');
  });

  it('never falls while in panic, even with no downscale delay and no load', () => {
    const sim = stepSim(0);
    for (let t = 126; t <= 181; t++) assert.equal(sim.at(t).desired, 7, `at ${t} s`);
    assert.equal(sim.at(181).panic, true);
    assert.equal(sim.at(181).numbers.stableDesired, 4); // what it would be without panic
  });

  it('leaves panic 60 s after its condition last held, back to the stable figure', () => {
    const sim = stepSim(0);
    // The condition held last at 122 s (then 7 ready replicas were plenty); 28 s of 100 in flight remain in the stable window.
    assert.equal(sim.at(182).panic, false);
    assert.equal(sim.at(182).reason, 'scale 7→3: in-flight 46.7 over 60 s, target 16');
    // Then it follows the stable window down: 16.7 (10 s of 100) at 200 s is still two replicas' worth.
    assert.deepEqual(sim.countsAt(182, 190, 191, 200, 201), [3, 3, 2, 2, 1]);
  });

  it('hands over to the downscale delay when it has one', () => {
    const sim = stepSim(300);
    sim.runUntil(520);
    // The panic count (7) was recommended last at 181 s, so it holds until 481 s; then each later recommendation
    // (3 from 182 s, 2 from 191 s, 1 from 201 s) holds for 300 s in turn.
    assert.deepEqual(sim.countsAt(182, 481, 482, 490, 491, 500, 501), [7, 7, 3, 3, 2, 2, 1]);
    assert.equal(sim.at(482).reason, 'scale 7→3: in-flight 0.0 over 60 s, target 16, held at 3 by downscale_delay_s 300');
    assert.equal(sim.at(501).reason, 'scale 2→1: in-flight 0.0 over 60 s, target 16');
  });

  it('wakes a workload at zero with one replica, then lets panic add more', () => {
    const sim = new Sim(config(), { current: 0 });
    sim.runUntil(10);
    sim.runUntil(14, () => sim.hold(100));
    // 10 s: none; 11 s: 100 waiting for a cold start (16.7 in the panic window) wake one; 12 s: 33.3, panic.
    assert.deepEqual(sim.countsAt(10, 11, 12, 13), [0, 1, 3, 4]);
    assert.equal(sim.at(11).reason, 'scale 0→1: a request arrived');
    assert.equal(sim.at(12).reason, 'scale 1→3: in-flight 33.3 over 6 s (panic), target 16');
  });
});

describe('decideScale delays', () => {
  it('falls only after downscale_delay_s of lower recommendations', () => {
    const sim = new Sim(config());
    sim.runUntil(600, (t) => sim.hold(t < 200 ? 24 : 8));
    // The stable figure reaches 16.0 (one replica) at 230 s; the last recommendation of 2 was at 229 s.
    assert.equal(sim.at(229).numbers.recommended, 2);
    assert.equal(sim.at(230).numbers.recommended, 1);
    assert.deepEqual(sim.countsAt(41, 229, 230, 529, 530), [2, 2, 2, 2, 1]);
    assert.equal(sim.at(530).reason, 'scale 2→1: in-flight 8.0 over 60 s, target 16');
    assert.equal(sim.changes().length, 2);
  });

  it('prevents flapping: a load swinging across the boundary every minute changes the count once', () => {
    // 26 in flight for a minute, 6 the next: the stable figure swings between 6 and 26, across 16.
    const swing = (sim: Sim) => sim.runUntil(1200, (t) => sim.hold(Math.floor(t / 60) % 2 === 0 ? 26 : 6));
    const damped = new Sim(config());
    swing(damped);
    assert.deepEqual(damped.changes(), [[37, 'scale 1→2: in-flight 16.0 over 60 s, target 16']]);
    const undamped = new Sim(config({ downscale_delay_s: 0 }));
    swing(undamped);
    const times = undamped.changes().map(([t]) => t);
    assert.deepEqual(times, [37, 90, 151, 210, 271, 330, 391, 450, 511, 570, 631, 690, 751, 810, 871, 930, 991, 1050, 1111, 1170]);
  });

  it('respects upscale_delay_s: a higher count applies once it was recommended for that long', () => {
    const sim = new Sim(config({ upscale_delay_s: 30 }));
    sim.runUntil(120, () => sim.hold(24));
    assert.equal(sim.at(41).numbers.recommended, 2); // 16.4 in flight: two replicas' worth from 41 s on
    assert.deepEqual(sim.countsAt(41, 70, 71, 120), [1, 1, 2, 2]);
    assert.equal(sim.at(71).reason, 'scale 1→2: in-flight 24.0 over 60 s, target 16');
  });

  it('counts the upscale delay only over time it watched', () => {
    const state0 = initialAutoscalerState();
    let state = state0;
    const counts: number[] = [];
    for (let s = 0; s <= 30; s++) {
      const d = decideOnce({ ...wants(3), config: config({ upscale_delay_s: 30 }), nowMs: T0 + s * 1000, state });
      state = d.state;
      counts.push(d.desired);
    }
    assert.deepEqual(counts, [...Array<number>(30).fill(1), 3]);
  });

  it('rises only as far as the lowest recommendation of the upscale delay, and says so', () => {
    const c = config({ upscale_delay_s: 10 });
    let state = initialAutoscalerState();
    let current = 1;
    const reasons = new Map<number, string>();
    for (let s = 0; s <= 20; s++) {
      const d = decideOnce({ ...wants(s < 10 ? 3 : 5), config: c, current, nowMs: T0 + s * 1000, state });
      state = d.state;
      current = d.desired;
      if (d.reason) reasons.set(s, d.reason);
    }
    assert.deepEqual([...reasons], [
      [10, 'scale 1→3: in-flight 80.0 over 60 s, target 16, held at 3 by upscale_delay_s 10'],
      [20, 'scale 3→5: in-flight 80.0 over 60 s, target 16'],
    ]);
  });

  it('ignores a rise shorter than upscale_delay_s', () => {
    const c = config({ upscale_delay_s: 10, downscale_delay_s: 0 });
    let state = initialAutoscalerState();
    let current = 1;
    const counts: number[] = [];
    for (let s = 0; s < 40; s++) {
      const want = s >= 20 && s < 28 ? 3 : 1; // 8 s of wanting 3
      const d = decideOnce({ ...wants(want), config: c, current, nowMs: T0 + s * 1000, state });
      state = d.state;
      current = d.desired;
      counts.push(d.desired);
    }
    assert.deepEqual(counts, Array<number>(40).fill(1));
  });
});

describe('decideScale to and from zero', () => {
  it('reaches zero after scale_to_zero_delay_s without activity, and wakes on a request', () => {
    const sim = new Sim(config());
    sim.runUntil(720, (t) => sim.hold(t < 10 ? 1 : t === 700 ? 1 : 0));
    assert.deepEqual(sim.changes(), [
      [610, 'scale 1→0: idle for 600 s'],
      [701, 'scale 0→1: a request arrived'],
    ]);
    assert.deepEqual(sim.countsAt(609, 610, 700, 701, 720), [1, 0, 0, 1, 1]);
  });

  it('does not reach zero while a long stream is in flight, though nothing arrived for an hour', () => {
    const sim = new Sim(config({ scale_to_zero_delay_s: 60 }));
    sim.window.requestStarted();
    sim.runUntil(3600);
    assert.deepEqual(sim.changes(), []);
    assert.equal(sim.at(3600).desired, 1);
    sim.window.requestEnded();
    sim.runUntil(3700);
    assert.deepEqual(sim.changes(), [[3660, 'scale 1→0: idle for 60 s']]);
  });

  it('keeps a replica while activity() is recorded without requests, and wakes on it', () => {
    const sim = new Sim(config({ scale_to_zero_delay_s: 120 }));
    sim.runUntil(1200, (t) => {
      if (t <= 500 && t % 100 === 0) sim.window.activity(); // an async job queued or picked up
      if (t === 1000) sim.window.activity();
    });
    assert.deepEqual(sim.changes(), [
      [620, 'scale 1→0: idle for 120 s'],
      [1001, 'scale 0→1: activity resumed'],
      [1120, 'scale 1→0: idle for 120 s'],
    ]);
    assert.equal(sim.at(619).numbers.idleS, 119);
  });

  it('counts idleness from when autoscaling began when the last request is older', () => {
    const at = (s: number) => decideOnce({ inFlight: 0, lastActivityMs: T0 - 3_600_000, sinceMs: T0, nowMs: T0 + s * 1000 });
    assert.equal(at(599).desired, 1);
    assert.equal(at(600).desired, 0);
    assert.equal(at(600).reason, 'scale 1→0: idle for 600 s');
  });

  it('stays at zero with no new activity, whatever the stable window still averages', () => {
    const seen: AutoscalerState = { ...initialAutoscalerState(), startedMs: T0 - 800_000, seenActivityMs: T0 - 700_000 };
    const d = decideOnce({ current: 0, ...wants(2), inFlight: 0, lastActivityMs: T0 - 700_000, state: seen });
    assert.equal(d.desired, 0);
    assert.equal(d.reason, null);
  });
});

describe('decideScale bounds', () => {
  it('keeps min_workers however idle', () => {
    const sim = new Sim(config({ min_workers: 2 }), { current: 0 });
    sim.runUntil(1000);
    assert.deepEqual(sim.changes(), [[1, 'scale 0→2: in-flight 0.0 over 60 s, target 16, raised to min_workers 2']]);
    assert.equal(sim.at(1000).desired, 2);
  });

  it('stops at max_workers', () => {
    const sim = new Sim(config({ max_workers: 4 }));
    sim.runUntil(100, () => sim.hold(200));
    assert.deepEqual(sim.countsAt(1, 2, 3, 100), [3, 4, 4, 4]);
    assert.equal(sim.at(2).reason, 'scale 3→4: in-flight 66.7 over 6 s (panic), target 16, capped at 4 by max_workers 4');
    assert.deepEqual(sim.at(100).numbers.cap, { by: 'max_workers', limit: 4 });
  });

  it('caps the count by max_hourly_cost_usd over the replica price', () => {
    const cloud = config({ max_hourly_cost_usd: 10, workers: { source: 'cloud', cloud_pool: { gpu_pool: ['NVIDIA L4'] } } });
    const priced = new Sim(cloud, { replicaHourlyCostUsd: 5 });
    priced.runUntil(30, () => priced.hold(200));
    assert.equal(priced.at(1).reason, 'scale 1→2: in-flight 33.3 over 6 s (panic), target 16, capped at 2 by max_hourly_cost_usd 10 (5/replica)');
    assert.equal(priced.at(30).desired, 2);
    // Workers without a price cost nothing: no cost cap, only max_workers.
    const unpriced = new Sim(cloud, { replicaHourlyCostUsd: 0 });
    unpriced.runUntil(30, () => unpriced.hold(200));
    assert.deepEqual(unpriced.countsAt(1, 30), [3, 10]);
  });

  it('takes the lower of the two cost caps', () => {
    const both = (top: number, pool: number) =>
      config({ max_hourly_cost_usd: top, workers: { source: 'cloud', cloud_pool: { gpu_pool: ['NVIDIA L4'], max_hourly_cost_usd: pool } } });
    const poolWins = decideOnce({ ...wants(5), config: both(10, 8), replicaHourlyCostUsd: 2.5 });
    assert.equal(poolWins.desired, 3);
    assert.equal(poolWins.reason, 'scale 1→3: in-flight 80.0 over 60 s, target 16, capped at 3 by cloud_pool.max_hourly_cost_usd 8 (2.5/replica)');
    const topWins = decideOnce({ ...wants(5), config: both(6, 20), replicaHourlyCostUsd: 3 });
    assert.equal(topWins.desired, 2);
    assert.equal(topWins.reason, 'scale 1→2: in-flight 80.0 over 60 s, target 16, capped at 2 by max_hourly_cost_usd 6 (3/replica)');
  });

  it('lets a cost cap beat min_workers, and reach zero when one replica is too dear', () => {
    const c = config({ min_workers: 3, max_hourly_cost_usd: 10 });
    assert.equal(decideOnce({ config: c, current: 3, replicaHourlyCostUsd: 4 }).desired, 2);
    const dear = decideOnce({ config: c, current: 1, replicaHourlyCostUsd: 12 });
    assert.equal(dear.desired, 0);
    assert.equal(dear.reason, 'scale 1→0: in-flight 0.0 over 60 s, target 16, capped at 0 by max_hourly_cost_usd 10 (12/replica)');
  });

  it('stops at cloud_pool.max_instances', () => {
    const c = config({ max_hourly_cost_usd: 100, workers: { source: 'cloud', cloud_pool: { gpu_pool: ['NVIDIA L4'], max_instances: 2 } } });
    const d = decideOnce({ ...wants(5), config: c, replicaHourlyCostUsd: 1 });
    assert.equal(d.desired, 2);
    assert.equal(d.reason, 'scale 1→2: in-flight 80.0 over 60 s, target 16, capped at 2 by max_instances 2');
  });

  it('stops at the number of private workers', () => {
    const c = config({ workers: { source: 'private', private_worker_ids: ['wrk_aaaaaaaa', 'wrk_bbbbbbbb', 'wrk_cccccccc'] } });
    const sim = new Sim(c, { placeable: 3 });
    sim.runUntil(60, () => sim.hold(200));
    assert.deepEqual(sim.countsAt(1, 2, 60), [3, 3, 3]);
    assert.equal(sim.at(1).reason, 'scale 1→3: in-flight 33.3 over 6 s (panic), target 16');
    assert.equal(sim.at(2).numbers.panicDesired, 5);
    assert.deepEqual(sim.at(2).numbers.cap, { by: 'placeable', limit: 3 });
    const two = decideOnce({ ...wants(5), config: c, placeable: 2 });
    assert.equal(two.reason, 'scale 1→2: in-flight 80.0 over 60 s, target 16, capped at 2 by 2 private workers');
  });

  it('still asks for one replica when no eligible worker has room, so the workload waits with an explanation', () => {
    assert.equal(decideOnce({ ...wants(4), placeable: 0 }).desired, 1);
    const d = decideOnce({ ...wants(4), current: 3, placeable: 1, config: config({ downscale_delay_s: 0 }) });
    assert.equal(d.reason, 'scale 3→1: in-flight 64.0 over 60 s, target 16, capped at 1 by room for 1 replica on eligible workers');
  });
});

describe('decideScale on other metrics', () => {
  it('scales on requests per second', () => {
    const sim = new Sim(config({ metric: 'rps', target: 4 }));
    sim.runUntil(200, () => sim.arrive(6)); // 6/s: 1.5 replicas' worth, below the panic threshold
    assert.deepEqual(sim.changes(), [[41, 'scale 1→2: rps 4.1 over 60 s, target 4']]);
    assert.equal(sim.at(200).numbers.stableValue, 6);
  });

  it('scales on a backend metric, and holds the count when its samples stop', () => {
    const c = config({ metric: 'backend', target: 2, backend_metric: 'vllm:num_requests_waiting', min_workers: 1, downscale_delay_s: 0 });
    const stopped = new Sim(c);
    stopped.runUntil(400, (t) => {
      if (t <= 100 && t % 5 === 0) stopped.window.sampleBackend(3);
    });
    assert.deepEqual(stopped.changes(), [[1, 'scale 1→2: vllm:num_requests_waiting 3.0 over 60 s, target 2']]);
    assert.equal(stopped.at(160).numbers.stableValue, 3);
    assert.equal(stopped.at(161).numbers.stableValue, null);
    assert.equal(stopped.at(400).desired, 2);

    // Samples of 0, unlike no samples, let it fall: at 121 s the 60 s window has 8 samples of 3 and 4 of 0.
    const zeroed = new Sim(c);
    zeroed.runUntil(400, (t) => {
      if (t % 5 === 0) zeroed.window.sampleBackend(t <= 100 ? 3 : 0);
    });
    assert.deepEqual(zeroed.changes(), [
      [1, 'scale 1→2: vllm:num_requests_waiting 3.0 over 60 s, target 2'],
      [121, 'scale 2→1: vllm:num_requests_waiting 2.0 over 60 s, target 2'],
    ]);
  });
});

describe('decideScale reasons', () => {
  const cases: Array<[string, Partial<ScaleInput>, string | null]> = [
    ['concurrency', { stable: { ...quiet, concurrency: 41.5 }, panic: { ...quiet, concurrency: 20 } }, 'scale 1→3: in-flight 41.5 over 60 s, target 16'],
    ['rps', { config: config({ metric: 'rps', target: 4 }), stable: { ...quiet, rps: 9.2 }, panic: { ...quiet, rps: 5 } }, 'scale 1→3: rps 9.2 over 60 s, target 4'],
    [
      'backend',
      {
        config: config({ metric: 'backend', target: 2, backend_metric: 'vllm:num_requests_waiting' }),
        stable: { ...quiet, backend: 6 },
        panic: { ...quiet, backend: 2 },
      },
      'scale 1→3: vllm:num_requests_waiting 6.0 over 60 s, target 2',
    ],
    ['panic', { stable: { ...quiet, concurrency: 10 }, panic: { ...quiet, concurrency: 40 } }, 'scale 1→3: in-flight 40.0 over 6 s (panic), target 16'],
    ['unchanged', { stable: { ...quiet, concurrency: 12 }, panic: { ...quiet, concurrency: 12 } }, null],
  ];
  for (const [name, input, reason] of cases) {
    it(`${name}: ${reason ?? 'no change, no reason'}`, () => assert.equal(decideOnce(input).reason, reason));
  }

  it('gives the numbers behind a decision', () => {
    const d = decideOnce({ stable: { ...quiet, concurrency: 41.5 }, panic: { ...quiet, concurrency: 20 } });
    assert.deepEqual(d.numbers, {
      stableValue: 41.5,
      panicValue: 20,
      stableDesired: 3,
      panicDesired: 2,
      recommended: 3,
      upscaleFloor: 3,
      downscaleCeiling: 3,
      idleS: 0,
      cap: null,
    });
  });
});
