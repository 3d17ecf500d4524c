// The data plane's HTTP routes, as an encapsulated fastify plugin: any content type passes (JSON, multipart, audio),
// bodies up to IK_DATAPLANE_BODY_LIMIT_BYTES, and the handler writes the raw response itself (streams are never
// buffered).
import type { FastifyInstance } from 'fastify';
import type { DataPlane } from './data-plane.ts';
import type { AsyncJobsHttp } from './jobs-http.ts';
import { DataPlaneError, sendDataPlaneError } from './openai-error.ts';

export const ENDPOINT_PREFIX = '/endpoint';

export function registerDataPlaneRoutes(app: FastifyInstance, deps: { dataPlane: DataPlane; bodyLimitBytes: number; asyncJobs?: AsyncJobsHttp | undefined }): void {
  void app.register(async (plane) => {
    plane.removeAllContentTypeParsers();
    plane.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: deps.bodyLimitBytes }, (_req, body, done) => done(null, body));
    plane.setErrorHandler((err: { code?: string; statusCode?: number; message: string }, req, reply) => {
      const e =
        err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
          ? new DataPlaneError(413, `the body is larger than this hub accepts (${deps.bodyLimitBytes} bytes, IK_DATAPLANE_BODY_LIMIT_BYTES)`, 'invalid_request_error', 'payload_too_large')
          : new DataPlaneError(err.statusCode && err.statusCode < 500 ? err.statusCode : 500, err.message, err.statusCode && err.statusCode < 500 ? 'invalid_request_error' : 'api_error', err.code ?? 'error');
      if (e.status >= 500) req.log.error({ err }, 'data-plane request failed');
      reply.hijack();
      sendDataPlaneError(reply.raw, e);
    });
    plane.route({
      method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      url: `${ENDPOINT_PREFIX}/:project/:workload/v1/*`,
      handler: async (req, reply) => {
        const params = req.params as { project: string; workload: string; '*': string };
        const url = req.raw.url ?? '';
        const q = url.indexOf('?');
        reply.hijack();
        const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const route = params['*'].replace(/\/+$/, '');
        const query = q >= 0 ? url.slice(q) : '';
        // v1/async/{route} (POST, submit) and v1/async/{request_id} (GET, poll) are async jobs (DESIGN §4.6).
        if (deps.asyncJobs && route.startsWith('async/')) return deps.asyncJobs.handle(req.raw, reply.raw, body, params.project, params.workload, route.slice('async/'.length), query);
        await deps.dataPlane.handleHttp(req.raw, reply.raw, body, params.project, params.workload, route, query);
      },
    });
  });
}
