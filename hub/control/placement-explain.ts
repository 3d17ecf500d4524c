// The scheduler's words: each rejection reason, and the plain-language explanation a pending workload shows (DESIGN §7.4).
import type { UnitScan } from './gpu-fit.ts';
import type { SchedulerWorker } from './scheduler.ts';
import type { VramEstimate } from './vram.ts';

/** Why a worker cannot take a replica; one code per feasibility filter, in the order the filters run. */
export const rejectionCodes = [
  'not_ready', // state disconnected or down
  'cordoned',
  'draining',
  'other_project', // a private worker of another project
  'not_shared_pool', // this project's private worker, but workers.source is cloud
  'not_pinned', // worker_id pins the workload elsewhere
  'not_listed', // not in workers.private_worker_ids
  'not_registered', // a pinned or listed worker id that no worker has
  'no_gpus', // nvidia-smi failed (gpu_error) or the box has no GPU
  'gpu_pool', // none of its GPUs is named in gpu_pool
  'cuda_not_allowed', // driver CUDA not admitted by allowed_cuda_versions
  'cuda_too_old', // driver CUDA below the backend image's minimum
  'no_gpu_runtime', // Docker cannot give GPUs to containers
  'not_enough_gpus', // fewer GPUs than tp × pp × dp
  'model_too_large', // the estimate exceeds what the engine may claim of any GPU
  'vram', // not enough free memory (book-kept and measured)
] as const;
export type RejectionCode = (typeof rejectionCodes)[number];

const codeIndex: ReadonlyMap<RejectionCode, number> = new Map(rejectionCodes.map((c, i) => [c, i]));

/** Codes that say the worker is not this workload's to use at all; the explanation leaves those workers out. */
export const selectionCodes: ReadonlySet<RejectionCode> = new Set<RejectionCode>(['other_project', 'not_pinned', 'not_listed']);

/** Short labels for the count of workers beyond the named ones ("and 990 more workers (700 too little free VRAM, …)"). */
const codeLabels: Record<RejectionCode, string> = {
  not_ready: 'not ready',
  cordoned: 'cordoned',
  draining: 'draining',
  other_project: 'private to another project',
  not_shared_pool: 'private to this project',
  not_pinned: 'not the pinned worker',
  not_listed: 'not listed',
  not_registered: 'not registered',
  no_gpus: 'no usable GPUs',
  gpu_pool: 'no GPU in gpu_pool',
  cuda_not_allowed: 'CUDA not allowed',
  cuda_too_old: 'driver CUDA too old',
  no_gpu_runtime: 'no GPU runtime',
  not_enough_gpus: 'too few GPUs',
  model_too_large: 'GPUs too small',
  vram: 'too little free VRAM',
};

/** Workers named one by one in an explanation; the rest are counted by reason. */
export const explainedWorkersLimit = 10;

/** `7.0` GiB from MiB, one decimal. */
export function gibText(mib: number): string {
  const tenths = Math.round((Math.max(0, mib) * 10) / 1024);
  return `${Math.floor(tenths / 10)}.${tenths % 10}`;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** A rounded need: one decimal under 10 GiB (`3.1`), whole GiB above (`20`). */
function needText(gibValue: number): string {
  return gibValue < 10 ? gibValue.toFixed(1) : String(Math.round(gibValue));
}

/**
 * The need that opens an explanation:
 *   `needs ~20 GiB on 1 GPU (vllm claims 90% of GPU memory)`, `needs ~5.2 GiB on 1 GPU` (Ollama claims the estimate),
 *   `needs ~40 GiB on each of 2 GPUs (…)`, or with no size in the model id
 *   `needs 1 GPU with 90% of its memory (the model id carries no size)`.
 */
export function describeNeed(estimate: VramEstimate, backend: string): string {
  const pct = estimate.claim.kind === 'fraction' ? Math.round(estimate.claim.fraction * 100) : null;
  if (estimate.need_gib_per_gpu === null) {
    const their = estimate.gpus === 1 ? 'its' : 'their';
    return `needs ${plural(estimate.gpus, 'GPU')} with ${pct ?? 100}% of ${their} memory (the model id carries no size)`;
  }
  const where = estimate.gpus === 1 ? '1 GPU' : `each of ${estimate.gpus} GPUs`;
  const claim = pct === null ? '' : ` (${backend} claims ${pct}% of GPU memory)`;
  return `needs ~${needText(estimate.need_gib_per_gpu)} GiB on ${where}${claim}`;
}

/** "2× NVIDIA L4, 1× Tesla T4": GPU names with counts, in first-seen order. */
export function gpuNamesText(names: ReadonlyArray<string | null>): string {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n ?? 'unnamed GPU', (counts.get(n ?? 'unnamed GPU') ?? 0) + 1);
  return [...counts].map(([n, c]) => `${c}× ${n}`).join(', ');
}

