// One relayed HTTP exchange: a tunnel stream to the replica's agent carries the request and the response as HTTP/1.1
// bytes. Succeeds once response headers arrive; fails "before the first byte" (the caller may retry elsewhere) when the
// agent refuses the stream or the backend connection breaks before answering.
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { MuxStream } from '../../shared/protocol/mux.ts';
import { StreamResetError } from '../../shared/protocol/mux.ts';
import type { AgentSession } from '../tunnel/session.ts';
import type { RoutableReplica } from './routing.ts';

export type Attempt =
  | { ok: true; response: IncomingMessage; abort: () => void }
  | { ok: false; reason: string; retryable: boolean };

/** Request headers that belong to this hop only (or carry the client's credentials): never forwarded. */
const DROPPED_REQUEST_HEADERS = new Set([
  'host',
  'authorization',
  'x-api-key',
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'expect',
]);

/** Response headers of the backend's hop, replaced by the hub's own framing. */
export const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'trailer', 'upgrade']);

export function forwardedHeaders(rawHeaders: string[], port: number, body: Buffer | null, clientIp: string | undefined): OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (DROPPED_REQUEST_HEADERS.has(name)) continue;
    const value = rawHeaders[i + 1]!;
    const existing = out[name];
    out[name] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  out.host = `127.0.0.1:${port}`;
  if (clientIp) out['x-forwarded-for'] = typeof out['x-forwarded-for'] === 'string' ? `${out['x-forwarded-for']}, ${clientIp}` : clientIp;
  if (body !== null) out['content-length'] = String(body.length);
  // One request per stream: the backend closes its side when it has answered.
  out.connection = 'close';
  return out;
}

/** Sends the request to one replica through its agent's tunnel. */
export function attemptRelay(opts: {
  session: AgentSession;
  replica: RoutableReplica;
  method: string;
  path: string;
  headers: OutgoingHttpHeaders;
  body: Buffer | null;
}): Promise<Attempt> {
  return new Promise((resolve) => {
    let stream: MuxStream;
    try {
      stream = opts.session.openStream({ replica_id: opts.replica.id, kind: 'http', method: opts.method, path: opts.path, headers: {} });
    } catch (err) {
      return resolve({ ok: false, reason: err instanceof Error ? err.message : String(err), retryable: true });
    }
    let settled = false;
    const upstream = httpRequest({ method: opts.method, path: opts.path, headers: opts.headers, createConnection: () => stream as never });
    upstream.on('response', (response) => {
      settled = true;
      resolve({ ok: true, response, abort: () => upstream.destroy() });
    });
    upstream.on('error', (err) => {
      if (settled) return;
      settled = true;
      const refused = err instanceof StreamResetError && err.beforeAccept;
      resolve({ ok: false, reason: refused ? `the worker could not reach the replica: ${err.reason}` : `the backend connection failed: ${err.message}`, retryable: true });
    });
    upstream.end(opts.body ?? undefined);
  });
}
