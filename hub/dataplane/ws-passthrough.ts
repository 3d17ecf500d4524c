// Raw WebSocket relaying for any other path under /endpoint/{p}/{w}/v1/… (a backend's realtime route): the client's
// upgrade request goes to a replica through a `ws` tunnel stream, the backend's 101 goes back, then bytes flow both
// ways untouched — frames, extensions and the close handshake are the two ends' business.
import { STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { EJECT_MS, MAX_RETRIES, type Admitted } from './data-plane.ts';
import { DataPlaneError } from './openai-error.ts';
import { forwardedHeaders } from './relay.ts';
import { openUpstream, readBody } from './ws-upstream.ts';
import type { WsDeps } from './ws-request.ts';

/** A refused upgrade's body is passed on up to this size. */
const REFUSAL_BODY_LIMIT = 64 * 1024;
/** How a browser passes the data key: as one of the offered subprotocols. */
export const KEY_PROTOCOL_PREFIX = 'ik.key.';

export interface PassthroughTarget {
  /** The route after /v1/ (for metering), and the backend's path with the query. */
  route: string;
  path: string;
}

/**
 * Relays one upgrade. `track` registers the client socket and the tunnel stream once they are joined, so a hub
 * shutdown can end them; it returns an untrack function.
 */
export async function relayWebSocket(
  deps: WsDeps,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  admitted: Admitted,
  target: PassthroughTarget,
  track: (sockets: [Duplex, Duplex]) => () => void,
): Promise<void> {
  const { dataPlane, sessions, clock, log } = deps;
  const { entry } = admitted;
  const startedAt = clock.now();
  let status = 502;
  let replicaId: string | null = null;
  // Waiting for the backend's answer ends when the client leaves, or after the request timeout.
  const gone = new AbortController();
  const onGone = () => gone.abort();
  socket.once('close', onGone);
  let timedOut = false;
  const timer = clock.setTimeout(() => ((timedOut = true), gone.abort()), deps.config.requestTimeoutMs);
  // In flight for the autoscaler from the upgrade to the socket's end (a long session keeps its replica alive).
  const load = dataPlane.loads.of(entry.workload.id);
  load.requestStarted();
  let ended = false;
  const record = () => {
    if (!ended) (ended = true), load.requestEnded();
    dataPlane.metering.record({
      projectId: entry.workload.project_id,
      projectSlug: entry.projectSlug,
      workloadId: entry.workload.id,
      workload: entry.workload.slug,
      keyPrefix: admitted.keyPrefix,
      route: `ws:${target.route}`,
      status,
      startedAt,
      endedAt: clock.now(),
      firstByteAt: null,
      promptTokens: null,
      completionTokens: null,
      replicaId,
    });
  };
  try {
    const live = (await dataPlane.serving(entry, gone.signal)).entry;
    const tried = new Set<string>();
    const failures: string[] = [];
    for (let attempt = 0; attempt <= MAX_RETRIES; attempt++) {
      const replica = dataPlane.pickReplica(live, tried, undefined, undefined);
      if (!replica) break;
      tried.add(replica.id);
      const session = sessions.get(replica.workerId);
      if (!session) continue;
      dataPlane.balancer.started(replica.id);
      // The replica counts as busy for as long as the joined socket is open.
      let joined = false;
      try {
        const upstream = await openUpstream({
          session,
          replica,
          kind: 'ws',
          method: 'GET',
          path: target.path,
          headers: upgradeHeaders(req, replica.port),
          body: null,
          signal: gone.signal,
        });
        if (!upstream.ok) {
          if (upstream.cancelled && timedOut) {
            throw new DataPlaneError(504, `the backend did not answer the upgrade within the request timeout (${Math.round(deps.config.requestTimeoutMs / 1000)} s)`, 'timeout_error', 'request_timeout');
          }
          if (upstream.cancelled) return void (status = 499);
          failures.push(`${replica.id}: ${upstream.reason}`);
          log.warn({ replicaId: replica.id, workload: entry.workload.slug, reason: upstream.reason }, 'websocket relay attempt failed; trying another replica');
          dataPlane.balancer.eject(replica.id, clock.now() + EJECT_MS);
          continue;
        }
        replicaId = replica.id;
        if (upstream.kind === 'response') {
          // The backend refused the upgrade: the client hears its status and (short) body.
          status = upstream.response.statusCode ?? 502;
          const body = (await readBody(upstream.response, REFUSAL_BODY_LIMIT)) ?? Buffer.alloc(0);
          upstream.abort();
          const type = upstream.response.headers['content-type'];
          writeHead(socket, status, { 'content-type': typeof type === 'string' ? type : 'application/octet-stream', 'x-ik-replica': replica.id }, body);
          return;
        }
        status = 101;
        joined = true;
        socket.off('close', onGone);
        const untrack = track([socket, upstream.socket]);
        join(socket, head, upstream.socket, upstream.head, switchingHead(upstream.response, replica.id, offeredKeyProtocol(req)), () => {
          dataPlane.balancer.finished(replica.id);
          untrack();
          record();
        });
        return;
      } finally {
        if (!joined) dataPlane.balancer.finished(replica.id);
      }
    }
    const why = failures.length > 0 ? `: ${failures.join('; ')}` : '';
    throw new DataPlaneError(502, `no replica of ${entry.workload.slug} could take the WebSocket${why}`, 'api_error', 'upstream_unavailable', { 'retry-after': '5' });
  } catch (err) {
    const e = err instanceof DataPlaneError ? err : new DataPlaneError(500, 'internal error: the hub logged the details', 'api_error', 'internal_error');
    if (!(err instanceof DataPlaneError)) log.error({ err }, 'websocket relay failed');
    status = e.status;
    refuseUpgrade(socket, e);
  } finally {
    clock.clearTimeout(timer);
    socket.off('close', onGone);
    if (status !== 101) record();
  }
}

/** Answers an upgrade request with an error in the OpenAI shape, and closes the connection. */
export function refuseUpgrade(socket: Duplex, err: DataPlaneError): void {
  const body = Buffer.from(JSON.stringify({ error: { message: err.message, type: err.type, code: err.code, param: err.param } }));
  writeHead(socket, err.status, { 'content-type': 'application/json', ...err.headers }, body);
}

/** The data key a client offered as a subprotocol (`ik.key.<ik_live_…>`), if any. */
export function offeredKeyProtocol(req: IncomingMessage): string | undefined {
  return offeredProtocols(req).find((p) => p.startsWith(KEY_PROTOCOL_PREFIX) && p.length > KEY_PROTOCOL_PREFIX.length);
}

function offeredProtocols(req: IncomingMessage): string[] {
  const header = req.headers['sec-websocket-protocol'];
  return (header ?? '').split(',').map((p) => p.trim()).filter((p) => p.length > 0);
}

/** The client's upgrade request as the backend sees it: no credentials (the key protocol included), its own Host. */
function upgradeHeaders(req: IncomingMessage, port: number): OutgoingHttpHeaders {
  const headers = forwardedHeaders(req.rawHeaders, port, null, req.socket.remoteAddress);
  delete headers['sec-websocket-protocol'];
  const protocols = offeredProtocols(req).filter((p) => !p.startsWith(KEY_PROTOCOL_PREFIX));
  if (protocols.length > 0) headers['sec-websocket-protocol'] = protocols.join(', ');
  headers.connection = 'Upgrade';
  headers.upgrade = 'websocket';
  return headers;
}

/** The backend's 101 as the client gets it; a browser that offered only the key protocol needs it selected. */
function switchingHead(response: IncomingMessage, replicaId: string, keyProtocol: string | undefined): string {
  const lines = ['HTTP/1.1 101 Switching Protocols'];
  let protocolSelected = false;
  for (let i = 0; i < response.rawHeaders.length; i += 2) {
    const name = response.rawHeaders[i]!;
    if (name.toLowerCase() === 'sec-websocket-protocol') protocolSelected = true;
    lines.push(`${name}: ${response.rawHeaders[i + 1]!}`);
  }
  if (!protocolSelected && keyProtocol) lines.push(`Sec-WebSocket-Protocol: ${keyProtocol}`);
  lines.push(`x-ik-replica: ${replicaId}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Completes the client's upgrade and joins the two byte streams; `onEnd` runs once, when both are closed. */
function join(client: Duplex, clientHead: Buffer, upstream: Duplex, upstreamHead: Buffer, head101: string, onEnd: () => void): void {
  let open = 2;
  const closed = () => {
    if (--open === 0) onEnd();
  };
  if (client.destroyed) {
    // The client left while the backend was answering: its 'close' has been and gone.
    upstream.once('close', () => onEnd());
    upstream.destroy();
    return;
  }
  client.once('close', closed);
  upstream.once('close', closed);
  // Either side failing ends both: the backend sees its connection close, the client its socket.
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.once('close', () => upstream.destroy());
  upstream.once('close', () => client.destroy());
  client.write(head101);
  if (upstreamHead.length > 0) client.write(upstreamHead);
  if (clientHead.length > 0) upstream.write(clientHead);
  // pipe() carries backpressure both ways: a slow reader stops the other side (the tunnel by its window).
  client.pipe(upstream);
  upstream.pipe(client);
}

function writeHead(socket: Duplex, status: number, headers: Record<string, string>, body: Buffer): void {
  if (socket.destroyed) return;
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`];
  for (const [name, value] of Object.entries({ ...headers, 'content-length': String(body.length), connection: 'close' })) lines.push(`${name}: ${value}`);
  socket.end(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), body]));
}
