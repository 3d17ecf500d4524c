// What an agent reports about its box: host, container runtime and GPUs (the worker object's fields, snake_case).
import { z } from 'zod';

/** Known reasons why a box reports no GPUs; other codes may appear for failures we have not seen before. */
export const gpuErrorCodes = [
  'DRIVER_NOT_LOADED',
  'DRIVER_MISMATCH',
  'NVIDIA_SMI_MISSING',
  'NVIDIA_SMI_TIMEOUT',
  'NVIDIA_SMI_FAILED',
  'NVIDIA_SMI_UNEXPECTED_OUTPUT',
  'NO_DEVICES',
] as const;
export type GpuErrorCode = (typeof gpuErrorCodes)[number];

export const gpuErrorSchema = z.strictObject({
  code: z.string().min(1).max(64),
  message: z.string().max(2000),
});
export type GpuError = z.infer<typeof gpuErrorSchema>;

const mib = z.number().int().nonnegative().nullable();

export const migDeviceSchema = z.strictObject({
  uuid: z.string().min(1).max(128),
  profile: z.string().max(64).nullable(),
  memory_total_mib: mib,
});
export type MigDevice = z.infer<typeof migDeviceSchema>;

export const gpuSchema = z.strictObject({
  index: z.number().int().nonnegative(),
  uuid: z.string().min(1).max(128),
  name: z.string().max(256).nullable(),
  memory_total_mib: mib,
  memory_used_mib: mib,
  memory_free_mib: mib,
  utilization_pct: z.number().min(0).max(100).nullable(),
  temperature_c: z.number().min(-100).max(200).nullable(),
  compute_capability: z.string().max(16).nullable(),
  pci_bus_id: z.string().max(64).nullable(),
  mig_mode: z.enum(['enabled', 'disabled']).nullable(),
  mig_devices: z.array(migDeviceSchema).max(64),
});
export type Gpu = z.infer<typeof gpuSchema>;

/** The part of a GPU that changes from one sample to the next; sent in every heartbeat. */
export const gpuUsageSchema = gpuSchema.pick({
  uuid: true,
  memory_used_mib: true,
  memory_free_mib: true,
  utilization_pct: true,
  temperature_c: true,
});
export type GpuUsage = z.infer<typeof gpuUsageSchema>;

export const hostSchema = z.strictObject({
  hostname: z.string().max(256),
  os: z.string().max(256),
  arch: z.string().max(32),
  cpu_cores: z.number().int().nonnegative(),
  memory_total_mib: z.number().int().nonnegative(),
  disk_free_mib: z.number().int().nonnegative().nullable(),
});
export type HostInfo = z.infer<typeof hostSchema>;

export const gpuModes = ['nvidia', 'cdi', 'none'] as const;
export type GpuMode = (typeof gpuModes)[number];

export const runtimeInfoSchema = z.strictObject({
  kind: z.enum(['docker', 'process']),
  docker_version: z.string().max(64).nullable(),
  nvidia_runtime: z.boolean(),
  cdi: z.boolean(),
  /** How containers get GPUs (IK_DOCKER_GPU_MODE or detected); null: this runtime cannot give GPUs to containers. */
  gpu_mode: z.enum(gpuModes).nullable().default(null),
  /** Images present on the box (docker), so placement can prefer a worker that need not pull. */
  images: z.array(z.string().max(512)).max(1000).default([]),
  /** The agent's IK_IMAGE_MAP (backend → image template), so the hub knows which image a backend means there. */
  image_map: z.record(z.string().max(32), z.string().max(512)).default({}),
});
export type RuntimeInfo = z.infer<typeof runtimeInfoSchema>;

export const inventorySchema = z.strictObject({
  host: hostSchema,
  runtime: runtimeInfoSchema,
  gpu_driver_version: z.string().max(64).nullable(),
  cuda_version: z.string().max(16).nullable(),
  gpu_error: gpuErrorSchema.nullable(),
  gpus: z.array(gpuSchema).max(64),
});
export type Inventory = z.infer<typeof inventorySchema>;

/** The GPU side of an inventory: what one nvidia-smi poll produces. */
export type GpuInventory = Pick<Inventory, 'gpu_driver_version' | 'cuda_version' | 'gpu_error' | 'gpus'>;

export function usageOf(gpu: Gpu): GpuUsage {
  return {
    uuid: gpu.uuid,
    memory_used_mib: gpu.memory_used_mib,
    memory_free_mib: gpu.memory_free_mib,
    utilization_pct: gpu.utilization_pct,
    temperature_c: gpu.temperature_c,
  };
}