/** "2 GPUs", "1 GPU and 3 MIG devices", "2 MIG devices": the placement units a worker offered. */
export function unitsText(gpus: number, migDevices: number): string {
  if (migDevices === 0) return plural(gpus, 'GPU');
  if (gpus === 0) return plural(migDevices, 'MIG device');
  return `${plural(gpus, 'GPU')} and ${plural(migDevices, 'MIG device')}`;
}

export const reasonText = {
  notReady: (state: string) => state,
  otherProject: () => 'private to another project',
  notSharedPool: () => 'private to this project, and workers.source is cloud (the shared pool only)',
  notPinned: (pin: string) => `not the pinned worker (worker_id is ${pin})`,
  notListed: () => 'not in workers.private_worker_ids',
  notRegistered: () => 'not registered',
  noGpus: (error: { code: string } | null) => (error ? `no usable GPUs (${error.code})` : 'no GPUs'),
  gpuPool: (pool: readonly string[], names: ReadonlyArray<string | null>) =>
    `no GPU named in gpu_pool (${pool.join(', ')}); it has ${gpuNamesText(names)}`,
  cudaNotAllowed: (cuda: string | null, allowed: readonly string[]) =>
    cuda === null
      ? `driver CUDA unknown; allowed_cuda_versions asks for ${allowed.join(' or ')}`
      : `driver CUDA ${cuda} is not admitted by allowed_cuda_versions (${allowed.join(', ')}: same major, at least that minor)`,
  cudaTooOld: (cuda: string, required: string, image: string) => `driver CUDA ${cuda} is older than the ${required} that ${image} needs`,
  noGpuRuntime: () => 'Docker cannot give GPUs to containers (install the NVIDIA Container Toolkit, or set IK_DOCKER_GPU_MODE)',
  notEnoughGpus: (usable: number, migGpus: number, needed: number, pooled: boolean) => {
    const which = pooled ? ' in gpu_pool' : '';
    const mig = migGpus > 0 ? ` (${plural(migGpus, 'more GPU')} in MIG mode serve single-GPU replicas only)` : '';
    return `${plural(usable, 'GPU')}${which}${mig}, needs ${needed}`;
  },
  modelTooLarge: (needMib: number, largestCapMib: number, claimPct: number | null, migOnly: boolean) => {
    const unit = migOnly ? 'MIG device' : 'GPU';
    return claimPct === null
      ? `the model needs ~${gibText(needMib)} GiB per GPU, more than its largest ${unit} holds (${gibText(largestCapMib)} GiB)`
      : `the model needs ~${gibText(needMib)} GiB per GPU, more than ${claimPct}% of its largest ${unit} (${gibText(largestCapMib)} GiB)`;
  },
  vram: (gpus: number, migDevices: number, bestRoomMib: number, fitting: number, needed: number) =>
    needed === 1
      ? `${unitsText(gpus, migDevices)}, best has ${gibText(bestRoomMib)} GiB free`
      : `${unitsText(gpus, migDevices)}, ${fitting} with enough free memory, needs ${needed}`,
};

/** What a reason's words depend on, besides the worker and its GPU scan. */
export interface ReasonRules {
  pin: string | undefined;
  poolList: readonly string[];
  pooled: boolean;
  allowed: readonly string[] | null;
  minCuda: string | null;
  needMib: number | null;
  fraction: number | null;
  gpus: number;
}

