// One request of the WebSocket message protocol, relayed with the HTTP path's rules (key and route checks, balancing,
// retries before the first byte, usage injection, metering) and answered as start → chunk… → end, or error. It reads
// the backend's answer only as fast as the client's socket takes it: paused, it stops granting tunnel window.
import type { IncomingMessage } from 'node:http';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';
import type { Clock } from '../../shared/clock.ts';
import type { Logger } from '../../shared/logger.ts';
import { isRecord } from '../../shared/spec/policies.ts';
import type { TaskType } from '../../shared/spec/backends.ts';
import type { AgentSessions } from '../tunnel/session.ts';
import { EJECT_MS, MAX_RETRIES, type Admitted, type DataPlane } from './data-plane.ts';
import { DataPlaneError } from './openai-error.ts';
import { forwardedHeaders } from './relay.ts';
import { prepareBody, type PreparedBody } from './request-body.ts';
import type { RouteEntry } from './routing.ts';
import { usageOf, type Usage } from './sse-tap.ts';
import { syncRoutes, upstreamPath } from './task-routes.ts';
import { errorMessage, normalizeRoute, type ErrorObject, type RequestMessage, type ServerMessage } from './ws-messages.ts';
import { openUpstream, readBody } from './ws-upstream.ts';

export interface WsDeps {
  dataPlane: DataPlane;
  sessions: AgentSessions;
  clock: Clock;
  log: Logger;
  config: { requestTimeoutMs: number; maxMessageBytes: number };
}

/** What a request needs of the socket it came on. */
export interface ClientChannel {
  /** The upgrade request: its key (header or subprotocol) and address authenticate every request of the socket. */
  readonly req: IncomingMessage;
  readonly project: string;
  readonly workload: string;
  send(msg: ServerMessage): boolean;
  /** Calls `resume` once the socket's send buffer has room again (at once when it has). */
  whenWritable(resume: () => void): void;
}

/** A non-streamed body is sent as one message: larger ones are refused rather than held in memory. */
const WHOLE_BODY_LIMIT = 16 * 1024 * 1024;
/** One SSE event may not grow beyond this while the hub waits for its end. */
const SSE_EVENT_LIMIT = 4 * 1024 * 1024;

interface Outcome {
  status: number;
  replicaId: string | null;
  firstByteAt: number | null;
  usage: Usage | null;
}

export class WsRequest {
  private readonly controller = new AbortController();
  /** Why the request stopped early (cancel, timeout, socket gone); the reply says so instead of `end`. */
  private stopped: DataPlaneError | null = null;
  private terminated = false;
  /** The backend's usage object, as it reported it, for `end`. */
  private usage: Record<string, unknown> | null = null;
  private readonly outcome: Outcome = { status: 500, replicaId: null, firstByteAt: null, usage: null };

  constructor(
    private readonly deps: WsDeps,
    private readonly channel: ClientChannel,
    private readonly msg: RequestMessage,
  ) {}

  get id(): string {
    return this.msg.id;
  }

  /** The client cancelled (it hears `error` with code `cancelled`), or its socket closed (it hears nothing). */
  cancel(why: 'client' | 'socket'): void {
    this.stop(
      why === 'client'
        ? new DataPlaneError(499, `request ${this.msg.id} was cancelled by the client`, 'invalid_request_error', 'cancelled')
        : new DataPlaneError(499, 'the client closed the socket', 'invalid_request_error', 'client_closed'),
    );
  }

  async run(): Promise<void> {
    const { deps, channel, msg, outcome } = this;
    const startedAt = deps.clock.now();
    const route = normalizeRoute(msg.route);
    const timeoutS = Math.round(deps.config.requestTimeoutMs / 1000);
    const timer = deps.clock.setTimeout(
      () => this.stop(new DataPlaneError(504, `the request took longer than the request timeout (${timeoutS} s) and was cancelled`, 'timeout_error', 'request_timeout')),
      deps.config.requestTimeoutMs,
    );
    let admitted: Admitted | undefined;
    try {
      // Every request is admitted on its own: a revoked key or a rate limit applies on an open socket too.
      admitted = deps.dataPlane.admit(channel.req, channel.project, channel.workload);
      const { entry } = admitted;
      if (!syncRoutes[entry.spec.task_type].includes(route)) {
        throw new DataPlaneError(404, routeNotServedOverWs(entry.spec.task_type, route), 'not_found_error', 'route_not_served', {}, 'route');
      }
      const prepared = prepareBody(Buffer.from(JSON.stringify(msg.body)), 'application/json', route, entry.spec, entry.workload.slug);
      const load = deps.dataPlane.loads.of(entry.workload.id);
      load.requestStarted();
      try {
        const serving = await deps.dataPlane.serving(entry, this.controller.signal);
        await this.relay(serving.entry, route, prepared);
      } finally {
        load.requestEnded();
      }
      if (this.stopped) throw this.stopped;
    } catch (err) {
      const e = this.stopped ?? (err instanceof DataPlaneError ? err : this.internal(err));
      outcome.status = e.status;
      this.reply(errorMessage(msg.id, e));
    } finally {
      deps.clock.clearTimeout(timer);
      if (admitted) {
        deps.dataPlane.metering.record({
          projectId: admitted.entry.workload.project_id,
          projectSlug: admitted.entry.projectSlug,
          workloadId: admitted.entry.workload.id,
          workload: admitted.entry.workload.slug,
          keyPrefix: admitted.keyPrefix,
          route: `ws:${route}`,
          status: outcome.status,
          startedAt,
          endedAt: deps.clock.now(),
          firstByteAt: outcome.firstByteAt,
          promptTokens: outcome.usage?.prompt_tokens ?? null,
          completionTokens: outcome.usage?.completion_tokens ?? null,
          replicaId: outcome.replicaId,
        });
      }
    }
  }

