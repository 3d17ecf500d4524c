// The scheduler (DESIGN §7): places one replica on a snapshot of workers, or says in plain words why nothing fits. Pure.
import { cudaNumber, minimumCuda } from '../../shared/backends/cuda.ts';
import { defaultImage, isDefaultImageFamily, resolveImage } from '../../shared/backends/images.ts';
import type { Gpu, RuntimeInfo } from '../../shared/inventory.ts';
import type { WorkloadSpec } from '../../shared/spec/workload-spec.ts';
import { chosenUnits, scanGpus, UnitScan, type ChosenUnits, type FitRules } from './gpu-fit.ts';
import { describeNeed, explainNoFit, reasonFor, reasonText, type ReasonRules, type RejectionCode } from './placement-explain.ts';
import { estimateVram, type VramEstimate } from './vram.ts';
import { hourlyCostRange, unpricedNote } from './workload-cost.ts';

export type { RejectionCode } from './placement-explain.ts';

export interface SchedulerWorker {
  id: string;
  name: string;
  project_id: string | null;
  state: 'ready' | 'disconnected' | 'down';
  cordoned: boolean;
  draining: boolean;
  runtime: RuntimeInfo;
  /** What the agent can do for containers; null = GPUs not usable by its runtime. */
  gpu_mode: 'nvidia' | 'cdi' | 'none' | null;
  cuda_version: string | null;
  gpu_error: { code: string; message: string } | null;
  /** Measured (memory_free_mib may be null). */
  gpus: Gpu[];
  /** Images already on the worker. */
  images: string[];
  /** The agent's IK_IMAGE_MAP. */
  image_map: Record<string, string>;
  /** GPU or MIG uuid → MiB claimed by replicas already placed there (book-kept). */
  booked_mib: Record<string, number>;
  /** Replicas on this worker (all workloads). */
  replicas: number;
  gpu_hourly_cost_usd: number | null;
}

export type PlacementStrategy = 'spread' | 'binpack';

export interface PlacementRequest {
  project_id: string;
  spec: WorkloadSpec;
  /** Replicas of this workload per worker id, for spreading a workload's replicas. */
  workload_replicas: Record<string, number>;
  strategy: PlacementStrategy;
  /** `estimateVram(spec)`, when the caller has it: one estimate serves every replica of a workload (it reads the command). */
  estimate?: VramEstimate;
}

export interface Rejection {
  worker_id: string;
  name: string;
  reason: string;
  code: RejectionCode;
}

export type Placement =
  | {
      ok: true;
      worker_id: string;
      gpu_uuids: string[];
      /** The largest claim among the chosen GPUs; `claims_mib` has each, in `gpu_uuids` order (book these). */
      claim_mib_per_gpu: number;
      claims_mib: number[];
      mig: boolean;
      estimate: VramEstimate;
      hourly_cost_usd: number;
      notes: string[];
    }
  | { ok: false; explanation: string; reasons: Rejection[]; estimate: VramEstimate };

/** The request's rules, worked out once per placement rather than once per worker. */
interface Rules extends FitRules, ReasonRules {
  projectId: string;
  listed: ReadonlySet<string> | null;
  sharedOnly: boolean;
  allowedNums: readonly number[];
  backend: WorkloadSpec['backend'];
  vllmVersion: string | undefined;
  defaultImage: string;
  minCudaNum: number | null;
  /** A small memo of driver CUDA strings already read in this placement (see `cudaOf`). */
  cudaSeen: Array<string | null>;
  cudaValues: Array<number | null>;
}

function rulesOf(request: PlacementRequest, estimate: VramEstimate): Rules {
  const { spec } = request;
  const workers = spec.execution_policy === 'autoscaling' ? spec.execution_policy_config.workers : undefined;
  const cloud = workers?.source === 'cloud' ? workers.cloud_pool : undefined;
  const allowed = cloud?.allowed_cuda_versions ?? null;
  const minCuda = minimumCuda(spec.backend, spec.vllm_version);
  return {
    projectId: request.project_id,
    pin: spec.worker_id,
    listed: workers?.source === 'private' ? new Set(workers.private_worker_ids) : null,
    sharedOnly: workers?.source === 'cloud',
    pool: cloud ? new Set(cloud.gpu_pool) : null,
    pooled: cloud !== undefined,
    poolList: cloud?.gpu_pool ?? [],
    allowed,
    allowedNums: (allowed ?? []).map((v) => cudaNumber(v)).filter((n): n is number => n !== null),
    backend: spec.backend,
    vllmVersion: spec.vllm_version,
    defaultImage: defaultImage(spec.backend, spec.vllm_version),
    minCuda,
    minCudaNum: minCuda === null ? null : cudaNumber(minCuda),
    gpus: estimate.gpus,
    needMib: estimate.need_gib_per_gpu === null ? null : Math.ceil(estimate.need_gib_per_gpu * 1024),
    fraction: estimate.claim.kind === 'fraction' ? estimate.claim.fraction : null,
    cudaSeen: [],
    cudaValues: [],
  };
}

