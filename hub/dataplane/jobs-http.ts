// The async-job routes of the data plane (DESIGN §4.6): `POST …/v1/async/{route}` stores a job and answers 202 once it
// is durable; `GET …/v1/async/{request_id}` answers the job's state and, when finished, its result or error.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../../shared/clock.ts';
import type { Logger } from '../../shared/logger.ts';
import { allowedBy } from '../../shared/cidr.ts';
import type { TaskType } from '../../shared/spec/backends.ts';
import type { Store } from '../store/index.ts';
import type { DataPlane, Admitted } from './data-plane.ts';
import { presentedKey } from './key-auth.ts';
import { renderJob } from './jobs-results.ts';
import { DataPlaneError, sendDataPlaneError } from './openai-error.ts';
import { forwardedHeaders } from './relay.ts';
import { prepareBody } from './request-body.ts';
import type { RouteEntry } from './routing.ts';
import { asyncRoutes } from './task-routes.ts';

export interface AsyncJobsDeps {
  dataPlane: DataPlane;
  store: Store;
  clock: Clock;
  log: Logger;
  /** Told of every new job. */
  dispatcher: { kick(): void };
  /** The hub's public URL (IK_PUBLIC_URL or derived), for response_location. */
  publicUrl: () => string;
  maxAttempts: number;
  retentionS: number;
}

/**
 * Request headers a stored job does not keep, besides what the relay never forwards (credentials, hop-by-hop). Without
 * accept-encoding the backend answers uncompressed, so a JSON result is stored as JSON.
 */
const UNKEPT_HEADERS = new Set(['host', 'connection', 'content-length', 'cookie', 'accept-encoding']);
const JOB_ID = /^job_[A-Za-z0-9]{1,64}$/;

export class AsyncJobsHttp {
  constructor(private readonly deps: AsyncJobsDeps) {}

  /** `rest` is the path after `v1/async/`: a route to submit to (POST) or a request id (GET). */
  handle(req: IncomingMessage, res: ServerResponse, body: Buffer, project: string, workload: string, rest: string, query: string): void {
    if (req.method === 'GET') return this.poll(req, res, project, workload, rest);
    if (req.method === 'POST') return this.submit(req, res, body, project, workload, rest, query);
    try {
      this.authenticate(req, project, workload);
      throw new DataPlaneError(405, `async/${rest} takes POST (submit a job) or GET (poll one)`, 'invalid_request_error', 'method_not_allowed', { allow: 'GET, POST' });
    } catch (err) {
      sendDataPlaneError(res, this.asDataPlaneError(err));
    }
  }

