// The JSON message protocol of `/endpoint/{p}/{w}/v1/ws` (DESIGN §4.7): what a client may send (validated here) and
// what the hub answers. Several requests are in flight on one socket, told apart by the client's `id`.
import { z } from 'zod';
import { DataPlaneError } from './openai-error.ts';

/** Requests one socket may have in flight at once; more are refused with an error message. */
export const MAX_IN_FLIGHT_PER_SOCKET = 64;
/** Room for the message envelope around a body as large as the HTTP data plane accepts. */
export const ENVELOPE_BYTES = 64 * 1024;

const idSchema = z.string().min(1).max(128);

const requestMessageSchema = z.object({
  type: z.literal('request'),
  id: idSchema,
  /** A data-plane route as in the HTTP URL after `/v1/`, e.g. `chat/completions`. */
  route: z.string().min(1).max(256),
  /** The request body the HTTP route would take (JSON). */
  body: z.record(z.string(), z.unknown()),
});
const cancelMessageSchema = z.object({ type: z.literal('cancel'), id: idSchema });

export type RequestMessage = z.infer<typeof requestMessageSchema>;
export type CancelMessage = z.infer<typeof cancelMessageSchema>;
export type ClientMessage = RequestMessage | CancelMessage;

/** The OpenAI error object; a backend's own error is passed on as it said it (its `code` may be a number). */
export interface ErrorObject {
  message: string;
  type: string;
  code: string | number | null;
  param: string | null;
}

export type ServerMessage =
  | { type: 'start'; id: string; status: number; replica: string; content_type: string | null }
  /** `data`: one SSE event's data (parsed JSON, or the text), a whole JSON body, or base64 bytes of any other body. */
  | { type: 'chunk'; id: string; data: unknown; encoding?: 'base64' }
  | { type: 'end'; id: string; usage: Record<string, unknown> | null }
  /** `id` is null when the message that failed named none; `status` is the HTTP status the same failure would have. */
  | { type: 'error'; id: string | null; status: number; error: ErrorObject };

export type ParsedMessage = { ok: true; message: ClientMessage } | { ok: false; id: string | null; error: DataPlaneError };

export function parseClientMessage(text: string): ParsedMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return invalid(null, 'invalid_json', `the message is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return invalid(null, 'invalid_message', 'a message is a JSON object with "type" ("request" or "cancel") and "id"');
  }
  const fields = new Map(Object.entries(raw));
  const id = idSchema.safeParse(fields.get('id'));
  const replyId = id.success ? id.data : null;
  const type = fields.get('type');
  if (type !== 'request' && type !== 'cancel') {
    const named = typeof type === 'string' ? `unknown message type ${JSON.stringify(type.slice(0, 64))}` : 'the message has no "type"';
    return invalid(replyId, 'unknown_message_type', `${named}: send "request" or "cancel"`);
  }
  if (!id.success) {
    return invalid(null, 'missing_id', `a ${type} message needs an "id": a string of 1 to 128 characters that names the request on this socket`);
  }
  const parsed = (type === 'request' ? requestMessageSchema : cancelMessageSchema).safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `"${issue.path.join('.')}": ` : '';
    const hint = type === 'request' ? ' (a request is {"type":"request","id","route","body":{…}})' : '';
    return invalid(replyId, 'invalid_message', `${where}${issue?.message ?? 'invalid message'}${hint}`, issue?.path.join('.') || null);
  }
  return { ok: true, message: parsed.data };
}

/** The route as the HTTP URL has it after `/v1/`: a leading `/` or `/v1/` is forgiven. */
export function normalizeRoute(route: string): string {
  return route.replace(/^\/+/, '').replace(/^v1\//, '').replace(/\/+$/, '');
}

export function errorMessage(id: string | null, err: DataPlaneError): ServerMessage {
  return { type: 'error', id, status: err.status, error: { message: err.message, type: err.type, code: err.code, param: err.param } };
}

function invalid(id: string | null, code: string, message: string, param: string | null = null): ParsedMessage {
  return { ok: false, id, error: new DataPlaneError(400, message, 'invalid_request_error', code, {}, param) };
}
