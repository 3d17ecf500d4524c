// Control messages of the agent tunnel: JSON text frames, one zod discriminated union on `type`, shared by both ends.
import { z } from 'zod';
import { gpuErrorSchema, gpuUsageSchema, inventorySchema } from '../inventory.ts';
import {
  logsCancelSchema,
  logsChunkSchema,
  logsEndSchema,
  logsReadSchema,
  pullProgressSchema,
  replicaReportSchema,
  replicaStartSchema,
  replicaStatusSchema,
  replicaStopSchema,
  replySchema,
} from './replicas.ts';

const workerId = z.string().regex(/^wrk_[A-Za-z0-9]{8,64}$/, 'a worker id (wrk_…)');
const workerName = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-", starting with a letter or digit');

export const helloSchema = z.strictObject({
  type: z.literal('hello'),
  protocol_version: z.number().int().positive(),
  agent_version: z.string().min(1).max(64),
  worker_id: workerId.optional(),
  name: workerName,
  inventory: inventorySchema,
  /** Replicas the agent already runs (adopted after a restart), so the hub adopts them too. */
  replicas: z.array(replicaReportSchema).max(256).default([]),
});

export const heartbeatSchema = z.strictObject({
  type: z.literal('heartbeat'),
  seq: z.number().int().nonnegative(),
  gpus: z.array(gpuUsageSchema).max(64),
  gpu_error: gpuErrorSchema.nullable(),
  /** Every replica the agent runs, with its state: the hub repairs any difference from what it wants. */
  replicas: z.array(replicaReportSchema).max(256).default([]),
});

export const inventoryUpdateSchema = z.strictObject({
  type: z.literal('inventory'),
  inventory: inventorySchema,
});

export const goAwayCodes = ['protocol_error', 'shutdown', 'replaced', 'worker_deleted', 'credential_revoked', 'heartbeat_timeout'] as const;
export type GoAwayCode = (typeof goAwayCodes)[number];

export const goAwaySchema = z.strictObject({
  type: z.literal('go_away'),
  code: z.enum(goAwayCodes),
  message: z.string().max(2000),
});

export const hubConfigSchema = z.strictObject({
  heartbeat_interval_ms: z.number().int().positive(),
  inventory_interval_ms: z.number().int().positive(),
  ping_interval_ms: z.number().int().positive(),
  restart_backoff_base_ms: z.number().int().positive().default(10_000),
});
export type HubConfigForAgent = z.infer<typeof hubConfigSchema>;

export const welcomeSchema = z.strictObject({
  type: z.literal('welcome'),
  worker_id: workerId,
  /** Present once, when a join token was exchanged for this worker's credential. */
  credential: z.string().startsWith('ik_agent_').optional(),
  heartbeat_interval_ms: z.number().int().positive(),
  config: hubConfigSchema,
});

export const rejectCodes = [
  'invalid_token',
  'token_revoked',
  'token_expired',
  'credential_revoked',
  'worker_deleted',
  'name_in_use',
  'protocol_version',
  'protocol_error',
] as const;
export type RejectCode = (typeof rejectCodes)[number];

export const rejectSchema = z.strictObject({
  type: z.literal('reject'),
  code: z.enum(rejectCodes),
  message: z.string().max(2000),
});

const agentOnly = [helloSchema, heartbeatSchema, inventoryUpdateSchema, replicaStatusSchema, pullProgressSchema, logsChunkSchema, logsEndSchema] as const;
const hubOnly = [welcomeSchema, rejectSchema, replicaStartSchema, replicaStopSchema, logsReadSchema, logsCancelSchema] as const;

export const controlMessageSchema = z.discriminatedUnion('type', [...agentOnly, ...hubOnly, goAwaySchema, replySchema]);
export type ControlMessage = z.infer<typeof controlMessageSchema>;

/** What an agent may send; anything else from an agent is a protocol error. */
export const agentMessageSchema = z.discriminatedUnion('type', [...agentOnly, goAwaySchema, replySchema]);
export type AgentMessage = z.infer<typeof agentMessageSchema>;

/** What the hub may send. */
export const hubMessageSchema = z.discriminatedUnion('type', [...hubOnly, goAwaySchema, replySchema]);
export type HubMessage = z.infer<typeof hubMessageSchema>;

export type Hello = z.infer<typeof helloSchema>;
export type Heartbeat = z.infer<typeof heartbeatSchema>;
export type Welcome = z.infer<typeof welcomeSchema>;
export type Reject = z.infer<typeof rejectSchema>;
export type GoAway = z.infer<typeof goAwaySchema>;

/** Largest control message either side accepts; a bigger text frame is refused by the socket itself. */
export const MAX_CONTROL_MESSAGE_BYTES = 1024 * 1024;

/** Close codes used after go_away or reject (4000–4999 are free for applications). */
export const closeCodes = {
  protocolError: 4002,
  rejected: 4003,
  shutdown: 4004,
  replaced: 4005,
  helloTimeout: 4008,
} as const;

export type ParseResult<T> = { ok: true; message: T } | { ok: false; error: string };

/** Parses one text frame against a schema, turning JSON and schema errors into one readable line. */
export function parseControlMessage<T>(schema: z.ZodType<T>, text: string): ParseResult<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, error: 'message is not valid JSON' };
  }
  const result = schema.safeParse(raw);
  if (result.success) return { ok: true, message: result.data };
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  const type = typeof raw === 'object' && raw !== null && 'type' in raw ? JSON.stringify((raw as { type: unknown }).type) : 'none';
  return { ok: false, error: `invalid message (type ${type})${where}: ${issue?.message ?? 'does not match the protocol'}` };
}
