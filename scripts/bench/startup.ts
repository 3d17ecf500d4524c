// Benchmark: from ensure() to a ready replica with the simulator at startup 0, per runtime (process, docker), against
// the simulator's own start time to /health 200 measured in the same run; the difference is the hub's and agent's overhead.
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { listOf, replicaViewSchema, workerViewSchema } from '../../shared/api.ts';
import { intFlag, parseCommandArgs, UsageError } from '../../shared/cli-args.ts';
import { deadline } from '../../shared/abort.ts';
import { eventViewSchema } from '../../hub/api/events.ts';
import { BenchAgent, SIM_IMAGE_MAP, SIM_PROCESS_MAP } from './agent-process.ts';
import { containersLabelled, dockerUnavailable, ensureSimImage, removeContainersLabelled } from './docker.ts';
import { BenchHub } from './hub-process.ts';
import type { BenchReport, Metric } from './report.ts';
import { BASELINE_LABEL, POLL_EVERY_MS, simContainerToHealthy, simProcessToHealthy } from './sim-baseline.ts';
import { median, percentile } from './stats.ts';

export const description = 'ensure() → ready replica with the simulator at startup 0, per runtime, against the simulator\'s own start';

export const USAGE = `usage: npm run bench -- startup [--runs N] [--warmup W] [--runtimes LIST] [--settle-ms MS]
  --runs N          timed iterations per runtime (default 10)
  --warmup W        untimed iterations per runtime first (default 1)
  --runtimes LIST   comma-separated, of process and docker (default process,docker; docker needs an engine)
  --settle-ms MS    pause after a replica is gone, before the next run (default 0; 1100 outlasts the hub's
                    1 s fleet cache, so a run never waits on the booking of the replica deleted just before)`;

