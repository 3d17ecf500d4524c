// Shapes of the admin API's resources as clients see them (snake_case on the wire); the OpenAPI document uses them too.
import { z } from 'zod';
import { normalizedWorkloadSpecSchema } from './spec/workload-spec.ts';
import { adapterSourceSchema } from './spec/adapters.ts';
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
  /** While an image or model is pulled: the latest progress the agent reported. */
  progress: z.object({ status: z.string(), percent: z.number().nullable() }).optional(),
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
  runtime: runtimeInfoSchema.omit({ images: true, image_map: true }),
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

export const slugSchema = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'a slug is 1–63 lowercase letters, digits and "-", starting and ending with a letter or digit');

export const projectViewSchema = z.object({ slug: z.string(), name: z.string(), created_at: z.string() });
export type ProjectView = z.infer<typeof projectViewSchema>;
export const projectCreateSchema = z.strictObject({ slug: slugSchema, name: z.string().min(1).max(200).optional() });

/** Control tokens (ik_sdk_) and data keys (ik_live_) share the listing shape: masked to their prefix. */
const credentialViewFields = {
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  project: z.string(),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  last_used_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
};

export const controlTokenViewSchema = z.object(credentialViewFields);
export type ControlTokenView = z.infer<typeof controlTokenViewSchema>;
export const controlTokenCreatedSchema = controlTokenViewSchema.extend({
  secret: z.string().describe('the token itself; shown only in this response'),
});
export const controlTokenCreateSchema = z.strictObject({
  name: z.string().min(1).max(100).optional(),
  expires_in_s: z.number().int().positive().max(10 * 365 * 86_400).optional(),
});

export const dataKeyViewSchema = z.object({
  ...credentialViewFields,
  workload: z.string(),
  rate_limit_per_minute: z.number().int().nullable(),
});
export type DataKeyView = z.infer<typeof dataKeyViewSchema>;
export const dataKeyCreatedSchema = dataKeyViewSchema.extend({
  secret: z.string().describe('the key itself; shown only in this response'),
});
export const dataKeyCreateSchema = z.strictObject({
  name: z.string().min(1).max(100).optional(),
  rate_limit_per_minute: z.number().int().positive().max(1_000_000).optional(),
  expires_in_s: z.number().int().positive().max(10 * 365 * 86_400).optional(),
});

/** A LoRA adapter on a workload: requests whose `model` is `name` are served by it. */
export const adapterViewSchema = z.object({
  name: z.string().describe("what clients put in the request's model field"),
  source: z.string().describe('what the backend loads: a Hugging Face repo id or a path on the worker'),
  workload: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type AdapterView = z.infer<typeof adapterViewSchema>;
export const adapterPutSchema = z.strictObject({
  source: adapterSourceSchema.describe('a Hugging Face repo id (org/sql-lora) or a path on the worker (/models/loras/sql)'),
});

export const onDriftModes = ['reconcile', 'fail', 'ignore'] as const;
/** Response header of ensure(): created, unchanged, reconciled or ignored. */
export const ENSURE_OUTCOME_HEADER = 'x-ik-ensure';
export type OnDriftMode = (typeof onDriftModes)[number];

/** What GET adds to a workload's spec: its lifecycle, generation, replicas, and why a replica is pending. */
const workloadStatusShape = {
  project: z.string(),
  state: z.enum(['creating', 'active', 'scheduled', 'inactive', 'degraded', 'failed']),
  desired_state: z.enum(['active', 'inactive']),
  generation: z.number().int(),
  desired_replicas: z.number().int().describe('what the policy asks for now (autoscaling: the last decision; scheduled: 0 outside its time)'),
  deactivated_by: z.enum(['hand', 'timeout']).nullable().describe('inactive only: by hand it stays off; by its inactive timeout the next request wakes it'),
  schedule: z
    .object({ open: z.boolean(), opens_at: z.string().nullable(), closes_at: z.string().nullable() })
    .optional()
    .describe('scheduled only: whether its time is now, the next start when closed and the end of the run'),
  adapters: z.array(z.object({ name: z.string(), source: z.string() })).describe('LoRA adapters served on its replicas (kept while inactive)'),
  replicas: z.array(replicaViewSchema),
  placement: z.string().nullable().describe('why a replica is pending, in plain language; null when nothing waits'),
  created_at: z.string(),
  updated_at: z.string(),
};
const [fixedSpec, scheduledSpec, autoscalingSpec] = normalizedWorkloadSpecSchema.options;
export const workloadViewSchema = z.discriminatedUnion('execution_policy', [
  fixedSpec.extend(workloadStatusShape),
  scheduledSpec.extend(workloadStatusShape),
  autoscalingSpec.extend(workloadStatusShape),
]);
export type WorkloadView = z.infer<typeof workloadViewSchema>;
