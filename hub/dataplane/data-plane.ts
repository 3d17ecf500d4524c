// The data plane: /endpoint/{project}/{workload}/v1/… — authenticate the data key, check the route against the task
// type, pick a replica, relay through its agent's tunnel, retry elsewhere before the first byte, meter the result.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../../shared/clock.ts';
import type { Logger } from '../../shared/logger.ts';
import { allowedBy } from '../../shared/cidr.ts';
import type { Store } from '../store/index.ts';
import type { AgentSessions } from '../tunnel/session.ts';
import { Activator, type ActivatorConfig, type Serving } from './activator.ts';
import { Balancer } from './balancer.ts';
import type { WorkloadLoads } from '../control/workload-loads.ts';
import { KeyAuth, presentedKey } from './key-auth.ts';
import { Metering } from './metering.ts';
import { DataPlaneError, sendDataPlaneError } from './openai-error.ts';
import { RateLimiter } from './rate-limit.ts';
import { attemptRelay, DROPPED_RESPONSE_HEADERS, forwardedHeaders, StreamPools } from './relay.ts';
import { prepareBody } from './request-body.ts';
import { RoutingTable, type RouteEntry, type RoutableReplica } from './routing.ts';
import { ResponseTap } from './sse-tap.ts';
import { routeNotServed, syncRoutes, upstreamPath } from './task-routes.ts';
import type { Registry } from 'prom-client';

export interface DataPlaneConfig extends ActivatorConfig {
  requestTimeoutMs: number;
  maxStreamsPerAgent: number;
}

/** Retries on another replica, before the first byte reached the client. */
export const MAX_RETRIES = 2;
/** A replica whose relay failed sits out this long, unless it reports ready sooner. */
export const EJECT_MS = 30_000;
/** An adapter load reads weights: it may take a while, but not forever. */
const ADMIN_CALL_TIMEOUT_MS = 120_000;

export interface DataPlaneDeps {
  store: Store;
  sessions: AgentSessions;
  clock: Clock;
  log: Logger;
  registry: Registry;
  config: DataPlaneConfig;
  /** Where requests are counted for the autoscaler and the idle timers. */
  loads: WorkloadLoads;
  /** Activates a workload that its inactive timeout deactivated. */
  wake: (workloadId: string) => void;
  /** The time schedules are read at. */
  scheduleNow: () => number;
}

/** An authenticated request for a known workload, before any replica is chosen. */
export interface Admitted {
  entry: RouteEntry;
  keyPrefix: string;
  keyId: string;
  rateLimitPerMinute: number | null;
}

export class DataPlane {
  readonly routing: RoutingTable;
  readonly balancer = new Balancer();
  readonly pools = new StreamPools();
  readonly keys: KeyAuth;
  readonly metering: Metering;
  readonly activator: Activator;
  readonly loads: WorkloadLoads;
  private readonly limiter = new RateLimiter();

  constructor(private readonly deps: DataPlaneDeps) {
    const now = () => deps.clock.now();
    this.routing = new RoutingTable({ store: deps.store, now });
    this.loads = deps.loads;
    this.activator = new Activator({ routing: this.routing, clock: deps.clock, wake: deps.wake, scheduleNow: deps.scheduleNow, config: deps.config });
    this.keys = new KeyAuth({ store: deps.store, now });
    this.metering = new Metering({ store: deps.store, clock: deps.clock, log: deps.log, registry: deps.registry, inflight: () => this.inflight() });
  }

  /** A replica reported ready (again): it is back in rotation, and requests waiting for its workload go now. */
  replicaReady(replicaId: string): void {
    this.balancer.readmit(replicaId);
    const workloadId = this.deps.store.replicas.get(replicaId)?.workload_id;
    if (workloadId) {
      this.routing.invalidate(workloadId);
      this.activator.replicaReady(workloadId);
    }
  }

  /**
   * Authenticates a request for project/workload: the data key must be one of this workload's. A workload that does
   * not exist answers like a wrong key (401), so names cannot be probed. Also checks the workload's CIDR allowlist.
   */
  admit(req: IncomingMessage, project: string, workload: string): Admitted {
    const admitted = this.authenticate(req, project, workload);
    this.checkRateLimit(admitted);
    return admitted;
  }

