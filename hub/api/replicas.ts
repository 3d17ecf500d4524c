// Replica routes: a workload's replicas, and a replica's logs read through its agent (tail, since, follow).
import { PassThrough } from 'node:stream';
import { z } from 'zod';
import { AppError } from '../../shared/errors.ts';
import { listOf, replicaViewSchema } from '../../shared/api.ts';
import { newId } from '../../shared/secrets.ts';
import type { ApiRouter } from './route.ts';
import type { ApiDeps } from './deps.ts';
import { resolveProject } from './projects.ts';
import { resolveWorkload, workloadParams } from './workloads.ts';
import { toReplicaView } from './workload-view.ts';

/** A log read that gets no answer from the agent this fast is ended with a note. */
const FIRST_ANSWER_MS = 15_000;

export function registerReplicaRoutes(router: ApiRouter, deps: ApiDeps): void {
  const { store } = deps;

  router.add({
    method: 'GET',
    url: '/api/v1/projects/:p/workloads/:slug/replicas',
    operationId: 'listReplicas',
    summary: "The workload's replicas (stopped ones are left out)",
    tag: 'replicas',
    params: workloadParams,
    responses: { 200: { description: 'replicas', schema: listOf(replicaViewSchema) } },
    handler: ({ params, caller }) => {
      const project = resolveProject(deps, caller, params.p);
      const workload = resolveWorkload(store, project, params.slug);
      return { items: store.replicas.forWorkload(workload.id).map((r) => toReplicaView(r, deps)), next: null };
    },
  });

  router.add({
    method: 'GET',
    url: '/api/v1/projects/:p/workloads/:slug/replicas/:id/logs',
    operationId: 'replicaLogs',
    summary: "A replica's log, read through its agent: text/plain, one line each; follow keeps the answer open",
    tag: 'replicas',
    params: workloadParams.extend({ id: z.string().min(1).max(100) }),
    query: z.strictObject({
      tail: z.coerce.number().int().positive().max(100_000).optional().describe('only the last N lines'),
      since: z.string().max(64).optional().describe('only lines after this time: ISO 8601 or a duration like 10m (Docker logs; process logs carry no times)'),
      follow: z.enum(['true', 'false', '1', '0']).optional().describe('keep streaming new lines'),
    }),
    responses: { 200: { description: 'the log lines (text/plain)' } },
    handler: ({ params, query, caller, req, reply }) => {
      const project = resolveProject(deps, caller, params.p);
      const workload = resolveWorkload(store, project, params.slug);
      const replica = store.replicas.get(params.id);
      if (!replica || replica.workload_id !== workload.id) {
        throw new AppError('NOT_FOUND', `no replica ${params.id} of ${workload.slug}: see \`ik workloads show ${workload.slug}\``);
      }
      const session = replica.worker_id ? deps.sessions.get(replica.worker_id) : undefined;
      if (!session) {
        throw new AppError('UNAVAILABLE', `the worker of replica ${replica.id} is not connected: its logs cannot be read now`, { headers: { 'retry-after': '10' } });
      }
      const follow = query.follow === 'true' || query.follow === '1';
      const id = newId('evt');
      const out = new PassThrough();
      let answered = false;
      const finish = (note?: string) => {
        clearTimeout(timer);
        deps.requests.closeLogRead(id);
        if (note) out.write(`# ${note}\n`);
        out.end();
      };
      const timer = setTimeout(() => {
        if (!answered) finish(`the agent did not answer within ${FIRST_ANSWER_MS / 1000} s`);
      }, FIRST_ANSWER_MS);
      deps.requests.openLogRead(id, {
        onLines: (lines) => {
          answered = true;
          out.write(lines.map((l) => `${l}\n`).join(''));
        },
        onEnd: (error) => {
          answered = true;
          finish(error ? `${error.code}: ${error.message}` : undefined);
        },
      });
      // A client that goes away stops the agent's reading too.
      req.raw.once('close', () => {
        if (out.writableEnded) return;
        session.send({ type: 'logs.cancel', id });
        finish();
      });
      session.send({ type: 'logs.read', id, replica_id: replica.id, tail: query.tail ?? null, since: query.since ?? null, follow });
      return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(out);
    },
  });
}
