// The agent's inventory on its own timer: nvidia-smi (which can hang) apart from heartbeats, which send the latest sample.
import type { Logger } from '../../shared/logger.ts';
import type { GpuInventory, GpuMode, HostInfo, Inventory, RuntimeInfo } from '../../shared/inventory.ts';
import { createNvidiaSmiProbe, type NvidiaSmiProbe } from './nvidia-smi.ts';
import { readHostInfo } from './host.ts';
import { detectDockerEngine, type DockerEngineInfo } from './docker.ts';

export interface InventoryOptions {
  dataDir: string;
  nvidiaSmi: string;
  nvidiaSmiTimeoutMs: number;
  runtime: 'docker' | 'process' | undefined;
  dockerGpuMode: GpuMode | undefined;
  imageMap: Record<string, string>;
  log: Logger;
}

/** Host facts change slowly (free disk); they are refreshed at most this often. */
const HOST_REFRESH_MS = 60_000;

export class InventoryPoller {
  private readonly probe: NvidiaSmiProbe;
  private gpu: GpuInventory = { gpu_driver_version: null, cuda_version: null, gpu_error: null, gpus: [] };
  private host: HostInfo | undefined;
  private hostAt = 0;
  private runtime: RuntimeInfo = { kind: 'process', docker_version: null, nvidia_runtime: false, cdi: false, gpu_mode: null, images: [], image_map: {} };
  private timer: NodeJS.Timeout | undefined;
  private intervalMs = 10_000;
  private stopped = false;
  private listeners: Array<(inv: Inventory) => void> = [];

  constructor(private readonly opts: InventoryOptions) {
    this.probe = createNvidiaSmiProbe({ binary: opts.nvidiaSmi, timeoutMs: opts.nvidiaSmiTimeoutMs, log: opts.log });
  }

  /** Takes the first complete sample (the hello needs it), then keeps polling. */
  async start(): Promise<Inventory> {
    await this.refresh();
    this.schedule();
    return this.current();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  setInterval(ms: number): void {
    this.intervalMs = ms;
  }

  onSample(fn: (inv: Inventory) => void): void {
    this.listeners.push(fn);
  }

  current(): Inventory {
    return { host: this.host!, runtime: this.runtime, ...this.gpu };
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(async () => {
      await this.refresh();
      this.schedule();
    }, this.intervalMs);
    this.timer.unref();
  }

  private async refresh(): Promise<void> {
    const now = Date.now();
    const hostDue = !this.host || now - this.hostAt > HOST_REFRESH_MS;
    const [gpu, host, runtime] = await Promise.all([
      this.probe.poll(),
      hostDue ? readHostInfo(this.opts.dataDir).catch((err: Error) => this.hostFallback(err)) : Promise.resolve(this.host!),
      hostDue ? this.detectRuntime() : Promise.resolve(this.runtime),
    ]);
    this.gpu = gpu;
    if (hostDue) ((this.host = host), (this.hostAt = now), (this.runtime = runtime));
    if (this.stopped) return;
    const inventory = this.current();
    for (const fn of this.listeners) fn(inventory);
  }

  private async detectRuntime(): Promise<RuntimeInfo> {
    const engine = await detectDockerEngine();
    const kind = this.opts.runtime ?? (engine ? 'docker' : 'process');
    if (kind === 'docker' && !engine) this.opts.log.warn('IK_RUNTIME=docker but no Docker engine answers');
    return {
      kind,
      docker_version: engine?.version ?? null,
      nvidia_runtime: engine?.nvidiaRuntime ?? false,
      cdi: engine?.cdi ?? false,
      gpu_mode: kind === 'docker' ? dockerGpuMode(this.opts.dockerGpuMode, engine) : null,
      images: kind === 'docker' ? (engine?.images ?? []) : [],
      image_map: this.opts.imageMap,
    };
  }

  private hostFallback(err: Error): HostInfo {
    this.opts.log.warn({ err: err.message }, 'reading host facts failed');
    return this.host ?? { hostname: 'unknown', os: process.platform, arch: process.arch, cpu_cores: 0, memory_total_mib: 0, disk_free_mib: null };
  }
}

/**
 * How containers get GPUs: IK_DOCKER_GPU_MODE when set (set to `none`, the GPUs count as usable: the engine's
 * default runtime is nvidia, or a test box has none); otherwise the NVIDIA runtime, then CDI; null when neither.
 */
export function dockerGpuMode(configured: GpuMode | undefined, engine: DockerEngineInfo | null): GpuMode | null {
  if (configured) return configured;
  if (engine?.nvidiaRuntime) return 'nvidia';
  if (engine?.cdi) return 'cdi';
  return null;
}

/** The parts of an inventory that are not usage samples: when they change, the agent sends a full inventory. */
export function inventoryFingerprint(inv: Inventory): string {
  return JSON.stringify({
    runtime: inv.runtime,
    driver: inv.gpu_driver_version,
    cuda: inv.cuda_version,
    error: inv.gpu_error?.code ?? null,
    gpus: inv.gpus.map((g) => [g.uuid, g.index, g.name, g.memory_total_mib, g.compute_capability, g.mig_mode, g.mig_devices]),
    host: [inv.host.hostname, inv.host.os, inv.host.cpu_cores, inv.host.memory_total_mib],
  });
}
