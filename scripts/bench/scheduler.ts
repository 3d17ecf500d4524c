// Benchmark: scheduler decisions per second — N placements over a fleet of W workers with G GPUs each, against a first-fit baseline.
import { performance } from 'node:perf_hooks';
import { intFlag, parseCommandArgs } from '../../shared/cli-args.ts';
import type { Gpu } from '../../shared/inventory.ts';
import { parseWorkloadSpec, type WorkloadSpec } from '../../shared/spec/workload-spec.ts';
import { place, type PlacementRequest, type SchedulerWorker } from '../../hub/control/scheduler.ts';
import { estimateVram } from '../../hub/control/vram.ts';
import type { BenchReport, Metric } from './report.ts';
import { measureReconcile } from './reconcile.ts';

export const description = 'scheduler: placements per second over a simulated fleet, against a first-fit baseline; reconcile passes over 1,000 workloads';

export const USAGE = `usage: npm run bench -- scheduler [--placements N] [--workers W] [--gpus G] [--seed S] [--workloads N] [--passes K]
  --placements N  placements to time (default 10000)
  --workers W     workers in the snapshot, and in the reconciler's store (default 1000)
  --gpus G        GPUs per worker (default 8)
  --seed S        seed of the simulated fleet and request mix (default 1)
  --workloads N   fixed workloads of 1 replica for the reconcile passes (default 1000; 0 skips them)
  --passes K      steady resync passes to time, each phase (default 5; the median is reported)`;