/** The image the worker would run: its IK_IMAGE_MAP template for the backend, else the default. */
function workerImage(w: SchedulerWorker, r: Rules): string {
  return typeof w.image_map[r.backend] === 'string' ? resolveImage(r.backend, r.vllmVersion, w.image_map) : r.defaultImage;
}

/** Whether the worker already has the image it would run (a plain loop: this runs once per worker per placement). */
function hasImage(w: SchedulerWorker, r: Rules): boolean {
  const images = w.images;
  if (images.length === 0) return false;
  const image = workerImage(w, r);
  for (let i = 0; i < images.length; i++) if (images[i] === image) return true;
  return false;
}

/** `cudaNumber`, remembered per placement: a fleet reports a handful of driver versions, and this runs once per worker. */
function cudaOf(version: string | null, r: Rules): number | null {
  const seen = r.cudaSeen;
  for (let i = 0; i < seen.length; i++) if (seen[i] === version) return r.cudaValues[i]!;
  const value = cudaNumber(version);
  if (seen.length < 16) {
    seen.push(version);
    r.cudaValues.push(value);
  }
  return value;
}

/** The filters that need no GPU arithmetic, in DESIGN §7.1's order; null when the worker passes them all. No allocation. */
function checkWorker(w: SchedulerWorker, r: Rules): RejectionCode | null {
  if (w.state !== 'ready') return 'not_ready';
  if (w.cordoned) return 'cordoned';
  if (w.draining) return 'draining';
  const project = w.project_id;
  if (project !== null && project !== r.projectId) return 'other_project';
  if (project !== null && r.sharedOnly) return 'not_shared_pool';
  if (r.pin !== undefined && w.id !== r.pin) return 'not_pinned';
  if (r.listed !== null && !r.listed.has(w.id)) return 'not_listed';
  // A box without usable GPUs says why first: the GPU filters below cannot judge it.
  if (w.gpu_error !== null || w.gpus.length === 0) return 'no_gpus';
  if (r.pool !== null) {
    let named = false;
    for (const g of w.gpus) {
      if (g.name !== null && r.pool.has(g.name)) {
        named = true;
        break;
      }
    }
    if (!named) return 'gpu_pool';
  }
  const cuda = cudaOf(w.cuda_version, r);
  if (r.allowed !== null && r.allowed.length > 0) {
    let ok = false;
    if (cuda !== null) for (const n of r.allowedNums) if (Math.floor(n / 1000) === Math.floor(cuda / 1000) && cuda >= n) ok = true;
    if (!ok) return 'cuda_not_allowed';
  }
  if (w.runtime.kind !== 'docker') return null;
  // The image's own minimum binds only where a container runs the default image (or a mirror of it); an unknown
  // driver CUDA is left to the container runtime, which names the problem if there is one.
  if (r.minCudaNum !== null && cuda !== null && cuda < r.minCudaNum) {
    if (typeof w.image_map[r.backend] !== 'string' || isDefaultImageFamily(r.backend, workerImage(w, r))) return 'cuda_too_old';
  }
  if (w.gpu_mode === null) return 'no_gpu_runtime';
  return null;
}

interface Candidate {
  worker: SchedulerWorker;
  uuids: string[];
  claims: number[];
  mig: boolean;
  unmeasured: string[];
  /** Ranking: the worker-level key (`rankKey`), then `fine` (GPU-level), then the worker id; lower ranks first. */
  key: number;
  fine: number;
}

