// The execution policies' configs (fixed, scheduled, autoscaling): wire schemas with their rules, defaults and normal form.
import { z } from 'zod';
import { parseWindow, validateCron, validateTimeZone, windowExample } from './schedule.ts';
import { describeValue } from './wire-errors.ts';

export const executionPolicies = ['fixed', 'scheduled', 'autoscaling'] as const;
export type ExecutionPolicy = (typeof executionPolicies)[number];

export const autoscalingMetrics = ['concurrency', 'rps', 'backend'] as const;
export type AutoscalingMetric = (typeof autoscalingMetrics)[number];

/**
 * Per-replica targets when a config gives none: 16 requests in flight; 4 requests/s (16 in flight at ~4 s each,
 * a chat completion's order of magnitude); for a backend metric, 2 (for vllm:num_requests_waiting: scale out once
 * about two requests per replica wait in vLLM's own queue).
 */
export const defaultAutoscalingTargets = { concurrency: 16, rps: 4, backend: 2 } as const satisfies Record<AutoscalingMetric, number>;
export const defaultBackendMetric = 'vllm:num_requests_waiting';
export const defaultScheduledDurationS = 3600;
export const defaultScheduledTimeZone = 'UTC';

const maxSeconds = 30 * 24 * 3600;
const maxReplicas = 1000;
/** Refinements that must report even when the object around them already has problems: all problems at once. */
const always = { when: () => true };

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const int = (min: number, max: number) => z.number().int().min(min).max(max);
const seconds = (min: number) => int(min, maxSeconds);
const usdPerHour = z.number().positive().max(1_000_000);

export const workerIdPattern = /^wrk_[A-Za-z0-9]{8,64}$/;
export const workerIdSchema = z
  .string()
  .regex(workerIdPattern, { error: (iss) => `${describeValue(iss.input)} is not a worker id: "wrk_" and 8 to 64 letters or digits` });

// fixed

export const fixedConfigSchema = z.strictObject({
  replicas: int(0, maxReplicas).default(1).describe('replicas kept running; 0 keeps the workload but runs none'),
  inactive_timeout_s: seconds(1).optional().describe('deactivate after this long with no request; the next request wakes it'),
});
export const fixedConfigOutputSchema = z.object({
  replicas: z.number().int(),
  inactive_timeout_s: z.number().int().optional(),
});
export type FixedConfig = z.output<typeof fixedConfigOutputSchema>;

// scheduled

export const scheduledConfigSchema = z
  .strictObject({
    cron: z
      .string()
      .superRefine((cron, ctx) => {
        const error = validateCron(cron, 'UTC');
        if (error) ctx.addIssue({ code: 'custom', message: error });
      })
      .optional()
      .describe('5-field cron (minute hour day-of-month month day-of-week): when each run starts'),
    duration_s: seconds(1).optional().describe(`with cron: how long each run lasts (default ${defaultScheduledDurationS})`),
    timezone: z
      .string()
      .superRefine((tz, ctx) => {
        const error = validateTimeZone(tz);
        if (error) ctx.addIssue({ code: 'custom', message: error });
      })
      .optional()
      .describe(`with cron: the IANA zone the cron reads in (default ${defaultScheduledTimeZone})`),
    window: z
      .string()
      .superRefine((window, ctx) => {
        const parsed = parseWindow(window);
        if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.error });
      })
      .optional()
      .describe(`weekly window, e.g. "${windowExample}"; instead of cron`),
    replicas: int(1, maxReplicas).default(1).describe('replicas run inside the schedule'),
  })
  .superRefine((c, ctx) => {
    if (!isRecord(c)) return;
    const hasCron = c.cron !== undefined;
    const hasWindow = c.window !== undefined;
    if (hasCron && hasWindow) {
      ctx.addIssue({ code: 'custom', message: 'give either cron (with optional duration_s and timezone) or window, not both' });
    } else if (!hasCron && !hasWindow) {
      ctx.addIssue({
        code: 'custom',
        message: `give either cron (e.g. {"cron": "0 2 * * *", "duration_s": 3600}) or window (e.g. {"window": "${windowExample}"})`,
      });
    } else if (hasWindow) {
      if (c.duration_s !== undefined) ctx.addIssue({ code: 'custom', path: ['duration_s'], message: 'goes with cron only: a window ends at its own end time' });
      if (c.timezone !== undefined)
        ctx.addIssue({ code: 'custom', path: ['timezone'], message: `goes with cron only: a window names its zone at its end ("${windowExample}")` });
    }
  }, always);