  /** The key, the workload and its CIDR allowlist; not the rate limit (see checkRateLimit). */
  authenticate(req: IncomingMessage, project: string, workload: string): Admitted {
    const entry = this.routing.get(project, workload);
    const key = this.keys.authenticate(presentedKey(req.headers), entry?.workload.id ?? '');
    if (!entry) throw new DataPlaneError(401, 'invalid API key for this endpoint', 'authentication_error', 'invalid_api_key');
    const cidrs = entry.spec.allowed_cidrs;
    if (cidrs && !allowedBy(cidrs, req.socket.remoteAddress)) {
      throw new DataPlaneError(403, `your address ${req.socket.remoteAddress ?? ''} is not allowed to call this workload (allowed_cidrs)`, 'permission_error', 'address_not_allowed');
    }
    return { entry, keyPrefix: key.prefix, keyId: key.id, rateLimitPerMinute: key.rate_limit_per_minute };
  }

  /** Takes one request from the key's rate limit, or throws the 429 with Retry-After. */
  checkRateLimit(admitted: Admitted): void {
    const limit = admitted.rateLimitPerMinute;
    if (limit === null) return;
    const wait = this.limiter.take(admitted.keyId, limit, this.deps.clock.now());
    if (wait !== null) {
      throw new DataPlaneError(429, `rate limit of ${limit} requests per minute reached for this key: retry in ${wait} s`, 'rate_limit_error', 'rate_limit_exceeded', {
        'retry-after': String(wait),
      });
    }
  }

  /** One sync HTTP request; answers the client itself (errors in the OpenAI shape). */
  async handleHttp(req: IncomingMessage, res: ServerResponse, body: Buffer, project: string, workload: string, route: string, query: string): Promise<void> {
    const startedAt = this.deps.clock.now();
    let admitted: Admitted | undefined;
    let status = 500;
    let replicaId: string | null = null;
    let tap: ResponseTap | undefined;
    try {
      admitted = this.authenticate(req, project, workload);
      // Authenticated first, so a 429 is metered against its key like any answer.
      this.checkRateLimit(admitted);
      const { entry } = admitted;
      if (route === 'models' && req.method === 'GET') {
        status = 200;
        return this.sendModels(res, entry);
      }
      if (!syncRoutes[entry.spec.task_type].includes(route)) {
        throw new DataPlaneError(404, routeNotServed(entry.spec.task_type, route), 'not_found_error', 'route_not_served');
      }
      const prepared = prepareBody(body, req.headers['content-type'], route, entry.spec, entry.workload.slug);
      const path = `${upstreamPath(route)}${query}`;
      const load = this.deps.loads.of(entry.workload.id);
      // In flight from here to the end of the answer, cold-start wait included: that is what scales from zero.
      load.requestStarted();
      try {
        const serving = await this.serving(entry, res);
        const outcome = await this.relay(req, res, serving, path, prepared);
        status = outcome.status;
        replicaId = outcome.replicaId;
        tap = outcome.tap;
      } finally {
        load.requestEnded();
      }
    } catch (err) {
      const e = err instanceof DataPlaneError ? err : this.internal(err);
      status = e.status;
      sendDataPlaneError(res, e);
    } finally {
      if (admitted) {
        this.metering.record({
          projectId: admitted.entry.workload.project_id,
          projectSlug: admitted.entry.projectSlug,
          workloadId: admitted.entry.workload.id,
          workload: admitted.entry.workload.slug,
          keyPrefix: admitted.keyPrefix,
          route,
          status,
          startedAt,
          endedAt: this.deps.clock.now(),
          firstByteAt: tap?.firstByteAt ?? null,
          promptTokens: tap?.usage?.prompt_tokens ?? null,
          completionTokens: tap?.usage?.completion_tokens ?? null,
          replicaId,
        });
      }
    }
  }

  /**
   * A workload ready to take the request: at once when it has a ready replica, else after the activator's wait, which
   * ends early when the client leaves (`until`: the response it would get, or a signal).
   */
  serving(entry: RouteEntry, until?: ServerResponse | AbortSignal): Promise<Serving> | Serving {
    if (entry.replicas.length > 0 && entry.workload.desired_state === 'active' && entry.spec.execution_policy !== 'scheduled') return { entry, coldStart: false };
    if (!until || until instanceof AbortSignal) return this.activator.serving(entry, until);
    const res = until;
    const gone = new AbortController();
    const onClose = () => gone.abort();
    res.once('close', onClose);
    return this.activator.serving(entry, gone.signal).finally(() => res.off('close', onClose));
  }

