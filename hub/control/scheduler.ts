// The scheduler (DESIGN §7): places one replica on a snapshot of workers, or says in plain words why nothing fits. Pure.
import { cudaNumber, minimumCuda } from '../../shared/backends/cuda.ts';
import { defaultImage, isDefaultImageFamily, resolveImage } from '../../shared/backends/images.ts';
import type { Gpu, RuntimeInfo } from '../../shared/inventory.ts';
import type { WorkloadSpec } from '../../shared/spec/workload-spec.ts';
import { describeNeed, explainNoFit, reasonText, type RejectionCode } from './placement-explain.ts';
import { estimateVram, type VramEstimate } from './vram.ts';

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
  /** `estimateVram(spec)`, when the caller already has it (one estimate serves every replica of a workload). */
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
interface Rules {
  projectId: string;
  pin: string | undefined;
  listed: ReadonlySet<string> | null;
  sharedOnly: boolean;
  pool: ReadonlySet<string> | null;
  poolList: readonly string[];
  allowed: readonly string[] | null;
  allowedNums: readonly number[];
  backend: WorkloadSpec['backend'];
  vllmVersion: string | undefined;
  defaultImage: string;
  minCuda: string | null;
  minCudaNum: number | null;
  gpus: number;
  needMib: number | null;
  fraction: number | null;
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

function workerImage(w: SchedulerWorker, r: Rules): string {
  return typeof w.image_map[r.backend] === 'string' ? resolveImage(r.backend, r.vllmVersion, w.image_map) : r.defaultImage;
}

/** Whether the worker already has the image it would run (a plain loop: this runs once per worker per placement). */
function hasImage(w: SchedulerWorker, r: Rules): boolean {
  const images = w.images;
  if (images.length === 0) return false;
  const image = typeof w.image_map[r.backend] === 'string' ? workerImage(w, r) : r.defaultImage;
  for (let i = 0; i < images.length; i++) if (images[i] === image) return true;
  return false;
}

/** `cudaNumber`, remembered per placement: a fleet reports a handful of driver versions, and this runs once per worker. */
function cudaOf(version: string | null, r: Rules): number | null {
  const keys = r.cudaSeen;
  for (let i = 0; i < keys.length; i++) if (keys[i] === version) return r.cudaValues[i]!;
  const value = cudaNumber(version);
  if (keys.length < 16) {
    keys.push(version);
    r.cudaValues.push(value);
  }
  return value;
}

/** The filters that need no GPU arithmetic, in DESIGN §7.1's order; null when the worker passes them all. No allocation. */
function checkWorker(w: SchedulerWorker, r: Rules): RejectionCode | null {
  if (w.state !== 'ready') return 'not_ready';
  if (w.cordoned) return 'cordoned';
  if (w.draining) return 'draining';
  if (w.project_id !== null && w.project_id !== r.projectId) return 'other_project';
  if (w.project_id !== null && r.sharedOnly) return 'not_shared_pool';
  if (r.pin !== undefined && w.id !== r.pin) return 'not_pinned';
  if (r.listed !== null && !r.listed.has(w.id)) return 'not_listed';
  // A box without usable GPUs says why first: the GPU filters below cannot judge it.
  if (w.gpu_error !== null || w.gpus.length === 0) return 'no_gpus';
  if (r.pool !== null) {
    let named = false;
    for (const g of w.gpus) if (g.name !== null && r.pool.has(g.name)) named = true;
    if (!named) return 'gpu_pool';
  }
  const cuda = cudaOf(w.cuda_version, r);
  if (r.allowed !== null && r.allowed.length > 0) {
    let ok = false;
    if (cuda !== null) for (const n of r.allowedNums) if (Math.floor(n / 1000) === Math.floor(cuda / 1000) && cuda >= n) ok = true;
    if (!ok) return 'cuda_not_allowed';
  }
  // The image's own minimum binds only where a container runs the default image (or a mirror of it); an unknown
  // driver CUDA is left to the container runtime, which names the problem if there is one.
  if (w.runtime.kind === 'docker' && r.minCudaNum !== null && cuda !== null && cuda < r.minCudaNum) {
    if (typeof w.image_map[r.backend] !== 'string' || isDefaultImageFamily(r.backend, workerImage(w, r))) return 'cuda_too_old';
  }
  if (w.runtime.kind === 'docker' && w.gpu_mode === null) return 'no_gpu_runtime';
  return null;
}

/** Running totals of one worker's GPU scan; one instance is reused for every worker of a placement. */
class UnitScan {
  gpus = 0;
  migDevices = 0;
  migGpusSkipped = 0;
  bestRoom = -1;
  largestCap = 0;
  anyFitsCap = false;
  totalRoom = 0;
  fitCount = 0;
  pickUuid = '';
  pickRoom = Infinity;
  pickClaim = 0;
  pickMig = false;
  pickUnmeasured = false;
  fitUuids: string[] = [];
  fitRooms: number[] = [];
  fitClaims: number[] = [];
  fitUnmeasured: boolean[] = [];