const cronFormSchema = z.object({ cron: z.string(), duration_s: z.number().int(), timezone: z.string(), replicas: z.number().int() });
const windowFormSchema = z.object({ window: z.string(), replicas: z.number().int() });
export const scheduledConfigOutputSchema = z.union([cronFormSchema, windowFormSchema]);
export type ScheduledConfig = z.output<typeof scheduledConfigOutputSchema>;

export function normalizeScheduledConfig(c: z.output<typeof scheduledConfigSchema>): ScheduledConfig {
  if (c.window !== undefined) return { window: c.window, replicas: c.replicas };
  if (c.cron === undefined) throw new Error('a scheduled config without cron or window passed validation');
  return { cron: c.cron, duration_s: c.duration_s ?? defaultScheduledDurationS, timezone: c.timezone ?? defaultScheduledTimeZone, replicas: c.replicas };
}

// autoscaling

const gpuPoolSchema = z
  .array(z.string().trim().min(1).max(128))
  .min(1)
  .max(64)
  .describe('GPU names exactly as nvidia-smi prints them, e.g. "NVIDIA A100-SXM4-80GB"');

export const cloudPoolSchema = z.strictObject({
  gpu_pool: gpuPoolSchema,
  max_hourly_cost_usd: usdPerHour.optional().describe('a second cost cap; the lower of the two wins'),
  max_instances: int(1, maxReplicas).optional().describe('a second bound on replicas; the lower of this and max_workers wins'),
  allowed_cuda_versions: z
    .array(z.string().regex(/^\d{1,2}\.\d{1,2}$/, { error: (iss) => `${describeValue(iss.input)} is not a CUDA version such as "12.4" or "13.0"` }))
    .min(1)
    .max(16)
    .optional()
    .describe('admit a worker whose driver supports one of these (driver CUDA ≥ it, same major)'),
});

const uniqueWorkerIds = z
  .array(workerIdSchema)
  .min(1)
  .max(maxReplicas)
  .superRefine((ids, ctx) => {
    ids.forEach((id, i) => {
      if (ids.indexOf(id) !== i) ctx.addIssue({ code: 'custom', path: [i], message: `${id} is listed twice` });
    });
  });

export const workersSchema = z.discriminatedUnion(
  'source',
  [
    z.strictObject({ source: z.literal('cloud'), cloud_pool: cloudPoolSchema }),
    z.strictObject({ source: z.literal('private'), private_worker_ids: uniqueWorkerIds }),
  ],
  {
    error: (iss) =>
      iss.code === 'invalid_union'
        ? `must be "cloud" (with cloud_pool) or "private" (with private_worker_ids), got ${describeValue(isRecord(iss.input) ? iss.input.source : iss.input)}`
        : undefined,
  },
);
export type Workers = z.output<typeof workersSchema>;

export const autoscalingConfigSchema = z
  .strictObject({
    min_workers: int(0, maxReplicas).describe('replicas kept even when idle (0: scale to zero)'),
    max_workers: int(1, maxReplicas).describe('the most replicas; at least max(1, min_workers)'),
    max_hourly_cost_usd: usdPerHour.optional().describe('required when workers.source is cloud: the most this workload may cost per hour'),
    workers: workersSchema.optional().describe('where replicas run; omitted: the shared pool, any GPU'),
    gpu_pool: gpuPoolSchema.optional().describe('legacy: the same as workers: {source: "cloud", cloud_pool: {gpu_pool}}'),
    metric: z.enum(autoscalingMetrics).default('concurrency'),
    target: z
      .number()
      .positive()
      .max(1_000_000)
      .optional()
      .describe(
        `per-replica target of the metric (default: concurrency ${defaultAutoscalingTargets.concurrency}, ` +
          `rps ${defaultAutoscalingTargets.rps}, backend ${defaultAutoscalingTargets.backend})`,
      ),
    backend_metric: z
      .string()
      .regex(/^[A-Za-z_:][A-Za-z0-9_:]*$/, { error: (iss) => `${describeValue(iss.input)} is not a Prometheus metric name (e.g. ${defaultBackendMetric})` })
      .optional()
      .describe(`with metric "backend": the backend's metric to scale on (default ${defaultBackendMetric})`),
    upscale_delay_s: seconds(0).default(0),
    downscale_delay_s: seconds(0).default(300),
    scale_to_zero_delay_s: seconds(0).default(600),
    cold_start_timeout_s: seconds(1).default(300).describe('how long a request waits for a replica to start'),
    max_queue: int(0, 100_000).default(100).describe('requests that may wait for a cold start; more get 503'),
  })
  .superRefine((c, ctx) => {
    if (!isRecord(c)) return;
    const { min_workers: min, max_workers: max } = c;
    if (typeof min === 'number' && typeof max === 'number' && max >= 1 && max < min)
      ctx.addIssue({ code: 'custom', path: ['max_workers'], message: `must be at least min_workers (${min}), got ${max}` });
    if (c.gpu_pool !== undefined && c.workers !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['gpu_pool'],
        message: 'give workers or the legacy flat gpu_pool, not both: put the GPU names in workers.cloud_pool.gpu_pool',
      });
    const cloud = (isRecord(c.workers) && c.workers.source === 'cloud') || c.gpu_pool !== undefined;
    if (cloud && c.max_hourly_cost_usd === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['max_hourly_cost_usd'],
        message:
          'is required when workers come from the cloud pool: a number > 0, the most this workload may cost per hour ' +
          '(cloud_pool.max_hourly_cost_usd is an optional second cap)',
      });
    if (c.backend_metric !== undefined && c.metric !== 'backend')
      ctx.addIssue({ code: 'custom', path: ['backend_metric'], message: `is read only with metric "backend" (metric is ${describeValue(c.metric)})` });
  }, always);