  /** Picks a replica, relays, retries on another before the first byte; streams the answer to the client. */
  private async relay(
    req: IncomingMessage,
    res: ServerResponse,
    { entry, coldStart }: Serving,
    path: string,
    prepared: ReturnType<typeof prepareBody>,
  ): Promise<{ status: number; replicaId: string | null; tap: ResponseTap | undefined }> {
    const tried = new Set<string>();
    const failures: string[] = [];
    // A client that leaves before the answer starts cancels the attempt (and the backend's work) at once; so does the
    // request timeout, which covers the whole request, headers and body.
    const clientGone = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) clientGone.abort();
    };
    res.once('close', onClose);
    const deadlineAt = this.deps.clock.now() + this.deps.config.requestTimeoutMs;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      clientGone.abort();
    }, this.deps.config.requestTimeoutMs);
    try {
      return await this.attempts(req, res, entry, path, prepared, { tried, failures, signal: clientGone.signal, deadlineAt, timedOut: () => timedOut, onClose, coldStart });
    } finally {
      clearTimeout(timer);
    }
  }

  private async attempts(
    req: IncomingMessage,
    res: ServerResponse,
    entry: RouteEntry,
    path: string,
    prepared: ReturnType<typeof prepareBody>,
    run: { tried: Set<string>; failures: string[]; signal: AbortSignal; deadlineAt: number; timedOut: () => boolean; onClose: () => void; coldStart: boolean },
  ): Promise<{ status: number; replicaId: string | null; tap: ResponseTap | undefined }> {
    const { tried, failures, onClose, signal } = run;
    const giveUp = (replicaId: string | null) => {
      if (run.timedOut()) {
        this.deps.log.warn({ workload: entry.workload.slug }, 'request timed out before the backend answered; cancelled upstream');
        throw new DataPlaneError(504, `request timeout: the request took longer than ${this.deps.config.requestTimeoutMs / 1000} s (IK_REQUEST_TIMEOUT_S) and was cancelled upstream`, 'timeout_error', 'request_timeout');
      }
      return { status: 499, replicaId, tap: undefined };
    };
    for (let attempt = 0; attempt <= MAX_RETRIES; attempt++) {
      if (signal.aborted) return giveUp(null);
      const replica = this.pickReplica(entry, tried, prepared.affinityKey, prepared.model);
      if (!replica) break;
      tried.add(replica.id);
      const session = this.deps.sessions.get(replica.workerId)!;
      this.balancer.started(replica.id);
      let released = false;
      const release = () => {
        if (!released) (released = true), this.balancer.finished(replica.id);
      };
      const result = await attemptRelay({
        pool: this.pools.get(session, replica),
        method: req.method ?? 'GET',
        path,
        headers: forwardedHeaders(req.rawHeaders, replica.port, prepared.body, req.socket.remoteAddress),
        body: prepared.body,
        signal,
      });
      if (!result.ok) {
        release();
        if (signal.aborted) return giveUp(replica.id);
        failures.push(`${replica.id}: ${result.reason}`);
        this.deps.log.warn({ replicaId: replica.id, workload: entry.workload.slug, reason: result.reason }, 'relay attempt failed; trying another replica');
        this.balancer.eject(replica.id, this.deps.clock.now() + EJECT_MS);
        continue;
      }
      res.off('close', onClose);
      const upstream = result.response;
      const contentType = String(upstream.headers['content-type'] ?? '');
      const tap = new ResponseTap(/event-stream/i.test(contentType) ? 'sse' : /json/i.test(contentType) ? 'json' : 'other', prepared.injectedUsage, () => this.deps.clock.now());
      const headers: Record<string, string | string[]> = {};
      for (let i = 0; i < upstream.rawHeaders.length; i += 2) {
        const name = upstream.rawHeaders[i]!;
        if (DROPPED_RESPONSE_HEADERS.has(name.toLowerCase())) continue;
        // A body the hub filters (SSE without the injected usage chunk) has a length of its own.
        if (name.toLowerCase() === 'content-length' && tap.kind === 'sse') continue;
        const existing = headers[name];
        headers[name] = existing === undefined ? upstream.rawHeaders[i + 1]! : [...(Array.isArray(existing) ? existing : [existing]), upstream.rawHeaders[i + 1]!];
      }
      headers['x-ik-replica'] = replica.id;
      if (run.coldStart) headers['x-ik-cold-start'] = '1';
      res.writeHead(upstream.statusCode ?? 502, headers);
      await this.pipeResponse(upstream, tap, res, result.abort, entry, Math.max(0, run.deadlineAt - this.deps.clock.now()));
      release();
      return { status: upstream.statusCode ?? 502, replicaId: replica.id, tap };
    }
    const why = failures.length > 0 ? `: ${failures.join('; ')}` : '';
    throw new DataPlaneError(502, `no replica of ${entry.workload.slug} could take the request${why}`, 'api_error', 'upstream_unavailable', { 'retry-after': '5' });
  }

  /**
   * One POST to a replica's backend through its agent's tunnel, answered in full (adapter loads and unloads). Throws
   * when the replica's worker is not connected or the call breaks.
   */
  async callReplica(replica: RoutableReplica, path: string, body: unknown): Promise<{ status: number; body: string }> {
    const session = this.deps.sessions.get(replica.workerId);
    if (!session) throw new Error(`worker ${replica.workerId} is not connected`);
    const payload = Buffer.from(JSON.stringify(body));
    const result = await attemptRelay({
      pool: this.pools.get(session, replica),
      method: 'POST',
      path,
      headers: { host: `127.0.0.1:${replica.port}`, 'content-type': 'application/json', 'content-length': String(payload.length), connection: 'keep-alive' },
      body: payload,
      signal: AbortSignal.timeout(ADMIN_CALL_TIMEOUT_MS),
    });
    if (!result.ok) throw new Error(result.reason);
    const chunks: Buffer[] = [];
    for await (const chunk of result.response) chunks.push(chunk as Buffer);
    return { status: result.response.statusCode ?? 502, body: Buffer.concat(chunks).toString('utf8') };
  }

  /** A usable replica of the workload (its tunnel is up and has room), by the balancer's rules; undefined if none is left. */
  pickReplica(entry: RouteEntry, tried: Set<string>, affinityKey: string | undefined, model: string | undefined): RoutableReplica | undefined {
    const usable = entry.replicas.filter((r) => {
      const session = this.deps.sessions.get(r.workerId);
      return session !== undefined && session.openStreams < this.deps.config.maxStreamsPerAgent;
    });
    const adapter = model && model !== entry.spec.model ? model : undefined;
    return this.balancer.pick(usable, { exclude: tried, affinityKey, adapter }, this.deps.clock.now());
  }

  /** Streams the backend's answer to the client chunk by chunk; a client that leaves aborts the backend request. */
  private pipeResponse(upstream: IncomingMessage, tap: ResponseTap, res: ServerResponse, abort: () => void, entry: RouteEntry, remainingMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.deps.log.warn({ workload: entry.workload.slug }, 'request timed out; cancelling it upstream');
        abort();
        res.destroy();
      }, remainingMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      res.once('close', () => {
        if (!res.writableFinished) abort();
        done();
      });
      upstream.once('error', (err) => {
        this.deps.log.warn({ workload: entry.workload.slug, err: err.message }, 'the backend connection broke mid-response');
        res.destroy();
        done();
      });
      upstream.pipe(tap).pipe(res);
    });
  }

  /** The base model and its adapters, as vLLM lists them (an adapter's parent is the base model, its root the source). */
  private sendModels(res: ServerResponse, entry: RouteEntry): void {
    const created = Math.floor(this.deps.clock.now() / 1000);
    const base = { id: entry.spec.model, object: 'model', created, owned_by: 'ikhub', root: entry.spec.model, parent: null };
    const adapters = entry.adapters.map((a) => ({ id: a.name, object: 'model', created: Math.floor(Date.parse(a.created_at) / 1000), owned_by: 'ikhub', root: a.source, parent: entry.spec.model }));
    const body = JSON.stringify({ object: 'list', data: [base, ...adapters] });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  private internal(err: unknown): DataPlaneError {
    this.deps.log.error({ err }, 'data-plane request failed');
    return new DataPlaneError(500, 'internal error: the hub logged the details', 'api_error', 'internal_error');
  }

  private *inflight(): Iterable<[string, string, number]> {
    for (const [replicaId, n] of this.balancer.inflightByReplica()) {
      const replica = this.deps.store.replicas.get(replicaId);
      if (replica) yield [replica.slug, replicaId, n];
    }
  }
}