  private submit(req: IncomingMessage, res: ServerResponse, body: Buffer, project: string, workload: string, route: string, query: string): void {
    const { dataPlane, store, clock } = this.deps;
    const startedAt = clock.now();
    let admitted: Admitted | undefined;
    let status = 500;
    try {
      admitted = dataPlane.admit(req, project, workload);
      const { entry } = admitted;
      if (!asyncRoutes[entry.spec.task_type].includes(route)) {
        throw new DataPlaneError(404, asyncRouteNotServed(entry.spec.task_type, route), 'not_found_error', 'route_not_served');
      }
      const contentType = req.headers['content-type'] ?? null;
      const prepared = prepareBody(body, contentType ?? undefined, route, entry.spec, entry.workload.slug);
      if (prepared.streamed) {
        throw new DataPlaneError(400, 'an async job has one result and does not stream: leave out "stream": true (or call the sync route)', 'invalid_request_error', 'stream_not_supported', {}, 'stream');
      }
      const job = store.jobs.enqueue({
        projectId: entry.workload.project_id,
        workloadId: entry.workload.id,
        keyPrefix: admitted.keyPrefix,
        route,
        method: 'POST',
        query,
        contentType,
        headers: keptHeaders(req),
        body: prepared.body,
        maxAttempts: this.deps.maxAttempts,
      });
      this.deps.dispatcher.kick();
      const location = `${this.deps.publicUrl()}/endpoint/${encodeURIComponent(entry.projectSlug)}/${encodeURIComponent(entry.workload.slug)}/v1/async/${job.id}`;
      const answer = JSON.stringify({ request_id: job.id, status: 'queued', response_location: location });
      status = 202;
      res.writeHead(202, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer), location });
      res.end(answer);
    } catch (err) {
      const e = this.asDataPlaneError(err);
      status = e.status;
      sendDataPlaneError(res, e);
    } finally {
      if (admitted) {
        dataPlane.metering.record({
          projectId: admitted.entry.workload.project_id,
          projectSlug: admitted.entry.projectSlug,
          workloadId: admitted.entry.workload.id,
          workload: admitted.entry.workload.slug,
          keyPrefix: admitted.keyPrefix,
          route: `async:${route}`,
          status,
          startedAt,
          endedAt: clock.now(),
          firstByteAt: null,
          promptTokens: null,
          completionTokens: null,
          replicaId: null,
        });
      }
    }
  }

  /** A poll: the key must be one of this workload's, and the job this workload's (else 404). One primary-key read. */
  private poll(req: IncomingMessage, res: ServerResponse, project: string, workload: string, requestId: string): void {
    try {
      const entry = this.authenticate(req, project, workload);
      const job = JOB_ID.test(requestId) ? this.deps.store.jobs.get(requestId) : undefined;
      if (!job || job.workload_id !== entry.workload.id) {
        throw new DataPlaneError(
          404,
          `no async job ${requestId} on this workload (finished jobs are kept ${formatDuration(this.deps.retentionS)}; submit with POST async/{route})`,
          'not_found_error',
          'job_not_found',
        );
      }
      const answer = renderJob(job);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length, 'cache-control': 'no-store' });
      res.end(answer);
    } catch (err) {
      sendDataPlaneError(res, this.asDataPlaneError(err));
    }
  }

  /**
   * The key check of `DataPlane.admit` without its rate limit: polling is cheap, and a client that polls must not lock
   * itself out of submitting.
   */
  private authenticate(req: IncomingMessage, project: string, workload: string): RouteEntry {
    const { dataPlane } = this.deps;
    const entry = dataPlane.routing.get(project, workload);
    dataPlane.keys.authenticate(presentedKey(req.headers), entry?.workload.id ?? '');
    if (!entry) throw new DataPlaneError(401, 'invalid API key for this endpoint', 'authentication_error', 'invalid_api_key');
    const cidrs = entry.spec.allowed_cidrs;
    if (cidrs && !allowedBy(cidrs, req.socket.remoteAddress)) {
      throw new DataPlaneError(403, `your address ${req.socket.remoteAddress ?? ''} is not allowed to call this workload (allowed_cidrs)`, 'permission_error', 'address_not_allowed');
    }
    return entry;
  }

  private asDataPlaneError(err: unknown): DataPlaneError {
    if (err instanceof DataPlaneError) return err;
    this.deps.log.error({ err }, 'async job request failed');
    return new DataPlaneError(500, 'internal error: the hub logged the details', 'api_error', 'internal_error');
  }
}

/** The 404 text for an async route the task type does not serve: it lists those it does. */
export function asyncRouteNotServed(taskType: TaskType, route: string): string {
  const served = asyncRoutes[taskType].map((r) => `POST async/${r}`);
  return `this workload (task type ${taskType}) does not serve async/${route}; it serves: ${[...served, 'GET async/{request_id}'].join(', ')}`;
}

/** The request's headers a job replays: what the relay would forward, without the per-connection ones. */
function keptHeaders(req: IncomingMessage): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(forwardedHeaders(req.rawHeaders, 0, null, req.socket.remoteAddress))) {
    if (UNKEPT_HEADERS.has(name) || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) out.push([name, String(v)]);
  }
  return out;
}

function formatDuration(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} day${seconds === 86_400 ? '' : 's'}`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  return `${seconds} s`;
}