export const autoscalingConfigOutputSchema = z.object({
  min_workers: z.number().int(),
  max_workers: z.number().int(),
  max_hourly_cost_usd: z.number().optional(),
  workers: workersSchema.optional().describe('omitted: the shared pool, any GPU, no cost cap beyond max_hourly_cost_usd'),
  metric: z.enum(autoscalingMetrics),
  target: z.number(),
  backend_metric: z.string().optional().describe('present when metric is "backend"'),
  upscale_delay_s: z.number().int(),
  downscale_delay_s: z.number().int(),
  scale_to_zero_delay_s: z.number().int(),
  cold_start_timeout_s: z.number().int(),
  max_queue: z.number().int(),
});
export type AutoscalingConfig = z.output<typeof autoscalingConfigOutputSchema>;

/** The config an autoscaling spec gets when it gives none: 0‥1 replicas on the shared pool, any GPU, no cost cap. */
export const omittedAutoscalingConfig = { min_workers: 0, max_workers: 1 } as const;

export function normalizeAutoscalingConfig(c: z.output<typeof autoscalingConfigSchema>): AutoscalingConfig {
  const { gpu_pool, workers, target, backend_metric, max_hourly_cost_usd, ...rest } = c;
  const placed = workers ?? (gpu_pool ? { source: 'cloud' as const, cloud_pool: { gpu_pool } } : undefined);
  return {
    ...rest,
    ...(max_hourly_cost_usd !== undefined ? { max_hourly_cost_usd } : {}),
    ...(placed ? { workers: placed } : {}),
    target: target ?? defaultAutoscalingTargets[c.metric],
    ...(c.metric === 'backend' ? { backend_metric: backend_metric ?? defaultBackendMetric } : {}),
  };
}

// keys, for messages about unknown ones

const policyKeys: Record<ExecutionPolicy, readonly string[]> = {
  fixed: Object.keys(fixedConfigSchema.shape),
  scheduled: Object.keys(scheduledConfigSchema.shape),
  autoscaling: Object.keys(autoscalingConfigSchema.shape),
};

/** The keys of `policy`'s config, and where keys from elsewhere belong (other policies, nested objects). */
export function policyConfigKeys(policy: ExecutionPolicy): { known: readonly string[]; elsewhere: Record<string, string> } {
  const elsewhere: Record<string, string> = {};
  for (const other of executionPolicies) {
    if (other === policy) continue;
    for (const key of policyKeys[other]) {
      if (!policyKeys[policy].includes(key))
        elsewhere[key] ??= `${key} belongs to the ${other} policy, and execution_policy is ${policy}`;
    }
  }
  if (policy === 'autoscaling') {
    elsewhere.replicas = 'autoscaling bounds replicas with min_workers / max_workers';
    elsewhere.allowed_cuda_versions = 'it goes in workers.cloud_pool; the legacy flat gpu_pool cannot carry it';
    const inWorkers = 'it goes in workers ({"source": "cloud", "cloud_pool": {…}} or {"source": "private", "private_worker_ids": […]})';
    for (const key of ['cloud_pool', 'source', 'private_worker_ids']) elsewhere[key] = inWorkers;
    elsewhere.max_instances = 'it goes in workers.cloud_pool';
  }
  return { known: policyKeys[policy], elsewhere };
}

export const workersKeys = {
  cloud: ['source', 'cloud_pool'],
  private: ['source', 'private_worker_ids'],
  cloud_pool: Object.keys(cloudPoolSchema.shape),
} as const;