  reset(): void {
    this.gpus = this.migDevices = this.migGpusSkipped = this.totalRoom = this.fitCount = this.largestCap = this.pickClaim = 0;
    this.bestRoom = -1;
    this.anyFitsCap = this.pickMig = this.pickUnmeasured = false;
    this.pickUuid = '';
    this.pickRoom = Infinity;
    if (this.fitUuids.length > 0) this.fitUuids.length = this.fitRooms.length = this.fitClaims.length = this.fitUnmeasured.length = 0;
  }

  /** One placement unit: a whole GPU, or a MIG device (its memory is book-kept only: nvidia-smi measures the parent). */
  consider(r: Rules, booked: Record<string, number>, uuid: string, total: number, measured: number | null, mig: boolean): void {
    if (mig) this.migDevices++;
    else this.gpus++;
    const claim = r.fraction === null ? r.needMib! : Math.floor(r.fraction * total);
    const cap = r.fraction === null ? total : claim;
    if (cap > this.largestCap) this.largestCap = cap;
    // A unit too small for the model whatever is free on it counts for nothing else (and costs no book-keeping lookup).
    if (r.needMib !== null && r.needMib > cap) return;
    this.anyFitsCap = true;
    const bookedRoom = total - (booked[uuid] ?? 0);
    const room = measured === null || measured > bookedRoom ? bookedRoom : measured;
    this.totalRoom += room > 0 ? room : 0;
    if (room > this.bestRoom) this.bestRoom = room;
    if (room < claim) return;
    this.fitCount++;
    const unmeasured = measured === null && !mig;
    if (r.gpus === 1) {
      if (room < this.pickRoom || (room === this.pickRoom && uuid < this.pickUuid)) {
        this.pickUuid = uuid;
        this.pickRoom = room;
        this.pickClaim = claim;
        this.pickMig = mig;
        this.pickUnmeasured = unmeasured;
      }
    } else {
      this.fitUuids.push(uuid);
      this.fitRooms.push(room);
      this.fitClaims.push(claim);
      this.fitUnmeasured.push(unmeasured);
    }
  }
}

/** Scans a worker's GPUs (best fit lands in `s`); the code of the GPU filter it fails, or null when enough units fit. */
function scanGpus(w: SchedulerWorker, r: Rules, s: UnitScan): RejectionCode | null {
  s.reset();
  for (const g of w.gpus) {
    if (r.pool !== null && (g.name === null || !r.pool.has(g.name))) continue;
    if (g.mig_mode === 'enabled') {
      // A GPU in MIG mode offers its MIG devices, never itself, and only to single-GPU replicas.
      if (r.gpus > 1) s.migGpusSkipped++;
      else for (const m of g.mig_devices) if (m.memory_total_mib !== null) s.consider(r, w.booked_mib, m.uuid, m.memory_total_mib, null, true);
      continue;
    }
    if (g.memory_total_mib !== null) s.consider(r, w.booked_mib, g.uuid, g.memory_total_mib, g.memory_free_mib, false);
  }
  if (s.gpus + s.migDevices < r.gpus) return 'not_enough_gpus';
  if (!s.anyFitsCap) return 'model_too_large';
  if (s.fitCount < r.gpus) return 'vram';
  return null;
}

/** The reason, in words, why `w` was refused with `code` (`s` holds the worker's GPU scan for the GPU codes). */
function reasonFor(w: SchedulerWorker, r: Rules, code: RejectionCode, s: UnitScan): string {
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
        return reasonText.cudaTooOld(w.cuda_version ?? '?', r.minCuda ?? '?', workerImage(w, r));
      case 'no_gpu_runtime':
        return reasonText.noGpuRuntime();
      case 'not_enough_gpus':
        return reasonText.notEnoughGpus(s.gpus + s.migDevices, s.migGpusSkipped, r.gpus, r.pool !== null);
      case 'model_too_large':
        return reasonText.modelTooLarge(r.needMib ?? 0, s.largestCap, r.fraction === null ? null : Math.round(r.fraction * 100));
      case 'vram':
        return reasonText.vram(s.gpus, s.migDevices, Math.max(0, s.bestRoom), s.fitCount, r.gpus);
    }
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

/** The candidate a successful scan describes (best-fit units already chosen). */
function candidateOf(w: SchedulerWorker, r: Rules, s: UnitScan, key: number, binpack: boolean): Candidate {
  let uuids: string[];
  let claims: number[];
  let rooms: number[];
  let unmeasured: string[];
  if (r.gpus === 1) {
    uuids = [s.pickUuid];
    claims = [s.pickClaim];
    rooms = [s.pickRoom];
    unmeasured = s.pickUnmeasured ? [s.pickUuid] : [];
  } else {
    // Best fit for N GPUs: the N fitting GPUs with the least room, so the roomiest stay whole for bigger replicas.
    const order = s.fitUuids.map((_, i) => i);
    order.sort((a, b) => s.fitRooms[a]! - s.fitRooms[b]! || (s.fitUuids[a]! < s.fitUuids[b]! ? -1 : 1));
    const chosen = order.slice(0, r.gpus);
    uuids = chosen.map((i) => s.fitUuids[i]!);
    claims = chosen.map((i) => s.fitClaims[i]!);
    rooms = chosen.map((i) => s.fitRooms[i]!);
    unmeasured = chosen.filter((i) => s.fitUnmeasured[i]).map((i) => s.fitUuids[i]!);
  }
  let leftover = 0;
  for (let i = 0; i < rooms.length; i++) leftover += rooms[i]! - claims[i]!;
  const fine = binpack ? leftover : -s.totalRoom;
  return { worker: w, uuids, claims, mig: r.gpus === 1 && s.pickMig, unmeasured, key, fine };
}

/** Lexicographic comparison of ranking keys; negative when `a` ranks first. Ties end on the worker id (deterministic). */
function compareCandidates(a: Candidate, b: Candidate): number {
  return a.key - b.key || a.fine - b.fine || (a.worker.id < b.worker.id ? -1 : a.worker.id > b.worker.id ? 1 : 0);
}

const keyBits = 2 ** 20;
const clampKey = (v: number) => (v < -keyBits + 1 ? -keyBits + 1 : v > keyBits - 1 ? keyBits - 1 : v);

/** The worker-level keys (k1, then k2 ∈ {0, 1}, then k3) as one number that orders the same way (exact below 2^53). */
function rankKey(k1: number, k2: number, k3: number): number {
  return (clampKey(k1) + keyBits) * 4 * keyBits + k2 * 2 * keyBits + (clampKey(k3) + keyBits);
}

interface GroupScan {
  best: Candidate | null;
  feasible: Candidate[];
  all: boolean;
  /** Each worker's rejection code, by index (null: not rejected, or not scanned). */
  codes: Array<RejectionCode | null>;
}

/** Scans one worker's GPUs; when it fits, it becomes the best so far if it ranks first (and joins `feasible` with `all`). */
function scanCandidate(workers: readonly SchedulerWorker[], i: number, r: Rules, s: UnitScan, key: number, binpack: boolean, state: GroupScan): void {
  const w = workers[i]!;
  const code = scanGpus(w, r, s);
  if (code !== null) {
    state.codes[i] = code;
    return;
  }
  const c = candidateOf(w, r, s, key, binpack);
  if (state.all) state.feasible.push(c);
  if (state.best === null || compareCandidates(c, state.best) < 0) state.best = c;
}

/** Whether a worker with this worker-level key can no longer rank first: a fit with a better key is already found. */
function beyondBest(state: GroupScan, key: number): boolean {
  return state.best !== null && key > state.best.key;
}

interface Evaluation {
  best: Candidate | null;
  /** Every worker that can take the replica (only when asked for all). */
  feasible: Candidate[];
  codes: Array<RejectionCode | null>;
}

/**
 * Ranking (DESIGN §7.3), keys in order:
 *   spread  — fewest replicas of this workload; has the image; fewest replicas overall; most free memory; worker id.
 *   binpack — most replicas overall; has the image; least room left on the chosen GPUs after the claim; worker id.
 * The image is the second key in both: it breaks ties of the strategy's main key before any finer balancing.
 *
 * The worker-level keys (k1, k2, k3) are known before any GPU arithmetic, so the GPUs are scanned group by group, best
 * keys first: the first group with a fitting worker holds the winner, and the rest of the fleet is never scanned.
 */
function evaluate(request: PlacementRequest, workers: readonly SchedulerWorker[], r: Rules, all: boolean): Evaluation {
  const binpack = request.strategy === 'binpack';
  // Replicas of this workload per worker: few entries, so a linear scan of them beats a map lookup per worker.
  const spreadIds = binpack ? [] : Object.keys(request.workload_replicas);
  const spreadCounts = spreadIds.map((id) => request.workload_replicas[id] ?? 0);
  const codes = new Array<RejectionCode | null>(workers.length);
  const passed = new Int32Array(workers.length);
  const keys = new Float64Array(workers.length);
  let n = 0;
  let min = Infinity;
  for (let i = 0; i < workers.length; i++) {
    const w = workers[i]!;
    const code = checkWorker(w, r);
    if (code !== null) {
      codes[i] = code;
      continue;
    }
    let k1 = binpack ? -w.replicas : 0;
    for (let j = 0; j < spreadIds.length; j++) if (spreadIds[j] === w.id) k1 = spreadCounts[j]!;
    const k2 = hasImage(w, r) ? 0 : 1;
    const key = rankKey(k1, k2, binpack ? 0 : w.replicas);
    passed[n] = i;
    keys[n++] = key;
    if (key < min) min = key;
  }
  const scan = new UnitScan();
  const state: GroupScan = { best: null, feasible: [], all, codes };
  if (all) {
    for (let j = 0; j < n; j++) scanCandidate(workers, passed[j]!, r, scan, keys[j]!, binpack, state);
    return { best: state.best, feasible: state.feasible, codes };
  }
  // Group by group from the best key until a group has a fit. The first group usually has one; when a few groups in a
  // row do not (a large model, a full fleet), the rest are sorted once and walked in order.
  for (let round = 0; round < 3 && state.best === null && min !== Infinity; round++) {
    let next = Infinity;
    for (let j = 0; j < n; j++) {
      const key = keys[j]!;
      if (key === min) scanCandidate(workers, passed[j]!, r, scan, key, binpack, state);
      else if (key > min && key < next) next = key;
    }
    min = next;
  }
  if (state.best === null && min !== Infinity) {
    const rest: number[] = [];
    for (let j = 0; j < n; j++) if (keys[j]! >= min) rest.push(j);
    rest.sort((a, b) => keys[a]! - keys[b]! || a - b);
    for (let t = 0; t < rest.length; t++) {
      const j = rest[t]!;
      if (beyondBest(state, keys[j]!)) break;
      scanCandidate(workers, passed[j]!, r, scan, keys[j]!, binpack, state);
    }
  }
  return { best: state.best, feasible: state.feasible, codes };
}

/** Every worker's rejection, with its reason in words: the no-fit path only, which must explain itself. */
function rejectionsOf(workers: readonly SchedulerWorker[], r: Rules, codes: ReadonlyArray<RejectionCode | null>): Rejection[] {
  const scan = new UnitScan();
  const out: Rejection[] = [];
  // Many workers share a reason word for word (same driver, same GPU model): build each such text once.
  const tooOld = new Map<string | null, string>();
  const tooLarge = new Map<number, string>();
  for (let i = 0; i < workers.length; i++) {
    const w = workers[i]!;
    let code = codes[i] ?? null;
    if (code === null) continue;
    // The GPU codes' words need the scan's figures: scan that worker again (the no-fit path only).
    if (code === 'not_enough_gpus' || code === 'model_too_large' || code === 'vram') code = scanGpus(w, r, scan) ?? code;
    let reason: string;
    if (code === 'cuda_too_old' && typeof w.image_map[r.backend] !== 'string') {
      reason = tooOld.get(w.cuda_version) ?? reasonFor(w, r, code, scan);
      tooOld.set(w.cuda_version, reason);
    } else if (code === 'model_too_large') {
      reason = tooLarge.get(scan.largestCap) ?? reasonFor(w, r, code, scan);
      tooLarge.set(scan.largestCap, reason);
    } else reason = reasonFor(w, r, code, scan);
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
  const missing = unregistered(r, workers);
  const reasons = rejectionsOf(workers, r, ev.codes);
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

const cents = (usd: number) => Math.round(usd * 10_000) / 10_000;

/**
 * A dry run: where the first replica would go, and what the workload may cost per hour. A replica costs its GPU count ×
 * its worker's gpu_hourly_cost_usd (unset counts as 0), from the cheapest to the dearest worker that can take it;
 * fixed: replicas × that; scheduled: 0 outside its time, replicas × that inside; autoscaling: min_workers … max_workers
 * replicas, the count bounded by cloud_pool.max_instances and by the lower of the two hourly caps.
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
  const low = Math.min(...costs);
  const high = Math.max(...costs);
  const unpriced = ev.feasible.filter((c) => c.worker.gpu_hourly_cost_usd === null).map((c) => c.worker.id).sort();
  if (unpriced.length > 0) {
    const shown = unpriced.length > 5 ? `${unpriced.slice(0, 5).join(', ')} and ${unpriced.length - 5} more` : unpriced.join(', ');
    notes.push(`${shown} ${unpriced.length === 1 ? 'has' : 'have'} no gpu_hourly_cost_usd: counted as 0 USD per GPU-hour`);
  }
  let min = 0;
  let max = 0;
  if (spec.execution_policy === 'fixed') {
    min = spec.execution_policy_config.replicas * low;
    max = spec.execution_policy_config.replicas * high;
  } else if (spec.execution_policy === 'scheduled') {
    max = spec.execution_policy_config.replicas * high;
    notes.push('scheduled: 0 outside its time; the maximum is the cost while it runs');
  } else {
    const c = spec.execution_policy_config;
    const pool = c.workers?.source === 'cloud' ? c.workers.cloud_pool : undefined;
    let count = Math.min(c.max_workers, pool?.max_instances ?? Infinity);
    const cap = Math.min(c.max_hourly_cost_usd ?? Infinity, pool?.max_hourly_cost_usd ?? Infinity);
    if (Number.isFinite(cap) && high > 0 && Math.floor(cap / high + 1e-9) < count) {
      count = Math.floor(cap / high + 1e-9);
      notes.push(`the hourly cap of ${cap} USD bounds autoscaling to ${count} replica${count === 1 ? '' : 's'}`);
    }
    min = Math.min(c.min_workers, count) * low;
    max = count * high;
  }
  const placement = { worker_id: ev.best.worker.id, gpu_uuids: ev.best.uuids };
  return { feasible: true, estimate: summary, placement, explanation: null, hourly_cost_usd: { min: cents(min), max: cents(max) }, notes };
}
