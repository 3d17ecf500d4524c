// buildApp(deps) returns the unstarted fastify app: admin API, OpenAPI, metrics, install routes and the tunnel upgrade.
import { readFileSync } from 'node:fs';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { AppError } from '../shared/errors.ts';
import { healthSchema } from '../shared/api.ts';
import { VERSION } from '../shared/version.ts';
import type { HubConfig } from './config.ts';
import type { HubMetrics } from './metrics.ts';
import { ApiRouter } from './api/route.ts';
import { authenticateControl } from './api/auth.ts';
import type { LastUsedRecorder } from './api/last-used.ts';
import type { ApiDeps } from './api/deps.ts';
import { buildOpenApi } from './api/openapi.ts';
import { registerWorkerRoutes } from './api/workers.ts';
import { registerJoinTokenRoutes } from './api/join-tokens.ts';
import { registerEventRoutes } from './api/events.ts';
import { registerProjectRoutes } from './api/projects.ts';
import { registerTokenRoutes } from './api/tokens.ts';
import { registerWorkloadRoutes } from './api/workloads.ts';
import { registerKeyRoutes } from './api/keys.ts';
import { registerAdapterRoutes } from './api/adapters.ts';
import { registerReplicaRoutes } from './api/replicas.ts';
import { registerPlanRoute } from './api/plan.ts';
import { registerRequestLogRoute } from './api/requests.ts';
import { ENDPOINT_PREFIX, registerDataPlaneRoutes } from './dataplane/routes.ts';
import { createWsGateway } from './dataplane/ws-gateway.ts';
import { ENVELOPE_BYTES } from './dataplane/ws-messages.ts';
import type { DataPlane } from './dataplane/data-plane.ts';
import type { AsyncJobsHttp } from './dataplane/jobs-http.ts';
import { registerInstallRoutes } from './install/routes.ts';
import type { AgentBundle } from './install/bundle.ts';
import { AGENT_CONNECT_PATH, type createTunnelServer } from './tunnel/server.ts';

export interface AppDeps extends ApiDeps {
  config: HubConfig;
  metrics: HubMetrics;
  lastUsed: LastUsedRecorder;
  tunnel: ReturnType<typeof createTunnelServer>;
  bundle: AgentBundle;
  dataPlane: DataPlane;
  /** The async-job routes (v1/async/…); without them those paths are ordinary (unserved) routes. */
  asyncJobs?: AsyncJobsHttp;
}

