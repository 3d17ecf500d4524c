// Which GPUs (or MIG devices) of one worker can hold a replica, and the best-fit choice among them (DESIGN §7.1, §7.3).
import type { Gpu } from '../../shared/inventory.ts';

/** What the fit depends on, worked out once per placement. */
export interface FitRules {
  /** GPU names as nvidia-smi prints them (gpu_pool); null: any GPU. */
  pool: ReadonlySet<string> | null;
  /** GPUs one replica uses (tp × pp × dp). */
  gpus: number;
  /** The estimate per GPU in MiB; null when the model size is unknown (the claim alone decides). */
  needMib: number | null;
  /** The share of each GPU's memory the engine claims; null: it claims the estimate itself (Ollama). */
  fraction: number | null;
}

export type GpuFitCode = 'not_enough_gpus' | 'model_too_large' | 'vram';

/** The best-fit units a fitting worker offers. */
export interface ChosenUnits {
  uuids: string[];
  /** MiB claimed on each, in `uuids` order. */
  claims: number[];
  /** Free MiB on each before the claim (the lower of book-kept and measured). */
  rooms: number[];
  /** Whole GPUs among them that reported no measured free memory (book-keeping alone decided). */
  unmeasured: string[];
  mig: boolean;
}

/**
 * Running totals of one worker's GPU scan; one instance is reused for every worker of a placement, so scanning a
 * worker allocates nothing unless it needs several GPUs.
 */
export class UnitScan {
  gpus = 0;
  migDevices = 0;
  /** GPUs in MIG mode passed over because the replica needs several GPUs. */
  migGpusSkipped = 0;
  /** The most free MiB on a unit big enough for the model (-1: none). */
  bestRoom = -1;
  /** The most a unit of this worker may hold of the model: the claim's share of its largest GPU. */
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

  /**
   * One unit: a whole GPU, or a MIG device (book-kept only: nvidia-smi measures the parent GPU). It fits when the
   * estimate fits inside the claim and both the book-kept room (total − booked) and the measured free memory allow it.
   */
  consider(r: FitRules, booked: Readonly<Record<string, number>>, uuid: string, total: number, measured: number | null, mig: boolean): void {
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
      // Best fit: the least room that fits, so small replicas do not fragment GPUs a large one needs.
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

/**
 * Scans a worker's GPUs into `s`; the code of the GPU filter it fails, or null when enough units fit. A GPU in MIG
 * mode offers its MIG devices as units, never itself, and only to single-GPU replicas.
 */
export function scanGpus(gpus: readonly Gpu[], booked: Readonly<Record<string, number>>, r: FitRules, s: UnitScan): GpuFitCode | null {
  s.reset();
  for (const g of gpus) {
    if (r.pool !== null && (g.name === null || !r.pool.has(g.name))) continue;
    if (g.mig_mode === 'enabled') {
      if (r.gpus > 1) s.migGpusSkipped++;
      else for (const m of g.mig_devices) if (m.memory_total_mib !== null) s.consider(r, booked, m.uuid, m.memory_total_mib, null, true);
      continue;
    }
    if (g.memory_total_mib !== null) s.consider(r, booked, g.uuid, g.memory_total_mib, g.memory_free_mib, false);
  }
  if (s.gpus + s.migDevices < r.gpus) return 'not_enough_gpus';
  if (!s.anyFitsCap) return 'model_too_large';
  if (s.fitCount < r.gpus) return 'vram';
  return null;
}

/** The units a successful scan chose; for N GPUs, the N fitting ones with the least room (ties by uuid). */
export function chosenUnits(r: FitRules, s: UnitScan): ChosenUnits {
  if (r.gpus === 1) {
    return { uuids: [s.pickUuid], claims: [s.pickClaim], rooms: [s.pickRoom], unmeasured: s.pickUnmeasured ? [s.pickUuid] : [], mig: s.pickMig };
  }
  const order = s.fitUuids.map((_, i) => i);
  order.sort((a, b) => s.fitRooms[a]! - s.fitRooms[b]! || (s.fitUuids[a]! < s.fitUuids[b]! ? -1 : 1));
  const chosen = order.slice(0, r.gpus);
  return {
    uuids: chosen.map((i) => s.fitUuids[i]!),
    claims: chosen.map((i) => s.fitClaims[i]!),
    rooms: chosen.map((i) => s.fitRooms[i]!),
    unmeasured: chosen.filter((i) => s.fitUnmeasured[i]).map((i) => s.fitUuids[i]!),
    mig: false,
  };
}