  private stop(reason: DataPlaneError): void {
    if (this.stopped || this.terminated) return;
    this.stopped = reason;
    this.controller.abort();
  }

  /** Picks a replica, relays, retries on another before the backend answered. */
  private async relay(entry: RouteEntry, route: string, prepared: PreparedBody): Promise<void> {
    const { dataPlane, sessions, clock, log } = this.deps;
    const tried = new Set<string>();
    const failures: string[] = [];
    const rawHeaders = ['content-type', 'application/json', 'accept', prepared.streamed ? 'text/event-stream' : 'application/json'];
    for (let attempt = 0; attempt <= MAX_RETRIES; attempt++) {
      const replica = dataPlane.pickReplica(entry, tried, prepared.affinityKey, prepared.model);
      if (!replica) break;
      tried.add(replica.id);
      const session = sessions.get(replica.workerId);
      if (!session) continue;
      dataPlane.balancer.started(replica.id);
      try {
        const upstream = await openUpstream({
          session,
          replica,
          kind: 'http',
          method: 'POST',
          path: upstreamPath(route),
          headers: forwardedHeaders(rawHeaders, replica.port, prepared.body, this.channel.req.socket.remoteAddress),
          body: prepared.body,
          signal: this.controller.signal,
        });
        if (!upstream.ok) {
          if (upstream.cancelled) return;
          failures.push(`${replica.id}: ${upstream.reason}`);
          log.warn({ replicaId: replica.id, workload: entry.workload.slug, reason: upstream.reason }, 'relay attempt failed; trying another replica');
          dataPlane.balancer.eject(replica.id, clock.now() + EJECT_MS);
          continue;
        }
        if (upstream.kind !== 'response') {
          upstream.socket.destroy();
          throw new DataPlaneError(502, 'the backend switched protocols on a plain request', 'api_error', 'upstream_protocol_error');
        }
        this.outcome.replicaId = replica.id;
        this.outcome.status = upstream.response.statusCode ?? 502;
        await this.answer(upstream.response, upstream.abort, replica.id, prepared.injectedUsage);
        return;
      } finally {
        dataPlane.balancer.finished(replica.id);
      }
    }
    const why = failures.length > 0 ? `: ${failures.join('; ')}` : '';
    throw new DataPlaneError(502, `no replica of ${entry.workload.slug} could take the request${why}`, 'api_error', 'upstream_unavailable', { 'retry-after': '5' });
  }

  /** Turns the backend's answer into messages: SSE events one by one, a JSON body whole, other bytes as base64. */
  private async answer(response: IncomingMessage, abort: () => void, replicaId: string, injectedUsage: boolean): Promise<void> {
    const signal = this.controller.signal;
    if (signal.aborted) abort();
    signal.addEventListener('abort', abort, { once: true });
    const status = response.statusCode ?? 502;
    const contentType = typeof response.headers['content-type'] === 'string' ? response.headers['content-type'] : null;
    const kind = /event-stream/i.test(contentType ?? '') ? 'sse' : /json/i.test(contentType ?? '') ? 'json' : 'other';
    const firstByte = () => (this.outcome.firstByteAt ??= this.deps.clock.now());
    try {
      this.reply({ type: 'start', id: this.msg.id, status, replica: replicaId, content_type: contentType });
      if (status >= 400 || kind === 'json') {
        response.once('data', firstByte);
        const body = await readBody(response, WHOLE_BODY_LIMIT);
        if (this.stopped) return;
        if (body === null) throw new DataPlaneError(502, `the backend's answer broke off or is larger than ${WHOLE_BODY_LIMIT} bytes (use HTTP for it)`, 'api_error', 'upstream_broken');
        if (status >= 400) return void this.reply({ type: 'error', id: this.msg.id, status, error: backendError(status, body) });
        const text = body.toString('utf8');
        let data: unknown = text;
        try {
          data = JSON.parse(text);
        } catch {
          // not JSON after all: the text goes as it is
        }
        this.outcome.usage = usageOf(data);
        if (isRecord(data) && isRecord(data.usage)) this.usage = data.usage;
        this.reply({ type: 'chunk', id: this.msg.id, data });
      } else {
        const sink = new ResponseSink(kind === 'sse' ? 'sse' : 'bytes', {
          firstByte,
          event: (event) => this.onEvent(event, injectedUsage),
          bytes: (chunk) => this.reply({ type: 'chunk', id: this.msg.id, data: chunk.toString('base64'), encoding: 'base64' }),
          whenWritable: (resume) => this.channel.whenWritable(resume),
        });
        try {
          await pipeline(response, sink);
        } catch (err) {
          if (this.stopped) return;
          if (err instanceof DataPlaneError) throw err;
          throw new DataPlaneError(502, 'the backend connection broke mid-response', 'api_error', 'upstream_broken');
        }
      }
      if (!this.stopped) this.reply({ type: 'end', id: this.msg.id, usage: this.usage });
    } finally {
      signal.removeEventListener('abort', abort);
    }
  }