/** The reason, in words, why worker `w` was refused with `code`; `s` holds its GPU scan for the GPU codes, `image` the image it would run. */
export function reasonFor(w: SchedulerWorker, r: ReasonRules, code: RejectionCode, s: UnitScan, image: string): string {
  switch (code) {
    case 'not_ready':
      return reasonText.notReady(w.state);
    case 'cordoned':
    case 'draining':
      return code;
    case 'other_project':
      return reasonText.otherProject();
    case 'not_shared_pool':
      return reasonText.notSharedPool();
    case 'not_pinned':
      return reasonText.notPinned(r.pin ?? '');
    case 'not_listed':
      return reasonText.notListed();
    case 'not_registered':
      return reasonText.notRegistered();
    case 'no_gpus':
      return reasonText.noGpus(w.gpu_error);
    case 'gpu_pool':
      return reasonText.gpuPool(r.poolList, w.gpus.map((g) => g.name));
    case 'cuda_not_allowed':
      return reasonText.cudaNotAllowed(w.cuda_version, r.allowed ?? []);
    case 'cuda_too_old':
      return reasonText.cudaTooOld(w.cuda_version ?? '?', r.minCuda ?? '?', image);
    case 'no_gpu_runtime':
      return reasonText.noGpuRuntime();
    case 'not_enough_gpus':
      return reasonText.notEnoughGpus(s.gpus + s.migDevices, s.migGpusSkipped, r.gpus, r.pooled);
    case 'model_too_large':
      return reasonText.modelTooLarge(r.needMib ?? 0, s.largestCap, r.fraction === null ? null : Math.round(r.fraction * 100), s.gpus === 0);
    case 'vram':
      return reasonText.vram(s.gpus, s.migDevices, Math.max(0, s.bestRoom), s.fitCount, r.gpus);
  }
}

/** A worker's rejection as the explanation reads it. */
export interface ExplainedRejection {
  worker_id: string;
  reason: string;
  code: RejectionCode;
}

/** Text for when there is no worker at all: say so, and how to add one. */
export const noWorkerRegistered =
  'no worker is registered: create a join token with `ik join-token create` and run the install one-liner it prints on a GPU box';

/** Text for when workers exist but none is this project's or shared. */
export const noWorkerAvailable =
  'no worker is available to this project: add a shared worker or one of the project\'s own (`ik join-token create`, then the install one-liner on a GPU box)';

/**
 * The explanation a pending workload shows: the need, then each worker's reason by worker id, separated by "; ".
 *   `needs ~20 GiB on 1 GPU (vllm claims 90% of GPU memory); wrk_a: 2 GPUs, best has 7.0 GiB free; wrk_b: cordoned`
 * Workers that are not the workload's to use (another project's, not the pinned one, not listed) are left out; past
 * `explainedWorkersLimit` workers the rest are counted by reason.
 */
export function explainNoFit(need: string, rejections: readonly ExplainedRejection[], workerCount: number, pinned?: string): string {
  if (workerCount === 0) return `${need}; ${noWorkerRegistered}`;
  let sorted = true;
  for (let i = 1; i < rejections.length && sorted; i++) if (rejections[i - 1]!.worker_id > rejections[i]!.worker_id) sorted = false;
  const inOrder = sorted ? rejections : [...rejections].sort((a, b) => (a.worker_id < b.worker_id ? -1 : a.worker_id > b.worker_id ? 1 : 0));
  let text = need;
  let shown = 0;
  const more = new Int32Array(rejectionCodes.length);
  for (const r of inOrder) {
    if (selectionCodes.has(r.code)) continue;
    if (++shown <= explainedWorkersLimit) text += `; ${r.worker_id}${r.worker_id === pinned ? ' (pinned)' : ''}: ${r.reason}`;
    else more[codeIndex.get(r.code) ?? 0]!++;
  }
  if (shown === 0) return `${need}; ${noWorkerAvailable}`;
  if (shown > explainedWorkersLimit) {
    const counts = rejectionCodes
      .map((code, i) => ({ code, i, n: more[i]! }))
      .filter((c) => c.n > 0)
      .sort((a, b) => b.n - a.n || a.i - b.i)
      .map((c) => `${c.n} ${codeLabels[c.code]}`);
    text += `; and ${plural(shown - explainedWorkersLimit, 'more worker')} (${counts.join(', ')})`;
  }
  return text;
}
