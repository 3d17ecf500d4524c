// What a stream's SYN carries: the replica to reach and the request being relayed (for the agent's checks and logs;
// the stream itself then carries the HTTP/1.1 exchange byte for byte, so bodies, SSE and WebSocket upgrades pass as is).
import { z } from 'zod';
import { replicaIdSchema } from './replicas.ts';

export const streamTargetSchema = z.strictObject({
  replica_id: replicaIdSchema,
  kind: z.enum(['http', 'ws']),
  method: z.string().max(16),
  path: z.string().max(8192),
  headers: z.record(z.string(), z.string()).default({}),
});
export type StreamTarget = z.infer<typeof streamTargetSchema>;

export function encodeTarget(target: StreamTarget): Buffer {
  return Buffer.from(JSON.stringify(target));
}

export function decodeTarget(payload: Buffer): { ok: true; target: StreamTarget } | { ok: false; error: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, error: 'the SYN payload is not JSON' };
  }
  const parsed = streamTargetSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, error: `the SYN payload is not a stream target: ${parsed.error.issues[0]?.message ?? 'invalid'}` };
  return { ok: true, target: parsed.data };
}