  /** One SSE event: its data becomes a chunk, except `[DONE]` and the usage chunk the hub asked for itself. */
  private onEvent(event: string, injectedUsage: boolean): void {
    if (this.stopped) return;
    const text = sseData(event);
    if (text === null || text === '[DONE]') return;
    let data: unknown = text;
    try {
      data = JSON.parse(text);
    } catch {
      // not JSON: the text goes as it is
    }
    if (isRecord(data) && isRecord(data.usage)) {
      this.usage = data.usage;
      this.outcome.usage = usageOf(data);
      if (injectedUsage && Array.isArray(data.choices) && data.choices.length === 0) return;
    }
    this.reply({ type: 'chunk', id: this.msg.id, data });
  }

  /** Sends a message of this request; nothing follows its `end` or `error`. */
  private reply(msg: ServerMessage): void {
    if (this.terminated) return;
    if (msg.type === 'end' || msg.type === 'error') this.terminated = true;
    this.channel.send(msg);
  }

  private internal(err: unknown): DataPlaneError {
    this.deps.log.error({ err }, 'websocket data-plane request failed');
    return new DataPlaneError(500, 'internal error: the hub logged the details', 'api_error', 'internal_error');
  }
}

/** Consumes a response body, handing on SSE events or byte chunks; each write completes once the socket has room. */
class ResponseSink extends Writable {
  private pending = '';
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    private readonly kind: 'sse' | 'bytes',
    private readonly handlers: { firstByte(): void; event(event: string): void; bytes(chunk: Buffer): void; whenWritable(resume: () => void): void },
  ) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.handlers.firstByte();
    if (this.kind === 'bytes') {
      this.handlers.bytes(chunk);
    } else {
      const events = (this.pending + this.decoder.write(chunk)).split(/\r?\n\r?\n/);
      this.pending = events.pop() ?? '';
      for (const event of events) this.handlers.event(event);
      if (this.pending.length > SSE_EVENT_LIMIT) {
        return callback(new DataPlaneError(502, `the backend sent an SSE event larger than ${SSE_EVENT_LIMIT} bytes`, 'api_error', 'upstream_event_too_large'));
      }
    }
    this.handlers.whenWritable(() => callback());
  }

  override _final(callback: (err?: Error | null) => void): void {
    if (this.kind === 'sse') {
      const rest = this.pending + this.decoder.end();
      this.pending = '';
      if (rest.trim().length > 0) this.handlers.event(rest);
    }
    callback();
  }
}

/** The data of one SSE event (its `data:` lines joined), or null when it has none (a comment, a keep-alive). */
function sseData(event: string): string | null {
  const lines = event.split(/\r?\n/).filter((l) => l.startsWith('data:'));
  if (lines.length === 0) return null;
  return lines.map((l) => (l.startsWith('data: ') ? l.slice(6) : l.slice(5))).join('\n');
}

/** The backend's error answer as an OpenAI error object, keeping what it said. */
function backendError(status: number, body: Buffer): ErrorObject {
  const text = body.toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const fallbackType = status === 400 ? 'invalid_request_error' : status === 404 ? 'not_found_error' : status === 429 ? 'rate_limit_error' : 'api_error';
  const inner = isRecord(parsed) ? parsed.error : undefined;
  if (isRecord(inner) && typeof inner.message === 'string') {
    const code = inner.code;
    return {
      message: inner.message,
      type: typeof inner.type === 'string' ? inner.type : fallbackType,
      code: typeof code === 'string' || typeof code === 'number' ? code : null,
      param: typeof inner.param === 'string' ? inner.param : null,
    };
  }
  // FastAPI's {"detail": …}, Ollama's {"error": "…"}, or plain text.
  const said = isRecord(parsed) ? (parsed.detail ?? parsed.error) : undefined;
  const message = typeof said === 'string' ? said : said !== undefined ? JSON.stringify(said) : text.slice(0, 1000) || `the backend answered ${status}`;
  return { message, type: fallbackType, code: status, param: null };
}

function routeNotServedOverWs(taskType: TaskType, route: string): string {
  const served = syncRoutes[taskType];
  if (served.length === 0) return `this workload (task type ${taskType}) serves no route over the WebSocket: use its async routes over HTTP`;
  return `this workload (task type ${taskType}) does not serve ${JSON.stringify(route)}; over the WebSocket it serves: ${served.join(', ')}`;
}
