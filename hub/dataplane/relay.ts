// One relayed HTTP exchange: a tunnel stream to the replica's agent carries the request and the response as HTTP/1.1
// bytes. Succeeds once response headers arrive; fails "before the first byte" (the caller may retry elsewhere) when the
// agent refuses the stream or the backend connection breaks before answering.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
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
  // Streams are kept alive between requests (see StreamPool): the backend keeps its connection open too.
  out.connection = 'keep-alive';
  return out;
}

/**
 * Keep-alive for the tunnel: one pool per replica and tunnel, whose "sockets" are streams. An idle stream is reused
 * by the next request, so neither the SYN/ACK round trip nor the agent's TCP connect to the backend is paid again.
 */
export class StreamPool extends HttpAgent {
  constructor(
    private readonly session: AgentSession,
    private readonly replica: RoutableReplica,
  ) {
    // Idle streams are closed after 4 s: well under the engines' own keep-alive timeouts (uvicorn's is 5 s).
    super({ keepAlive: true, keepAliveMsecs: 1000, maxFreeSockets: 256, timeout: 4000, scheduling: 'lifo' });
  }

  override createConnection(): Duplex {
    return this.session.openStream({ replica_id: this.replica.id, kind: 'http', method: '*', path: '*', headers: {} });
  }
}

/** The stream pools of every replica, per tunnel (a new tunnel of the same worker starts new pools). */
export class StreamPools {
  private readonly bySession = new WeakMap<AgentSession, Map<string, StreamPool>>();

  get(session: AgentSession, replica: RoutableReplica): StreamPool {
    let pools = this.bySession.get(session);
    if (!pools) this.bySession.set(session, (pools = new Map()));
    let pool = pools.get(replica.id);
    if (!pool) pools.set(replica.id, (pool = new StreamPool(session, replica)));
    return pool;
  }
}

/** Sends the request to one replica through its agent's tunnel (on a pooled stream when one is idle). */
export function attemptRelay(opts: {
  pool: StreamPool;
  method: string;
  path: string;
  headers: OutgoingHttpHeaders;
  body: Buffer | null;
  /** The client went away: the attempt ends at once (and a started upstream request is aborted). */
  signal?: AbortSignal;
}): Promise<Attempt> {
  return new Promise((resolve) => {
    let settled = false;
    let upstream: ReturnType<typeof httpRequest>;
    try {
      upstream = httpRequest({ method: opts.method, path: opts.path, headers: opts.headers, agent: opts.pool });
    } catch (err) {
      return resolve({ ok: false, reason: err instanceof Error ? err.message : String(err), retryable: true });
    }
    const onAbort = () => upstream.destroy(new Error('the client went away'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    upstream.on('response', (response) => {
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ ok: true, response, abort: () => upstream.destroy() });
    });
    upstream.on('error', (err) => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      const refused = err instanceof StreamResetError && err.beforeAccept;
      resolve({ ok: false, reason: refused ? `the worker could not reach the replica: ${err.reason}` : `the backend connection failed: ${err.message}`, retryable: !opts.signal?.aborted });
    });
    if (opts.signal?.aborted) return onAbort();
    upstream.end(opts.body ?? undefined);
  });
}