/** Lexicographic comparison with a candidate; negative when (key, fine, id) ranks first. Ties end on the worker id. */
function compareRank(key: number, fine: number, id: string, b: Candidate): number {
  return key - b.key || fine - b.fine || (id < b.worker.id ? -1 : id > b.worker.id ? 1 : 0);
}

const keyBits = 2 ** 20;
const clampKey = (v: number) => (v < -keyBits + 1 ? -keyBits + 1 : v > keyBits - 1 ? keyBits - 1 : v);

/** The worker-level keys (k1, then k2 ∈ {0, 1}, then k3) as one number that orders the same way (exact below 2^53). */
function rankKey(k1: number, k2: number, k3: number): number {
  return (clampKey(k1) + keyBits) * 4 * keyBits + k2 * 2 * keyBits + (clampKey(k3) + keyBits);
}

interface Evaluation {
  best: Candidate | null;
  /** Every worker that can take the replica (only when all are scanned). */
  feasible: Candidate[];
  /** The GPU filter each scanned worker failed, by index in the snapshot. */
  gpuCodes: Map<number, RejectionCode>;
}

/** Scans one worker's GPUs; when it fits, it becomes the best so far if it ranks first (and joins `feasible` with `all`). */
function scanCandidate(workers: readonly SchedulerWorker[], i: number, r: Rules, s: UnitScan, key: number, binpack: boolean, ev: Evaluation, all: boolean): void {
  const w = workers[i]!;
  const code = scanGpus(w.gpus, w.booked_mib, r, s);
  if (code !== null) {
    ev.gpuCodes.set(i, code);
    return;
  }
  // Rank before building anything: most fitting workers of a group lose to the best so far.
  const single = r.gpus === 1;
  const fine = !binpack ? -s.totalRoom : single ? s.pickRoom - s.pickClaim : leftoverOf(chosenUnits(r, s));
  if (!all && ev.best !== null && compareRank(key, fine, w.id, ev.best) >= 0) return;
  const units = chosenUnits(r, s);
  const c: Candidate = { worker: w, uuids: units.uuids, claims: units.claims, mig: units.mig, unmeasured: units.unmeasured, key, fine };
  if (all) ev.feasible.push(c);
  if (ev.best === null || compareRank(key, fine, w.id, ev.best) < 0) ev.best = c;
}

/** Room left on the chosen units after their claims (binpack's finer key: less is a tighter fit). */
function leftoverOf(units: ChosenUnits): number {
  let leftover = 0;
  for (let k = 0; k < units.rooms.length; k++) leftover += units.rooms[k]! - units.claims[k]!;
  return leftover;
}

/** Whether a worker with this worker-level key can no longer rank first: a fit with a better key is already found. */
function beyondBest(ev: Evaluation, key: number): boolean {
  return ev.best !== null && key > ev.best.key;
}

/**
 * Ranking (DESIGN §7.3), keys in order:
 *   spread  — fewest replicas of this workload; has the image; fewest replicas overall; most free memory; worker id.
 *   binpack — most replicas overall; has the image; least room left on the chosen GPUs after the claim; worker id.
 * The image is the second key in both: it breaks ties of the strategy's main key before any finer balancing.
 *
 * The worker-level keys are known before any GPU arithmetic, so GPUs are scanned group by group, best key first: the
 * first group with a fitting worker holds the winner, and the rest of the fleet is never scanned. With `all`, every
 * worker that passes the filters is scanned (for `planWorkload`'s cost range).
 */
