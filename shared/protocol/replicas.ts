// Replica messages of the tunnel: the hub asks an agent to start and stop replicas and to read their logs; the agent
// reports every state change and, in each heartbeat, the replicas it runs (so either side can repair a lost message).
import { z } from 'zod';
import { normalizedWorkloadSpecSchema } from '../spec/workload-spec.ts';

export const replicaIdSchema = z.string().regex(/^rep_[A-Za-z0-9]{8,64}$/, 'a replica id (rep_…)');
const requestId = z.string().min(1).max(64);

/** States an agent reports; `pending`, `draining`, `unknown` and `lost` are decided by the hub alone. */
export const agentReplicaStates = ['pulling', 'starting', 'ready', 'failed', 'stopped'] as const;
export type AgentReplicaState = (typeof agentReplicaStates)[number];

export const replicaReportSchema = z.strictObject({
  replica_id: replicaIdSchema,
  generation: z.number().int().positive(),
  state: z.enum(agentReplicaStates),
  port: z.number().int().min(1).max(65535).nullable(),
  runtime: z.enum(['docker', 'process']),
  container_id: z.string().max(128).nullable(),
  pid: z.number().int().positive().nullable(),
  restarts: z.number().int().nonnegative(),
  /** Why the replica is failed (or was restarted last), in words. */
  reason: z.string().max(2000).nullable(),
  /** The backend metric its workload autoscales on (metric "backend"), as last read from its /metrics. */
  metrics: z
    .record(z.string().regex(/^[A-Za-z_:][A-Za-z0-9_:]{0,127}$/, 'a Prometheus metric name'), z.number().finite())
    .refine((m) => Object.keys(m).length <= 8, 'at most 8 metrics')
    .optional(),
});
export type ReplicaReport = z.infer<typeof replicaReportSchema>;

/** What an agent needs to run one replica: the workload's full spec (env included) and where on the box. */
export const replicaLaunchSchema = z.strictObject({
  replica_id: replicaIdSchema,
  project: z.string().max(63),
  workload: z.string().max(63),
  generation: z.number().int().positive(),
  spec: normalizedWorkloadSpecSchema,
  gpu_uuids: z.array(z.string().min(1).max(128)).max(64),
  /** Milliseconds of the first restart delay after a failure (doubles, capped at 5 minutes). */
  restart_backoff_base_ms: z.number().int().positive(),
});
export type ReplicaLaunch = z.infer<typeof replicaLaunchSchema>;

export const replicaStartSchema = z.strictObject({ type: z.literal('replica.start'), id: requestId, replica: replicaLaunchSchema });
export const replicaStopSchema = z.strictObject({
  type: z.literal('replica.stop'),
  id: requestId,
  replica_id: replicaIdSchema,
  reason: z.string().max(500),
  grace_ms: z.number().int().nonnegative().max(600_000),
});
export const logsReadSchema = z.strictObject({
  type: z.literal('logs.read'),
  id: requestId,
  replica_id: replicaIdSchema,
  tail: z.number().int().positive().max(100_000).nullable(),
  since: z.string().max(64).nullable(),
  follow: z.boolean(),
});
export const logsCancelSchema = z.strictObject({ type: z.literal('logs.cancel'), id: requestId });

export const replyErrorSchema = z.strictObject({ code: z.string().max(64), message: z.string().max(2000) });
export const replySchema = z.strictObject({
  type: z.literal('reply'),
  reply_to: requestId,
  ok: z.boolean(),
  error: replyErrorSchema.optional(),
});

export const replicaStatusSchema = z.strictObject({
  type: z.literal('replica.status'),
  replica: replicaReportSchema,
  /** The last lines of the replica's log, when a failure is reported. */
  last_log: z.array(z.string().max(4000)).max(50).optional(),
});
export const pullProgressSchema = z.strictObject({
  type: z.literal('image.pull.progress'),
  replica_id: replicaIdSchema,
  image: z.string().max(512),
  status: z.string().max(500),
  /** 0–100 when the size is known. */
  percent: z.number().min(0).max(100).nullable(),
});
export const logsChunkSchema = z.strictObject({
  type: z.literal('logs.chunk'),
  reply_to: requestId,
  lines: z.array(z.string().max(16_384)).max(2000),
});
export const logsEndSchema = z.strictObject({ type: z.literal('logs.end'), reply_to: requestId, error: replyErrorSchema.optional() });

export type ReplicaStart = z.infer<typeof replicaStartSchema>;
export type ReplicaStop = z.infer<typeof replicaStopSchema>;
export type LogsRead = z.infer<typeof logsReadSchema>;
export type Reply = z.infer<typeof replySchema>;
export type ReplicaStatus = z.infer<typeof replicaStatusSchema>;
