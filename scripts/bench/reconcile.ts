// Reconcile passes over 1,000 workloads: the real Reconciler and ReplicaReports on an in-memory store, a sampled fleet,
// and one recording session per worker (the agent end is an edge: it only records what the hub sends).
import { performance } from 'node:perf_hooks';
import { openDatabase } from '../../hub/db/open.ts';
import { createSecretBox } from '../../hub/secret-box.ts';
import { createStore, type Store } from '../../hub/store/index.ts';
import { Reconciler } from '../../hub/control/reconciler.ts';
import { ReplicaReports } from '../../hub/control/replica-reports.ts';
import { AgentSessions, type AgentSession } from '../../hub/tunnel/session.ts';
import { systemClock } from '../../shared/clock.ts';
import type { Gpu, Inventory } from '../../shared/inventory.ts';
import { createLogger } from '../../shared/logger.ts';
import type { HubMessage } from '../../shared/protocol/control.ts';
import { newSecret } from '../../shared/secrets.ts';
import { parseWorkloadSpec, type WorkloadSpec } from '../../shared/spec/workload-spec.ts';
import type { Metric } from './report.ts';
import { median } from './stats.ts';

export const TARGET_STEADY_PASS_MS = 200;
const PROJECTS = ['default', 'team-a', 'team-b'];

const gpuModels: Array<[string, number]> = [
  ['NVIDIA H100 80GB HBM3', 81559],
  ['NVIDIA A100-SXM4-80GB', 81920],
  ['NVIDIA L40S', 46068],
  ['NVIDIA A10G', 23028],
  ['NVIDIA L4', 23034],
];

/** Small models, as most fixed workloads on a shared fleet are: each fits one GPU of any model above. */
const smallModels = [
  'Qwen/Qwen2.5-0.5B-Instruct',
  'Qwen/Qwen2.5-1.5B-Instruct',
  'Qwen/Qwen2.5-3B-Instruct',
  'meta-llama/Llama-3.2-1B-Instruct',
  'meta-llama/Llama-3.2-3B-Instruct',
  'BAAI/bge-large-en-v1.5',
];

export interface ReconcileParams {
  workers: number;
  gpus: number;
  workloads: number;
  passes: number;
  /** Seeded randomness for the fleet and the workload mix. */
  random: () => number;
}

export interface ReconcileFigures {
  metrics: Metric[];
  notes: string[];
}

function pickFrom(random: () => number) {
  return <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
}

/** One box: 8 GPUs of one model, half of them idle, the rest partly used by something outside ikhub. */
function sampledInventory(i: number, gpus: number, random: () => number): Inventory {
  const pick = pickFrom(random);
  const [name, total] = pick(gpuModels);
  const list: Gpu[] = Array.from({ length: gpus }, (_, g) => {
    const used = random() < 0.5 ? 500 : 500 + Math.floor(random() * total * 0.6);
    return {
      index: g,
      uuid: `GPU-${String(i).padStart(8, '0')}-${String(g).padStart(4, '0')}`,
      name,
      memory_total_mib: total,
      memory_used_mib: used,
      memory_free_mib: random() < 0.05 ? null : total - used,
      utilization_pct: Math.floor(random() * 100),
      temperature_c: 35 + Math.floor(random() * 40),
      compute_capability: name.includes('H100') ? '9.0' : name.includes('A100') ? '8.0' : '8.9',
      pci_bus_id: `00000000:${(0x18 + g * 0x10).toString(16).toUpperCase()}:00.0`,
      mig_mode: 'disabled',
      mig_devices: [],
    };
  });
  return {
    host: { hostname: `box-${i}`, os: 'Ubuntu 22.04.4 LTS', arch: 'x64', cpu_cores: 128, memory_total_mib: 1_031_000, disk_free_mib: 1_800_000 },
    runtime: {
      kind: 'docker', docker_version: '27.3.1', nvidia_runtime: true, cdi: false, gpu_mode: 'nvidia',
      images: random() < 0.3 ? ['vllm/vllm-openai:latest'] : [], image_map: {},
    },
    gpu_driver_version: '550.127.05',
    cuda_version: pick(['12.4', '12.8', '13.0']),
    gpu_error: null,
    gpus: list,
  };
}