const options = {
  runs: { type: 'string' },
  warmup: { type: 'string' },
  runtimes: { type: 'string' },
  'settle-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const runtimes = ['process', 'docker'] as const;
type Runtime = (typeof runtimes)[number];

const MODEL = 'Qwen/Qwen2.5-0.5B-Instruct';
const TARGET_OVERHEAD_MS = 1500;
const REQUEST_TIMEOUT_MS = 10_000;
const READY_LIMIT_MS = 30_000;
const GONE_LIMIT_MS = 30_000;
const WORKER_LIMIT_MS = 30_000;
/**
 * The hub's timers, shorter than its defaults (heartbeat 5 s, resync 10 s); neither is on the ensure → ready path (the
 * PUT queues the workload at once, the agent reports each state change at once), they only repair lost messages sooner.
 */
const HUB_ENV = { IK_HEARTBEAT_INTERVAL_MS: '1000', IK_RESYNC_MS: '1000' };

interface Params {
  runs: number;
  warmup: number;
  runtimes: Runtime[];
  settleMs: number;
}

function parseParams(argv: string[]): Params | 'help' {
  const { values } = parseCommandArgs('npm run bench -- startup', argv, options);
  if (values.help) return 'help';
  const listed = (values.runtimes ?? runtimes.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = listed.filter((r) => !(runtimes as readonly string[]).includes(r));
  if (unknown.length > 0 || listed.length === 0) throw new UsageError(`--runtimes takes process and/or docker, got "${values.runtimes}"`);
  return {
    runs: intFlag('runs', values.runs, 1, 100) ?? 10,
    warmup: intFlag('warmup', values.warmup, 0, 10) ?? 1,
    runtimes: runtimes.filter((r) => listed.includes(r)),
    settleMs: intFlag('settle-ms', values['settle-ms'], 0, 10_000) ?? 0,
  };
}

/** One timed ensure: when the PUT was answered, when the events say the replica was placed and ready, when we saw it. */
interface EnsureRun {
  ensureMs: number;
  putMs: number;
  placedMs: number | null;
  readyEventMs: number | null;
  /** How long GET showed the replica pending with an explanation (a placement that did not fit at once). */
  pendingMs: number;
  pendingWhy: string | null;
  deleteMs: number;
}

interface RuntimeResult {
  runtime: Runtime;
  /** Why it was not measured, or null. */
  skipped: string | null;
  baselineMs: number[];
  runs: EnsureRun[];
}

export async function run(argv: string[]): Promise<BenchReport | undefined> {
  const parsed = parseParams(argv);
  if (parsed === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return undefined;
  }
  const p = parsed;
  const limitMs = 45_000 + (p.runs + p.warmup) * p.runtimes.length * (5_000 + p.settleMs);
  const timeout = deadline(limitMs);
  const hub = new BenchHub();
  const agents = new Map<Runtime, BenchAgent>();
  try {
    return await measure(p, hub, agents, timeout.signal);
  } catch (err) {
    const error = timeout.signal.aborted ? new Error(`the startup benchmark ran past its limit of ${Math.round(limitMs / 1000)} s`) : err;
    if (error instanceof Error) {
      const tails = [`hub:\n${hub.logTail(15)}`, ...[...agents].map(([rt, a]) => `agent (${rt}):\n${a.logTail(15)}`)];
      error.message += `\n--- last log lines ---\n${tails.join('\n')}`;
    }
    throw error;
  } finally {
    timeout.clear();
    await Promise.all([...agents.values()].map((a) => a.stop()));
    if (p.runtimes.includes('docker') && dockerUnavailable() === null) await removeContainersLabelled(BASELINE_LABEL);
    await hub.stop();
  }
}

async function measure(p: Params, hub: BenchHub, agents: Map<Runtime, BenchAgent>, signal: AbortSignal): Promise<BenchReport> {
  const notes: string[] = [];
  const skipped = new Map<Runtime, string>();
  if (p.runtimes.includes('docker')) {
    const why = dockerUnavailable();
    if (why) {
      skipped.set('docker', `${why}: start a Docker engine (dockerd), then run \`npm run bench -- startup\` again; the image ik-sim:dev is built by scripts/build-sim-image.sh when missing`);
    } else if (ensureSimImage()) {
      notes.push('built ik-sim:dev with scripts/build-sim-image.sh first (it was missing)');
    }
  }

  await hub.start({ env: HUB_ENV });
  const agentEnv: Record<Runtime, Record<string, string>> = {
    process: { IK_RUNTIME: 'process', IK_PROCESS_MAP: SIM_PROCESS_MAP },
    docker: { IK_RUNTIME: 'docker', IK_DOCKER_GPU_MODE: 'none', IK_IMAGE_MAP: SIM_IMAGE_MAP },
  };
  for (const rt of p.runtimes) {
    if (skipped.has(rt)) continue;
    const agent = new BenchAgent(`bench-${rt}`);
    agents.set(rt, agent);
    agent.start(hub.url, hub.joinToken, agentEnv[rt]);
  }
  for (const [rt, agent] of agents) agent.workerId = await waitForWorker(hub, agent, rt, signal);

  const results: RuntimeResult[] = [];
  for (const rt of p.runtimes) {
    const agent = agents.get(rt);
    if (!agent) {
      results.push({ runtime: rt, skipped: skipped.get(rt) ?? 'not started', baselineMs: [], runs: [] });
      continue;
    }
    results.push(await measureRuntime(rt, p, hub, agent, signal));
  }

  const metrics = results.flatMap(runtimeMetrics);
  for (const r of results) {
    if (r.skipped) notes.push(`${r.runtime}: not measured: ${r.skipped}`);
    const pending = r.runs.filter((x) => x.pendingMs > 0);
    if (pending.length > 0) {
      notes.push(
        `${r.runtime}: ${pending.length} of ${r.runs.length} runs waited pending (up to ${Math.max(...pending.map((x) => x.pendingMs)).toFixed(0)} ms) although the replica before had been stopped; ` +
          `the hub said: ${pending[0]!.pendingWhy}`,
      );
    }
  }
  notes.push(
    `each run: PUT a fixed vLLM workload (${MODEL}, worker_id pinned to that runtime's worker, env IK_SIM_STARTUP_MS=0), GET it every ~${POLL_EVERY_MS} ms until its replica is ready; then DELETE it and wait until the replica is gone (process or container included)${p.settleMs > 0 ? `, then ${p.settleMs} ms more` : ''}; ${p.warmup} untimed warm-up run(s) per runtime first`,
    `baseline, alternating with the runs: process: scripts/ik-sim vllm serve … spawned directly; docker: \`docker run --rm -d --network host ik-sim:dev vllm serve …\` (the docker CLI's own start is in it); both polled on /health every ~${POLL_EVERY_MS} ms until 200`,
    'overhead = ensure → ready − the baseline median: the hub (API, reconcile, placement, tunnel), the agent (launch, readiness probes, report) and the GET polling',
    'breakdown from the hub\'s events (GET /api/v1/events?workload=…, millisecond timestamps on the same clock as the bench): PUT → replica.placed → replica.ready → the first GET that shows ready',
    `hub: IK_HEARTBEAT_INTERVAL_MS=${HUB_ENV.IK_HEARTBEAT_INTERVAL_MS}, IK_RESYNC_MS=${HUB_ENV.IK_RESYNC_MS}, other settings default; agents: fake nvidia-smi h100-x2, docker with IK_DOCKER_GPU_MODE=none and IK_IMAGE_MAP → ik-sim:dev, process with IK_PROCESS_MAP → scripts/ik-sim`,
  );
  if (Object.keys(hub.problems).length > 0) notes.push(`hub warnings: ${JSON.stringify(hub.problems)}`);
  return {
    name: 'startup',
    title: description,
    params: { runs: p.runs, warmup: p.warmup, runtimes: p.runtimes.join(','), settle_ms: p.settleMs, model: MODEL, poll_ms: POLL_EVERY_MS, ...HUB_ENV },
    metrics,
    notes,
  };
}

function runtimeMetrics(r: RuntimeResult): Metric[] {
  const rt = r.runtime;
  const baseline = median(r.baselineMs);
  const ensure = r.runs.map((x) => x.ensureMs);
  const overhead = baseline === null ? [] : ensure.map((ms) => ms - baseline);
  const ensureMedian = median(ensure);
  const stage = (f: (x: EnsureRun) => number | null) => median(r.runs.map(f).filter((v): v is number => v !== null));
  const placedToReady = stage((x) => (x.placedMs !== null && x.readyEventMs !== null ? x.readyEventMs - x.placedMs : null));
  const n = r.skipped ? 'not measured' : `${r.runs.length} runs`;
  const pending = r.runs.filter((x) => x.pendingMs > 0);
  const atOnce = baseline === null ? [] : r.runs.filter((x) => x.pendingMs === 0).map((x) => x.ensureMs - baseline);
  return [
    { name: `${rt}: ensure → ready, median`, value: ensureMedian, unit: 'ms', note: n },
    { name: `${rt}: ensure → ready, p90`, value: percentile(ensure, 0.9), unit: 'ms' },
    { name: `${rt}: baseline (simulator start → /health 200), median`, value: baseline, unit: 'ms', note: rt === 'docker' ? 'docker run -d … until /health 200' : 'spawn scripts/ik-sim … until /health 200' },
    { name: `${rt}: baseline, p90`, value: percentile(r.baselineMs, 0.9), unit: 'ms' },
    { name: `${rt}: hub + agent overhead, median`, value: median(overhead), unit: 'ms', target: { op: '<', value: TARGET_OVERHEAD_MS }, note: 'ensure → ready − baseline median' },
    { name: `${rt}: hub + agent overhead, p90`, value: percentile(overhead, 0.9), unit: 'ms' },
    {
      name: `${rt}: runs that waited pending`, value: r.skipped ? null : pending.length, unit: '', target: { op: '=', value: 0 },
      note: r.skipped ? 'not measured' : pending.length > 0 ? `the worker's idle GPU did not fit: up to ${Math.max(...pending.map((x) => x.pendingMs)).toFixed(0)} ms pending (see notes)` : 'placed at once every time',
    },
    { name: `${rt}: hub + agent overhead, median of runs placed at once`, value: median(atOnce), unit: 'ms', note: `${atOnce.length} runs` },
    { name: `${rt}: ensure → ready ÷ baseline (medians)`, value: ensureMedian !== null && baseline ? ensureMedian / baseline : null, unit: '×' },
    { name: `${rt}:   PUT answered`, value: stage((x) => x.putMs), unit: 'ms', note: 'median; ensure() itself' },
    { name: `${rt}:   PUT → replica.placed`, value: stage((x) => x.placedMs), unit: 'ms', note: 'median; hub: API, reconcile, placement' },
    {
      name: `${rt}:   replica.placed → replica.ready`, value: placedToReady, unit: 'ms',
      note: `median; tunnel, agent launch, simulator start, readiness probes, report${placedToReady !== null && baseline !== null ? ` (${(placedToReady - baseline).toFixed(0)} ms more than the baseline)` : ''}`,
    },
    { name: `${rt}:   replica.ready → GET shows ready`, value: stage((x) => (x.readyEventMs !== null ? x.ensureMs - x.readyEventMs : null)), unit: 'ms', note: `median; the ~${POLL_EVERY_MS} ms polling` },
    { name: `${rt}: DELETE → replica gone`, value: median(r.runs.map((x) => x.deleteMs)), unit: 'ms', note: 'median; context, not part of the figure' },
  ];
}

async function measureRuntime(rt: Runtime, p: Params, hub: BenchHub, agent: BenchAgent, signal: AbortSignal): Promise<RuntimeResult> {
  const result: RuntimeResult = { runtime: rt, skipped: null, baselineMs: [], runs: [] };
  for (let i = -p.warmup; i < p.runs; i++) {
    // The baseline and the ensure alternate, so both see the same machine at the same moment.
    const baseline = rt === 'process' ? await simProcessToHealthy(MODEL, signal) : await simContainerToHealthy(MODEL, signal);
    const slug = `startup-${rt}-${i < 0 ? `warmup${-i}` : String(i + 1)}`;
    const timed = await ensureToReady(hub, slug, agent.workerId, signal);
    const deleteMs = await deleteUntilGone(hub, slug, rt, agent, signal);
    if (p.settleMs > 0) await sleep(p.settleMs, undefined, { signal });
    if (agent.exited) throw new Error(`the ${rt} agent exited during the benchmark`);
    if (i < 0) continue;
    result.baselineMs.push(baseline);
    result.runs.push({ ...timed, deleteMs });
  }
  return result;
}

const workloadStatusSchema = z.object({ placement: z.string().nullable(), replicas: z.array(replicaViewSchema) });
const workersSchema = listOf(workerViewSchema);
const eventsSchema = listOf(eventViewSchema);

async function api(hub: BenchHub, method: string, path: string, signal: AbortSignal, body?: unknown): Promise<{ status: number; body: unknown }> {
  const limit = deadline(REQUEST_TIMEOUT_MS, signal);
  try {
    const res = await fetch(`${hub.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${hub.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: limit.signal,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  } finally {
    limit.clear();
  }
}

function expectStatus(what: string, res: { status: number; body: unknown }, ...ok: number[]): void {
  if (!ok.includes(res.status)) throw new Error(`${what} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 500)}`);
}

async function waitForWorker(hub: BenchHub, agent: BenchAgent, rt: Runtime, signal: AbortSignal): Promise<string> {
  const until = performance.now() + WORKER_LIMIT_MS;
  for (;;) {
    if (agent.exited) throw new Error(`the ${rt} agent exited before it registered`);
    const res = await api(hub, 'GET', '/api/v1/workers', signal);
    expectStatus('GET /api/v1/workers', res, 200);
    const worker = workersSchema.parse(res.body).items.find((w) => w.name === agent.name && w.state === 'ready');
    if (worker) {
      if (worker.runtime.kind !== rt) throw new Error(`agent ${agent.name} reports runtime ${worker.runtime.kind}, expected ${rt}`);
      return worker.id;
    }
    if (performance.now() > until) throw new Error(`the ${rt} agent was not a ready worker within ${WORKER_LIMIT_MS / 1000} s`);
    await sleep(100, undefined, { signal });
  }
}

async function ensureToReady(hub: BenchHub, slug: string, workerId: string, signal: AbortSignal): Promise<Omit<EnsureRun, 'deleteMs'>> {
  const path = `/api/v1/projects/default/workloads/${slug}`;
  const spec = { slug, model: MODEL, backend: 'vllm', command: `vllm serve ${MODEL}`, worker_id: workerId, env: { IK_SIM_STARTUP_MS: '0' } };
  const wallStart = Date.now();
  const started = performance.now();
  const put = await api(hub, 'PUT', path, signal, spec);
  const putMs = performance.now() - started;
  expectStatus(`PUT ${path}`, put, 201);

  let pendingSince: number | null = null;
  let pendingMs = 0;
  let pendingWhy: string | null = null;
  let ensureMs: number | undefined;
  while (ensureMs === undefined) {
    const polled = performance.now();
    const res = await api(hub, 'GET', path, signal);
    expectStatus(`GET ${path}`, res, 200);
    const w = workloadStatusSchema.parse(res.body);
    const replica = w.replicas[0];
    if (replica?.state === 'ready') {
      ensureMs = performance.now() - started;
      break;
    }
    if (replica?.state === 'failed') throw new Error(`the replica of ${slug} failed: ${replica.last_error}`);
    if (w.placement !== null) {
      pendingSince ??= polled;
      pendingWhy = w.placement;
    } else if (pendingSince !== null) {
      pendingMs += polled - pendingSince;
      pendingSince = null;
    }
    if (polled - started > READY_LIMIT_MS) throw new Error(`${slug} had no ready replica within ${READY_LIMIT_MS / 1000} s (replicas: ${JSON.stringify(w.replicas.map((r) => r.state))}; placement: ${w.placement})`);
    await sleep(Math.max(0, POLL_EVERY_MS - (performance.now() - polled)), undefined, { signal });
  }
  if (pendingSince !== null) pendingMs += started + ensureMs - pendingSince;

  const events = await api(hub, 'GET', `/api/v1/events?workload=${slug}&limit=50`, signal);
  expectStatus('GET /api/v1/events', events, 200);
  const items = eventsSchema.parse(events.body).items;
  const at = (kind: string) => {
    const e = items.find((x) => x.kind === kind);
    return e ? Date.parse(e.at) - wallStart : null;
  };
  return { ensureMs, putMs, placedMs: at('replica.placed'), readyEventMs: at('replica.ready'), pendingMs, pendingWhy };
}

/** DELETE, then wait until the worker lists no replica and the replica's process or container is gone. */
async function deleteUntilGone(hub: BenchHub, slug: string, rt: Runtime, agent: BenchAgent, signal: AbortSignal): Promise<number> {
  const started = performance.now();
  const del = await api(hub, 'DELETE', `/api/v1/projects/default/workloads/${slug}`, signal);
  expectStatus(`DELETE ${slug}`, del, 204);
  for (;;) {
    const res = await api(hub, 'GET', `/api/v1/workers/${agent.workerId}`, signal);
    expectStatus('GET worker', res, 200);
    const listed = workerViewSchema.parse(res.body).replicas.length;
    const running = rt === 'process' ? agent.recordedReplicas().length : listed === 0 ? (await containersLabelled(`ik.worker=${agent.workerId}`)).length : 1;
    if (listed === 0 && running === 0) return performance.now() - started;
    if (performance.now() - started > GONE_LIMIT_MS) {
      throw new Error(`the replica of ${slug} was not gone ${GONE_LIMIT_MS / 1000} s after DELETE (${listed} listed on the worker, ${running} still running)`);
    }
    await sleep(20, undefined, { signal });
  }
}
