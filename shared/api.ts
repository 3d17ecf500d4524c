// Shapes of the admin API's resources as clients see them (snake_case on the wire); the OpenAPI document uses them too.
import { z } from 'zod';
import { gpuErrorSchema, gpuSchema, hostSchema, runtimeInfoSchema } from './inventory.ts';

export const labelsSchema = z.record(
  z.string().min(1).max(63).regex(/^[A-Za-z0-9]([A-Za-z0-9._\/-]*[A-Za-z0-9])?$/, 'label keys are letters, digits, ".", "_", "-" and "/"'),
  z.string().max(256),
);

export const replicaStates = ['pending', 'pulling', 'starting', 'ready', 'draining', 'stopped', 'failed', 'unknown', 'lost'] as const;

export const replicaViewSchema = z.object({
  id: z.string(),
  workload: z.string(),
  generation: z.number().int(),
  worker_id: z.string().nullable(),
  gpu_uuids: z.array(z.string()),
  state: z.enum(replicaStates),
  port: z.number().int().nullable(),
  runtime: z.enum(['docker', 'process']).nullable(),
  container_id: z.string().nullable(),
  pid: z.number().int().nullable(),
  restarts: z.number().int(),
  last_error: z.string().nullable(),
  created_at: z.string(),
  ready_at: z.string().nullable(),
});
export type ReplicaView = z.infer<typeof replicaViewSchema>;

export const workerViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  project: z.string().nullable().describe('slug of the project that owns this private worker; null for the shared pool'),
  state: z.enum(['ready', 'disconnected', 'down']),
  cordoned: z.boolean(),
  draining: z.boolean(),
  labels: z.record(z.string(), z.string()),
  agent_version: z.string(),
  last_heartbeat_at: z.string().nullable(),
  host: hostSchema,
  runtime: runtimeInfoSchema,
  gpu_driver_version: z.string().nullable(),
  cuda_version: z.string().nullable(),
  gpu_error: gpuErrorSchema.nullable(),
  gpus: z.array(gpuSchema),
  gpu_hourly_cost_usd: z.number().nullable(),
  replicas: z.array(replicaViewSchema),
});
export type WorkerView = z.infer<typeof workerViewSchema>;

export const workerPatchSchema = z
  .strictObject({
    labels: labelsSchema.optional(),
    gpu_hourly_cost_usd: z.number().min(0).max(10_000).nullable().optional(),
  })
  .refine((v) => v.labels !== undefined || v.gpu_hourly_cost_usd !== undefined, {
    message: 'nothing to change: give labels and/or gpu_hourly_cost_usd',
  });

export const joinTokenViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  project: z.string().nullable().describe('workers that join with it become private to this project; null: shared pool'),
  labels: z.record(z.string(), z.string()),
  uses: z.number().int(),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  last_used_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
});
export type JoinTokenView = z.infer<typeof joinTokenViewSchema>;

export const joinTokenCreatedSchema = joinTokenViewSchema.extend({
  secret: z.string().describe('the join token itself; shown only in this response'),
  install_command: z.string().describe('the one-line install for a GPU box'),
});

export const joinTokenCreateSchema = z.strictObject({
  name: z.string().min(1).max(100).optional(),
  project: z.string().min(1).max(63).optional(),
  labels: labelsSchema.optional(),
  expires_in_s: z.number().int().positive().max(10 * 365 * 86_400).optional(),
});

export function listOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), next: z.string().nullable() });
}

export const errorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
});

export const healthSchema = z.object({ status: z.literal('ok'), version: z.string() });