export function buildApp(deps: AppDeps): FastifyInstance {
  const { config } = deps;
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    // Requests are logged once, by the onResponse hook below, at debug level.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    routerOptions: { maxParamLength: 200 },
    // Errors the router raises before any route runs (a bad URL, an overlong path part) get our error shape too.
    frameworkErrors: (err: FastifyError, _req: unknown, reply: FastifyReply) => {
      const e = err.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? new AppError('VALIDATION_FAILED', 'a part of the path is longer than 200 characters')
        : new AppError('BAD_REQUEST', `the URL cannot be read: ${err.message}`);
      void reply.code(e.status).send(e.toBody());
    },
    ...(config.tls ? { https: { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) } } : {}),
  });
  // The admin API speaks JSON only: anything else is a 415 with our error shape, not a string body.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((err: FastifyError | AppError, req, reply) => {
    const appError = err instanceof AppError ? err : fromFastifyError(err);
    if (appError.code === 'INTERNAL') req.log.error({ err, url: req.url, method: req.method }, 'request failed');
    if (appError.headers) void reply.headers(appError.headers);
    return reply.code(appError.status).send(appError.toBody());
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new AppError('ROUTE_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}: see /api/v1/openapi.json`);
    return reply.code(e.status).send(e.toBody());
  });
  app.addHook('onResponse', (req, reply, done) => {
    req.log.debug({ method: req.method, url: req.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
    done();
  });

  const authenticate = (req: Parameters<typeof authenticateControl>[0]) =>
    authenticateControl(req, { store: deps.store, nowMs: deps.clock.now(), lastUsed: deps.lastUsed });
  const router = new ApiRouter(app, authenticate);
  registerWorkerRoutes(router, deps);
  registerJoinTokenRoutes(router, deps);
  registerEventRoutes(router, deps);
  registerProjectRoutes(router, deps);
  registerTokenRoutes(router, deps);
  registerWorkloadRoutes(router, deps);
  registerKeyRoutes(router, deps);
  registerAdapterRoutes(router, deps);
  registerReplicaRoutes(router, deps);
  registerPlanRoute(router, { ...deps, placement: config.placement });
  registerRequestLogRoute(router, deps);

  app.get('/api/v1/health', () => healthSchema.parse({ status: 'ok', version: VERSION }));
  let openapi: unknown;
  app.get('/api/v1/openapi.json', () => (openapi ??= buildOpenApi([router], publicPaths())));
  app.get('/metrics', async (req, reply) => {
    if (!config.metricsPublic) {
      const caller = authenticate(req);
      if (caller.kind !== 'admin') throw new AppError('FORBIDDEN', '/metrics needs the admin token (or set IK_METRICS_PUBLIC=true)');
    }
    return reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  registerInstallRoutes(app, { bundle: deps.bundle, publicUrl: deps.publicUrl });
  registerDataPlaneRoutes(app, { dataPlane: deps.dataPlane, bodyLimitBytes: config.dataPlaneBodyLimitBytes, asyncJobs: deps.asyncJobs });

  const wsGateway = createWsGateway({
    dataPlane: deps.dataPlane,
    sessions: deps.sessions,
    clock: deps.clock,
    log: deps.log.child({ component: 'dataplane-ws' }),
    config: { requestTimeoutMs: config.requestTimeoutS * 1000, maxMessageBytes: config.dataPlaneBodyLimitBytes + ENVELOPE_BYTES },
  });
  // Upgraded sockets are no longer the HTTP server's: they are ended here, or closing would wait for them.
  app.addHook('preClose', (done) => {
    wsGateway.close();
    done();
  });
  app.server.on('upgrade', (req, socket, head) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === AGENT_CONNECT_PATH) return deps.tunnel.handleUpgrade(req, socket, head);
    if (path?.startsWith(`${ENDPOINT_PREFIX}/`)) return wsGateway.handleUpgrade(req, socket, head);
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  return app;
}

function fromFastifyError(err: FastifyError): AppError {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('INVALID_JSON', `the body is not valid JSON: ${err.message}`);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('PAYLOAD_TOO_LARGE', 'the body is larger than this hub accepts (IK_BODY_LIMIT_BYTES)');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('UNSUPPORTED_MEDIA_TYPE', 'send the body as JSON with "Content-Type: application/json"');
  }
  if (err instanceof SyntaxError || err.statusCode === 400) return new AppError('BAD_REQUEST', err.message);
  if (err.statusCode === 413) return new AppError('PAYLOAD_TOO_LARGE', err.message);
  if (err.statusCode === 415) return new AppError('UNSUPPORTED_MEDIA_TYPE', err.message);
  return new AppError('INTERNAL', 'internal error: the hub logged the details');
}

/** Routes outside the admin router, documented by hand so the OpenAPI document lists every path. */
function publicPaths(): Record<string, unknown> {
  const text = (description: string, type: string) => ({ get: { summary: description, security: [], responses: { 200: { description, content: { [type]: {} } } } } });
  return {
    '/api/v1/health': { get: { operationId: 'health', summary: 'Liveness of the hub', security: [], responses: { 200: { description: '{status, version}' } } } },
    '/api/v1/openapi.json': text('This document', 'application/json'),
    '/metrics': text('Prometheus metrics (admin token unless IK_METRICS_PUBLIC)', 'text/plain'),
    '/install.sh': text('The one-line agent installer (POSIX sh)', 'text/x-shellscript'),
    '/agent/bundle': text('The agent as one JavaScript file for node ≥ 20', 'application/javascript'),
    '/agent/bundle.sha256': text('sha256 of the agent bundle', 'text/plain'),
    '/agent/node': text("The hub's own Node runtime, for boxes without node ≥ 20 of the same OS and architecture", 'application/octet-stream'),
  };
}