const options = {
  placements: { type: 'string' },
  workers: { type: 'string' },
  gpus: { type: 'string' },
  seed: { type: 'string' },
  workloads: { type: 'string' },
  passes: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const TARGET_TOTAL_MS = 1000;
const PROJECTS = ['prj_a', 'prj_b', 'prj_c'];

/** mulberry32: a small seeded PRNG, so every run simulates the same fleet. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const gpuModels: Array<[string, number]> = [
  ['NVIDIA H100 80GB HBM3', 81559],
  ['NVIDIA A100-SXM4-80GB', 81920],
  ['NVIDIA L40S', 46068],
  ['NVIDIA A10G', 23028],
  ['NVIDIA L4', 23034],
];

function workerId(i: number): string {
  return `wrk_${String(i).padStart(8, '0')}`;
}

function simulateFleet(count: number, gpusPerWorker: number, random: () => number): SchedulerWorker[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  return Array.from({ length: count }, (_, i) => {
    const [name, total] = pick(gpuModels);
    const booked: Record<string, number> = {};
    const gpus: Gpu[] = Array.from({ length: gpusPerWorker }, (_, g) => {
      const uuid = `GPU-${i}-${g}`;
      const used = random() < 0.5 ? 0 : Math.floor(random() * total);
      if (used > 0 && random() < 0.8) booked[uuid] = used;
      return {
        index: g, uuid, name, memory_total_mib: total, memory_used_mib: used,
        memory_free_mib: random() < 0.05 ? null : Math.max(0, total - used - Math.floor(random() * 2048)),
        utilization_pct: 0, temperature_c: 40, compute_capability: '9.0', pci_bus_id: null, mig_mode: 'disabled', mig_devices: [],
      };
    });
    const roll = random();
    return {
      id: workerId(i),
      name: `box-${i}`,
      project_id: random() < 0.1 ? pick(PROJECTS) : null,
      state: roll < 0.03 ? 'down' : roll < 0.05 ? 'disconnected' : 'ready',
      cordoned: random() < 0.05,
      draining: random() < 0.02,
      runtime: { kind: 'docker', docker_version: '28.2.2', nvidia_runtime: true, cdi: false, gpu_mode: 'nvidia', images: [], image_map: {} },
      gpu_mode: 'nvidia',
      cuda_version: pick(['12.4', '12.8', '12.9', '13.0']),
      gpu_error: null,
      gpus,
      images: random() < 0.3 ? ['vllm/vllm-openai:v0.6.3', 'ollama/ollama:latest'] : ['lmsysorg/sglang:latest'],
      image_map: {},
      booked_mib: booked,
      replicas: Math.floor(random() * 20),
      gpu_hourly_cost_usd: random() < 0.2 ? null : 1 + Math.floor(random() * 30) / 10,
    } satisfies SchedulerWorker;
  });
}

function spec(input: Record<string, unknown>): WorkloadSpec {
  const parsed = parseWorkloadSpec(input);
  if (!parsed.ok) throw new Error(`bench spec ${JSON.stringify(input)} is invalid: ${JSON.stringify(parsed.details)}`);
  return parsed.spec;
}

/** A mix of workloads: small and large, every backend, pools and CUDA filters, and one that fits nowhere. */
function requestMix(): WorkloadSpec[] {
  const vllm = (slug: string, model: string, flags = '', extra: Record<string, unknown> = {}) =>
    spec({ slug, model, backend: 'vllm', command: `vllm serve ${model} ${flags}`.trim(), ...extra });
  return [
    vllm('llama-8b', 'meta-llama/Llama-3.1-8B-Instruct', '--max-model-len 8192', { vllm_version: '0.6.3' }),
    vllm('qwen-small', 'Qwen/Qwen2.5-0.5B-Instruct', '--gpu-memory-utilization 0.3'),
    vllm('llama-70b', 'meta-llama/Llama-3.1-70B-Instruct', '--tensor-parallel-size 4'),
    vllm('embed', 'BAAI/bge-large-en-v1.5', '--gpu-memory-utilization 0.2', { task_type: 'embedding' }),
    spec({ slug: 'sglang-7b', model: 'Qwen/Qwen2.5-7B-Instruct', backend: 'sglang', command: 'python3 -m sglang.launch_server --model-path Qwen/Qwen2.5-7B-Instruct --mem-fraction-static 0.5' }),
    spec({ slug: 'ollama-8b', model: 'llama3.1:8b', backend: 'ollama' }),
    vllm('h100-pool', 'meta-llama/Llama-3.1-8B-Instruct', '--gpu-memory-utilization 0.5', {
      vllm_version: '0.9.2',
      execution_policy: 'autoscaling',
      execution_policy_config: {
        min_workers: 0, max_workers: 4, max_hourly_cost_usd: 20,
        workers: { source: 'cloud', cloud_pool: { gpu_pool: ['NVIDIA H100 80GB HBM3'], allowed_cuda_versions: ['12.8'] } },
      },
    }),
    vllm('llama-405b', 'meta-llama/Llama-3.1-405B-Instruct', '--tensor-parallel-size 8'),
  ];
}

/** The baseline: first fit of a per-request MiB need over a prebuilt array of free MiB per GPU (no rules, no ranking). */
function firstFit(free: Float64Array, perWorker: number, need: number): number {
  for (let i = 0; i < free.length; i++) if (free[i]! >= need) return Math.floor(i / perWorker);
  return -1;
}

function freeArray(workers: SchedulerWorker[], perWorker: number): Float64Array {
  const free = new Float64Array(workers.length * perWorker).fill(-1);
  workers.forEach((w, i) => {
    if (w.state !== 'ready' || w.cordoned || w.draining) return;
    w.gpus.forEach((g, j) => {
      const booked = (g.memory_total_mib ?? 0) - (w.booked_mib[g.uuid] ?? 0);
      free[i * perWorker + j] = g.memory_free_mib === null ? booked : Math.min(booked, g.memory_free_mib);
    });
  });
  return free;
}

export async function run(argv: string[]): Promise<BenchReport | undefined> {
  const { values } = parseCommandArgs('npm run bench -- scheduler', argv, options);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return undefined;
  }
  const p = {
    placements: intFlag('placements', values.placements, 1, 10_000_000) ?? 10_000,
    workers: intFlag('workers', values.workers, 0, 100_000) ?? 1000,
    gpus: intFlag('gpus', values.gpus, 1, 64) ?? 8,
    seed: intFlag('seed', values.seed, 0) ?? 1,
    workloads: intFlag('workloads', values.workloads, 0, 100_000) ?? 1000,
    passes: intFlag('passes', values.passes, 1, 100) ?? 5,
  };
  const random = rng(p.seed);
  const fleet = simulateFleet(p.workers, p.gpus, random);
  const specs = requestMix();
  // As the reconciler does: one VRAM estimate per workload, passed with each of its placements.
  const t0 = performance.now();
  const estimates = specs.map((s) => estimateVram(s));
  const estimateMs = performance.now() - t0;
  const requests: PlacementRequest[] = Array.from({ length: p.placements }, (_, i) => {
    const k = i % specs.length;
    const spread: Record<string, number> = {};
    for (let j = 0; j < 3; j++) spread[workerId(Math.floor(random() * p.workers))] = 1 + j;
    return { project_id: PROJECTS[i % PROJECTS.length]!, spec: specs[k]!, estimate: estimates[k], workload_replicas: spread, strategy: i % 4 === 3 ? 'binpack' : 'spread' };
  });
  const needs = requests.map((r) => Math.ceil((r.estimate?.need_gib_per_gpu ?? 20) * 1024));
  const free = freeArray(fleet, p.gpus);

  // Warm both paths up so the JIT has compiled them before the clock runs.
  for (let i = 0; i < Math.min(1000, requests.length); i++) {
    place(requests[i]!, fleet);
    firstFit(free, p.gpus, needs[i]!);
  }

  let placed = 0;
  let explained = 0;
  const cpu0 = process.cpuUsage();
  const t1 = performance.now();
  for (const r of requests) {
    if (place(r, fleet).ok) placed++;
    else explained++;
  }
  const schedulerMs = performance.now() - t1;
  const cpu = process.cpuUsage(cpu0);
  const schedulerCpuMs = (cpu.user + cpu.system) / 1000;

  let baselineFound = 0;
  const t2 = performance.now();
  for (let i = 0; i < requests.length; i++) if (firstFit(free, p.gpus, needs[i]!) >= 0) baselineFound++;
  const baselineMs = performance.now() - t2;

  // The no-fit path alone: it visits every worker and writes the explanation.
  const noFit = requests.filter((r) => r.spec.slug === 'llama-405b').slice(0, 200);
  const t3 = performance.now();
  for (const r of noFit) place(r, fleet);
  const noFitMs = noFit.length > 0 ? (performance.now() - t3) / noFit.length : null;

  const perSecond = (n: number, ms: number) => (ms > 0 ? Math.round((n / ms) * 1000) : null);
  const metrics: Metric[] = [
    { name: 'scheduler: total for all placements', value: schedulerMs, unit: 'ms', target: { op: '<', value: TARGET_TOTAL_MS } },
    { name: 'scheduler: CPU time for all placements', value: schedulerCpuMs, unit: 'ms', note: 'process.cpuUsage, less sensitive to a busy machine' },
    { name: 'scheduler: placements per second', value: perSecond(p.placements, schedulerMs), unit: '/s' },
    { name: 'scheduler: mean per placement', value: (schedulerMs * 1000) / p.placements, unit: 'µs' },
    { name: 'placed / explained (no fit)', value: placed, unit: '', note: `${explained} explained` },
    { name: 'no-fit placement (all workers + explanation)', value: noFitMs === null ? null : noFitMs * 1000, unit: 'µs', note: `mean of ${noFit.length}` },
    { name: 'baseline first-fit: total', value: baselineMs, unit: 'ms', note: `${baselineFound} found; prebuilt Float64Array of free MiB` },
    { name: 'baseline first-fit: placements per second', value: perSecond(p.placements, baselineMs), unit: '/s' },
    { name: 'scheduler time ÷ baseline time', value: baselineMs > 0 ? schedulerMs / baselineMs : null, unit: '×' },
    { name: 'VRAM estimate, per workload', value: (estimateMs * 1000) / specs.length, unit: 'µs', note: 'once per workload, not per placement (first calls, not warmed up)' },
  ];
  const reconcile =
    p.workloads > 0 && p.workers > 0
      ? await measureReconcile({ workers: p.workers, gpus: p.gpus, workloads: p.workloads, passes: p.passes, random: rng(p.seed + 1) }, perSecond(p.placements, schedulerMs))
      : { metrics: [], notes: [] };
  metrics.push(...reconcile.metrics);
  return {
    name: 'scheduler',
    title: description,
    params: { placements: p.placements, workers: p.workers, gpus_per_worker: p.gpus, seed: p.seed, request_mix: specs.map((s) => s.slug).join(','), workloads: p.workloads, passes: p.passes },
    metrics,
    notes: [
      'each placement runs the whole pure scheduler: every feasibility filter, best-fit GPUs, ranking, and the explanation with every worker\'s reason when nothing fits; the VRAM estimate is made once per workload and passed in, as the reconciler does',
      'fleet: 5 GPU models, ~5% down or disconnected, ~5% cordoned, ~2% draining, ~10% private to one of 3 projects, 5% of GPUs with no measured free memory',
      'the baseline knows no rules (projects, pools, CUDA, MIG, tensor parallelism) and ranks nothing: it bounds how fast a scan of the same fleet can be',
      ...reconcile.notes,
    ],
  };
}
