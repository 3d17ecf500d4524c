// One exchange with a replica through its agent's tunnel, for the WebSocket side of the data plane: like attemptRelay,
// but cancellable before the response headers (a client's cancel must stop a backend that has not answered yet) and
// able to carry an HTTP Upgrade, whose switched stream then carries WebSocket frames untouched.
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { StreamResetError, type MuxStream } from '../../shared/protocol/mux.ts';
import type { AgentSession } from '../tunnel/session.ts';
import type { RoutableReplica } from './routing.ts';

export type UpstreamAttempt =
  | { ok: true; kind: 'response'; response: IncomingMessage; abort: () => void }
  /** The backend switched protocols: `socket` is the tunnel stream, `head` what it sent after its 101 headers. */
  | { ok: true; kind: 'upgrade'; response: IncomingMessage; socket: Duplex; head: Buffer }
  | { ok: false; reason: string; cancelled: boolean };

export function openUpstream(opts: {
  session: AgentSession;
  replica: RoutableReplica;
  kind: 'http' | 'ws';
  method: string;
  path: string;
  headers: OutgoingHttpHeaders;
  body: Buffer | null;
  /** Aborting it before the answer resets the tunnel stream: the backend sees its connection close. */
  signal: AbortSignal;
}): Promise<UpstreamAttempt> {
  return new Promise((resolve) => {
    if (opts.signal.aborted) return resolve({ ok: false, reason: 'cancelled', cancelled: true });
    let stream: MuxStream;
    try {
      stream = opts.session.openStream({ replica_id: opts.replica.id, kind: opts.kind, method: opts.method, path: opts.path, headers: {} });
    } catch (err) {
      return resolve({ ok: false, reason: err instanceof Error ? err.message : String(err), cancelled: false });
    }
    let settled = false;
    const settle = (attempt: UpstreamAttempt) => {
      if (settled) return;
      settled = true;
      opts.signal.removeEventListener('abort', onAbort);
      resolve(attempt);
    };
    const upstream = httpRequest({ method: opts.method, path: opts.path, headers: opts.headers, createConnection: () => stream as never });
    const onAbort = () => {
      upstream.destroy();
      stream.destroy();
      settle({ ok: false, reason: 'cancelled', cancelled: true });
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });
    upstream.on('response', (response) => settle({ ok: true, kind: 'response', response, abort: () => upstream.destroy() }));
    upstream.on('upgrade', (response, socket, head) => {
      // node's client drops its own error listener on upgrade: a reset from here on must not go unhandled.
      socket.on('error', () => socket.destroy());
      settle({ ok: true, kind: 'upgrade', response, socket, head });
    });
    upstream.on('error', (err) => {
      const refused = err instanceof StreamResetError && err.beforeAccept;
      settle({ ok: false, reason: refused ? `the worker could not reach the replica: ${err.reason}` : `the backend connection failed: ${err.message}`, cancelled: false });
    });
    upstream.end(opts.body ?? undefined);
  });
}

/** Reads a whole (small) response body; null when it is longer than `limit` bytes or breaks off. */
export function readBody(response: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        response.destroy();
        return resolve(null);
      }
      chunks.push(chunk);
    });
    response.once('end', () => resolve(Buffer.concat(chunks)));
    response.once('error', () => resolve(null));
    response.once('close', () => resolve(response.complete ? Buffer.concat(chunks) : null));
  });
}