function workloadSpec(i: number, random: () => number): WorkloadSpec {
  const pick = pickFrom(random);
  const model = pick(smallModels);
  const slug = `wl-${String(i).padStart(5, '0')}`;
  const roll = random();
  const env = random() < 0.3 ? { env: { HF_TOKEN: `hf_bench${String(i).padStart(30, '0')}` } } : {};
  const input =
    roll < 0.15
      ? { slug, model: pick(['qwen2.5:0.5b', 'llama3.2:1b', 'llama3.2:3b']), backend: 'ollama', ...env }
      : roll < 0.3
        ? { slug, model, backend: 'sglang', command: `python3 -m sglang.launch_server --model-path ${model} --mem-fraction-static ${pick(['0.2', '0.3', '0.5'])}`, ...env }
        : { slug, model, backend: 'vllm', command: `vllm serve ${model} --gpu-memory-utilization ${pick(['0.2', '0.3', '0.45', '0.9'])}`, ...env };
  const parsed = parseWorkloadSpec(input);
  if (!parsed.ok) throw new Error(`bench spec ${JSON.stringify(input)} is invalid: ${JSON.stringify(parsed.details)}`);
  return parsed.spec;
}

/** What the recording sessions saw: message counts by type, and the bytes the hub would have put on the sockets. */
class Recorder {
  counts: Record<string, number> = {};
  bytes = 0;

  record(msg: HubMessage): void {
    this.counts[msg.type] = (this.counts[msg.type] ?? 0) + 1;
    // A real session serializes each message for the socket: that cost belongs to the pass.
    this.bytes += JSON.stringify(msg).length;
  }

  take(): { counts: Record<string, number>; bytes: number } {
    const out = { counts: this.counts, bytes: this.bytes };
    this.counts = {};
    this.bytes = 0;
    return out;
  }
}

function buildHub(p: ReconcileParams) {
  const clock = systemClock;
  const store = createStore(openDatabase(':memory:'), clock, createSecretBox(Buffer.alloc(32, 7)));
  const projectIds = PROJECTS.map((slug) => store.projects.ensure(slug, slug).id);
  const sessions = new AgentSessions();
  const recorder = new Recorder();
  const log = createLogger({ level: 'silent', name: 'bench' });
  const pick = pickFrom(p.random);

  const setup0 = performance.now();
  store.transaction(() => {
    for (let i = 0; i < p.workers; i++) {
      const roll = p.random();
      const worker = store.workers.insert({
        name: `box-${String(i).padStart(5, '0')}`,
        projectId: roll < 0.1 ? pick(projectIds) : null,
        labels: {},
        agentVersion: 'bench',
        inventory: sampledInventory(i, p.gpus, p.random),
        credential: newSecret('agent'),
        joinTokenId: null,
      });
      const flags = p.random();
      if (flags < 0.03) store.workers.setFlags(worker.id, { cordoned: true, draining: false });
      else if (flags < 0.04) store.workers.setFlags(worker.id, { cordoned: true, draining: true });
      else if (flags < 0.06) store.workers.setState(worker.id, 'down');
      // The agent end is an edge: a session that records what the hub sends (as the reconciler unit test does).
      sessions.set(worker.id, { send: (m: HubMessage) => (recorder.record(m), true) } as unknown as AgentSession);
    }
    for (let i = 0; i < p.workloads; i++) store.workloads.insert(projectIds[i % projectIds.length]!, workloadSpec(i, p.random));
  });
  const setupMs = performance.now() - setup0;

  const reconciler = new Reconciler({
    store,
    sessions,
    clock,
    log,
    // The hub's defaults (hub/config.ts); the resync timer is not started: the bench runs each pass itself.
    config: { restartBackoffBaseMs: 10_000, placementStrategy: 'spread', resyncMs: 10_000, stopGraceMs: 30_000, degradedAfterMs: 900_000, drainTimeoutMs: 600_000 },
  });
  const reports = new ReplicaReports({ store, sessions, reconciler, clock, log, workerGraceS: 60 });
  return { store, reconciler, reports, recorder, setupMs };
}

async function timedPass(reconciler: Reconciler): Promise<number> {
  const t0 = performance.now();
  reconciler.enqueueAll();
  await reconciler.queue.idle();
  return performance.now() - t0;
}

/** Steady passes are repeated up to `passes` times, but not past this much time per phase (one pass at least). */
const STEADY_PHASE_BUDGET_MS = 5000;

async function steadyPasses(reconciler: Reconciler, recorder: Recorder, passes: number): Promise<{ ms: number[]; sent: number }> {
  const ms: number[] = [];
  let sent = 0;
  const started = performance.now();
  for (let i = 0; i < passes && (i === 0 || performance.now() - started < STEADY_PHASE_BUDGET_MS); i++) {
    ms.push(await timedPass(reconciler));
    sent += Object.values(recorder.take().counts).reduce((a, b) => a + b, 0);
  }
  return { ms, sent };
}

function replicaCounts(store: Store): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of store.replicas.live()) counts[r.state] = (counts[r.state] ?? 0) + 1;
  return counts;
}

function describeCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts);
  return entries.length === 0 ? 'none' : entries.map(([k, v]) => `${v} ${k}`).join(', ');
}

/**
 * Four phases on one hub: the first full pass (creates, places and starts every replica), steady resync passes with
 * the replicas starting, a pass after every replica reported ready, and steady passes with everything ready.
 */