function evaluate(request: PlacementRequest, workers: readonly SchedulerWorker[], r: Rules, all: boolean): Evaluation {
  const binpack = request.strategy === 'binpack';
  // Replicas of this workload per worker: few entries, so a linear scan of them beats a map lookup per worker.
  const spreadIds = binpack ? [] : Object.keys(request.workload_replicas);
  const spreadCounts = spreadIds.map((id) => request.workload_replicas[id] ?? 0);
  // The last character of each id, compared first: ids share long prefixes ("wrk_"), so this skips most string compares.
  const spreadLast = spreadIds.map((id) => id.charCodeAt(id.length - 1));
  const ev: Evaluation = { best: null, feasible: [], gpuCodes: new Map() };
  const passed: number[] = [];
  const keys: number[] = [];
  let n = 0;
  let min = Infinity;
  for (let i = 0; i < workers.length; i++) {
    const w = workers[i]!;
    if (checkWorker(w, r) !== null) continue; // its reason is worked out again only if nothing fits
    let k1 = binpack ? -w.replicas : 0;
    if (spreadIds.length > 0) {
      const id = w.id;
      const last = id.charCodeAt(id.length - 1);
      for (let j = 0; j < spreadIds.length; j++) if (spreadLast[j] === last && spreadIds[j] === id) k1 = spreadCounts[j]!;
    }
    const key = rankKey(k1, hasImage(w, r) ? 0 : 1, binpack ? 0 : w.replicas);
    passed.push(i);
    keys.push(key);
    n++;
    if (key < min) min = key;
  }
  const scan = new UnitScan();
  if (all) {
    for (let j = 0; j < n; j++) scanCandidate(workers, passed[j]!, r, scan, keys[j]!, binpack, ev, true);
    return ev;
  }
  // The first group usually holds a fit; when a few groups in a row do not (a large model, a full fleet), the rest
  // are sorted once and walked in order.
  for (let round = 0; round < 3 && ev.best === null && min !== Infinity; round++) {
    let next = Infinity;
    for (let j = 0; j < n; j++) {
      const key = keys[j]!;
      if (key === min) scanCandidate(workers, passed[j]!, r, scan, key, binpack, ev, false);
      else if (key > min && key < next) next = key;
    }
    min = next;
  }
  if (ev.best === null && min !== Infinity) {
    const rest: number[] = [];
    for (let j = 0; j < n; j++) if (keys[j]! >= min) rest.push(j);
    rest.sort((a, b) => keys[a]! - keys[b]! || a - b);
    for (const j of rest) {
      if (beyondBest(ev, keys[j]!)) break;
      scanCandidate(workers, passed[j]!, r, scan, keys[j]!, binpack, ev, false);
    }
  }
  return ev;
}

/** Every worker's rejection with its reason in words: the no-fit path only, which must explain itself. */
function rejectionsOf(workers: readonly SchedulerWorker[], r: Rules, gpuCodes: ReadonlyMap<number, RejectionCode>): Rejection[] {
  const scan = new UnitScan();
  const out: Rejection[] = [];
  // Many workers share a reason word for word (same driver, same GPU model): build each such text once.
  const tooOld = new Map<string | null, string>();
  const tooLarge = new Map<number, string>();
  for (let i = 0; i < workers.length; i++) {
    const w = workers[i]!;
    const code = checkWorker(w, r) ?? gpuCodes.get(i) ?? null;
    if (code === null) continue;
    // The GPU codes' words need the scan's figures: scan that worker again.
    if (code === 'not_enough_gpus' || code === 'model_too_large' || code === 'vram') scanGpus(w.gpus, w.booked_mib, r, scan);
    let reason: string;
    if (code === 'cuda_too_old' && typeof w.image_map[r.backend] !== 'string') {
      reason = tooOld.get(w.cuda_version) ?? reasonFor(w, r, code, scan, r.defaultImage);
      tooOld.set(w.cuda_version, reason);
    } else if (code === 'model_too_large') {
      const shape = scan.largestCap * 2 + (scan.gpus === 0 ? 1 : 0);
      reason = tooLarge.get(shape) ?? reasonFor(w, r, code, scan, '');
      tooLarge.set(shape, reason);
    } else reason = reasonFor(w, r, code, scan, code === 'cuda_too_old' ? workerImage(w, r) : '');
    out.push({ worker_id: w.id, name: w.name, reason, code });
  }
  return out;
}

/** Rejections for a pinned or listed worker id that no worker in the snapshot has. */
function unregistered(r: Rules, workers: readonly SchedulerWorker[]): Rejection[] {
  const wanted = r.pin !== undefined ? [r.pin] : r.listed !== null ? [...r.listed] : [];
  if (wanted.length === 0) return [];
  const known = new Set(workers.map((w) => w.id));
  return wanted.filter((id) => !known.has(id)).map((id) => ({ worker_id: id, name: '', reason: reasonText.notRegistered(), code: 'not_registered' as const }));
}

function byWorkerId(a: Rejection, b: Rejection): number {
  return a.worker_id < b.worker_id ? -1 : a.worker_id > b.worker_id ? 1 : 0;
}

function isSortedById(list: readonly Rejection[]): boolean {
  for (let i = 1; i < list.length; i++) if (list[i - 1]!.worker_id > list[i]!.worker_id) return false;
  return true;
}

/** A replica's cost per hour: the GPUs it is placed on × its worker's price (unset counts as 0). */
function costOf(c: Candidate, gpus: number): number {
  return gpus * (c.worker.gpu_hourly_cost_usd ?? 0);
}

function placementOf(c: Candidate, estimate: VramEstimate): Placement {
  const notes = [...estimate.notes];
  if (c.unmeasured.length > 0) notes.push(`${c.unmeasured.join(', ')} reported no measured free memory: book-keeping alone decided`);
  if (c.mig) notes.push('placed on a MIG device: its free memory is book-kept only (nvidia-smi measures the parent GPU)');
  return {
    ok: true,
    worker_id: c.worker.id,
    gpu_uuids: c.uuids,
    claim_mib_per_gpu: Math.max(...c.claims),
    claims_mib: c.claims,
    mig: c.mig,
    estimate,
    hourly_cost_usd: costOf(c, estimate.gpus),
    notes,
  };
}

function failureOf(request: PlacementRequest, workers: readonly SchedulerWorker[], r: Rules, ev: Evaluation, estimate: VramEstimate): Placement {
  const reasons = rejectionsOf(workers, r, ev.gpuCodes);
  const missing = unregistered(r, workers);
  if (missing.length > 0) reasons.push(...missing);
  if (!isSortedById(reasons)) reasons.sort(byWorkerId);
  const explanation = explainNoFit(describeNeed(estimate, request.spec.backend), reasons, workers.length, r.pin);
  return { ok: false, explanation, reasons, estimate };
}

/** Places one replica of `request.spec`: the best worker and its GPUs, or the explanation of why nothing fits. */
export function place(request: PlacementRequest, workers: readonly SchedulerWorker[]): Placement {
  const estimate = request.estimate ?? estimateVram(request.spec);
  const r = rulesOf(request, estimate);
  const ev = evaluate(request, workers, r, false);
  return ev.best !== null ? placementOf(ev.best, estimate) : failureOf(request, workers, r, ev, estimate);
}

/** What `POST …/workloads:plan` answers (DESIGN §4.3), plus notes on what the figures assume. */
export interface WorkloadPlan {
  feasible: boolean;
  estimate: { vram_gib_per_gpu: number | null; gpus: number; known: boolean };
  placement: { worker_id: string; gpu_uuids: string[] } | null;
  explanation: string | null;
  hourly_cost_usd: { min: number; max: number };
  notes: string[];
}

/**
 * A dry run: where the first replica would go, and what the workload may cost per hour (`hourlyCostRange`), a replica
 * costing its GPU count × its worker's gpu_hourly_cost_usd (unset counts as 0, and a note says so).
 */
export function planWorkload(spec: WorkloadSpec, project_id: string, workers: readonly SchedulerWorker[], strategy: PlacementStrategy = 'spread'): WorkloadPlan {
  const estimate = estimateVram(spec);
  const request: PlacementRequest = { project_id, spec, workload_replicas: {}, strategy, estimate };
  const r = rulesOf(request, estimate);
  const ev = evaluate(request, workers, r, true);
  const notes = [...estimate.notes];
  const summary = { vram_gib_per_gpu: estimate.need_gib_per_gpu, gpus: estimate.gpus, known: estimate.known };
  if (ev.best === null) {
    const failed = failureOf(request, workers, r, ev, estimate);
    notes.push('nothing fits now, so no cost is counted until a worker can take a replica');
    return { feasible: false, estimate: summary, placement: null, explanation: failed.ok ? null : failed.explanation, hourly_cost_usd: { min: 0, max: 0 }, notes };
  }
  const costs = ev.feasible.map((c) => costOf(c, estimate.gpus));
  const cost = hourlyCostRange(spec, Math.min(...costs), Math.max(...costs));
  const unpriced = unpricedNote(ev.feasible.filter((c) => c.worker.gpu_hourly_cost_usd === null).map((c) => c.worker.id));
  if (unpriced) notes.push(unpriced);
  notes.push(...cost.notes);
  const placement = { worker_id: ev.best.worker.id, gpu_uuids: ev.best.uuids };
  return { feasible: true, estimate: summary, placement, explanation: null, hourly_cost_usd: { min: cost.min, max: cost.max }, notes };
}