export async function measureReconcile(p: ReconcileParams, schedulerPlacementsPerSecond: number | null): Promise<ReconcileFigures> {
  const { store, reconciler, reports, recorder, setupMs } = buildHub(p);

  const firstMs = await timedPass(reconciler);
  const first = recorder.take();
  const afterFirst = replicaCounts(store);
  const starts = first.counts['replica.start'] ?? 0;

  const steadyStarting = await steadyPasses(reconciler, recorder, p.passes);

  // Every placed replica reports ready, as its agent's replica.status would; the reports queue their workloads.
  const placed = store.replicas.live().filter((r) => r.worker_id !== null);
  const ready0 = performance.now();
  for (const r of placed) {
    reports.onStatus(r.worker_id!, {
      replica_id: r.id, generation: r.generation, state: 'ready', port: 40_000, runtime: 'docker',
      container_id: `c${r.id.slice(4)}`, pid: null, restarts: 0, reason: null,
    });
  }
  const reportsMs = performance.now() - ready0;
  await reconciler.queue.idle();
  const readyMs = performance.now() - ready0;
  const readySent = recorder.take();
  const afterReady = replicaCounts(store);
  const active = store.workloads.list().filter((w) => w.state === 'active').length;

  const steadyReady = await steadyPasses(reconciler, recorder, p.passes);
  reconciler.stop();
  store.db.close();

  const steadyStartingMs = median(steadyStarting.ms);
  const steadyReadyMs = median(steadyReady.ms);
  const firstPerPlacementUs = starts > 0 ? (firstMs * 1000) / starts : null;
  const schedulerPerPlacementUs = schedulerPlacementsPerSecond ? 1e6 / schedulerPlacementsPerSecond : null;
  const range = (ms: number[]) => `median of ${ms.length}; min ${Math.min(...ms).toFixed(0)}, max ${Math.max(...ms).toFixed(0)} ms`;

  const metrics: Metric[] = [
    { name: 'reconcile: first pass (create, place, start)', value: firstMs, unit: 'ms', note: `${starts} replica.start sent; replicas after it: ${describeCounts(afterFirst)}` },
    { name: 'reconcile: first pass, per replica placed', value: firstPerPlacementUs, unit: 'µs', note: 'whole reconcile of a workload: store reads and writes, scheduler, event, start message' },
    {
      name: 'reconcile: first pass per replica ÷ scheduler per placement',
      value: firstPerPlacementUs !== null && schedulerPerPlacementUs !== null ? firstPerPlacementUs / schedulerPerPlacementUs : null,
      unit: '×',
      note: 'context: the scheduler placements/s above',
    },
    {
      name: 'reconcile: steady resync pass, replicas starting',
      value: steadyStartingMs, unit: 'ms', target: { op: '<', value: TARGET_STEADY_PASS_MS },
      note: `${range(steadyStarting.ms)}; ${steadyStarting.sent} messages sent`,
    },
    {
      name: 'reconcile: pass after every replica reported ready',
      value: readyMs, unit: 'ms',
      note: `${placed.length} onStatus calls took ${reportsMs.toFixed(0)} ms of it; ${readySent.counts['replica.start'] ?? 0} replica.start sent; ${active} workloads active; replicas: ${describeCounts(afterReady)}`,
    },
    {
      name: 'reconcile: steady resync pass, all ready',
      value: steadyReadyMs, unit: 'ms', target: { op: '<', value: TARGET_STEADY_PASS_MS },
      note: `${range(steadyReady.ms)}; ${steadyReady.sent} messages sent`,
    },
    { name: 'reconcile: steady pass, per workload (all ready)', value: steadyReadyMs === null ? null : (steadyReadyMs * 1000) / p.workloads, unit: 'µs' },
  ];
  const notes = [
    `reconcile: the hub's Reconciler and ReplicaReports on an in-memory SQLite store (built in ${(setupMs / 1000).toFixed(1)} s), the system clock, hub default config; ${p.workers} workers × ${p.gpus} GPUs (5 GPU models, half the GPUs partly used outside ikhub, 5% with no measured free memory, ~3% cordoned, ~1% draining, ~2% down, ~10% private to one of ${PROJECTS.length} projects); ${p.workloads} fixed workloads of 1 replica (vLLM, SGLang, Ollama; models of 0.5B–3B; 30% with a sealed env)`,
    'reconcile: one recording session per worker stands in for the agent; it serializes each message as a socket would (first pass: ' +
      `${(first.bytes / 2 ** 20).toFixed(1)} MiB of replica.start) and answers nothing back`,
    'reconcile: a pass is enqueueAll() then queue.idle(), as the periodic resync does; a steady pass changes nothing',
  ];
  return { metrics, notes };
}
