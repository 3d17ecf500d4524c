// GET /api/v1/events: lifecycle events, newest first, filtered by project, workload, worker and time.
import { z } from 'zod';
import { AppError } from '../../shared/errors.ts';
import { listOf } from '../../shared/api.ts';
import type { ApiRouter } from './route.ts';
import type { ApiDeps } from './deps.ts';
import { DEFAULT_PROJECT } from '../bootstrap.ts';

export const eventViewSchema = z.object({
  id: z.number().int(),
  at: z.string(),
  kind: z.string(),
  project: z.string().nullable(),
  workload: z.string().nullable(),
  worker_id: z.string().nullable(),
  message: z.string(),
  data: z.record(z.string(), z.unknown()).nullable(),
});

const eventsQuery = z.strictObject({
  project: z.string().min(1).max(63).optional().describe("defaults to the token's project (admin: default); hub-wide events are included"),
  workload: z.string().min(1).max(63).optional().describe('a workload slug'),
  worker: z.string().min(1).max(100).optional().describe('a worker id'),
  since: z.iso.datetime({ offset: true }).optional().describe('only events at or after this time (ISO 8601)'),
  before: z.coerce.number().int().positive().optional().describe('cursor: events older than this id (the `next` of a previous page)'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export function registerEventRoutes(router: ApiRouter, deps: ApiDeps): void {
  const { store } = deps;
  router.add({
    method: 'GET',
    url: '/api/v1/events',
    operationId: 'listEvents',
    summary: 'Lifecycle events, newest first',
    tag: 'events',
    query: eventsQuery,
    responses: { 200: { description: 'events', schema: listOf(eventViewSchema) } },
    handler: ({ query, caller }) => {
      const slug = query.project ?? (caller.kind === 'project' ? caller.projectSlug : DEFAULT_PROJECT);
      const project = store.projects.getBySlug(slug);
      if (!project || (caller.kind === 'project' && project.id !== caller.projectId)) {
        throw new AppError('PROJECT_NOT_FOUND', `no project "${slug}"`);
      }
      const rows = store.events.list({
        projectId: project.id,
        includeHubWide: true,
        ...(query.workload ? { workload: query.workload } : {}),
        ...(query.worker ? { workerId: query.worker } : {}),
        ...(query.since ? { sinceIso: new Date(query.since).toISOString() } : {}),
        ...(query.before ? { beforeId: query.before } : {}),
        limit: query.limit + 1,
      });
      const page = rows.slice(0, query.limit);
      const slugs = new Map<string, string>();
      const slugOf = (id: string | null) => (id === null ? null : (slugs.get(id) ?? slugs.set(id, store.projects.getById(id)?.slug ?? id).get(id)!));
      return {
        items: page.map((e) => ({ id: e.id, at: e.at, kind: e.kind, project: slugOf(e.project_id), workload: e.workload, worker_id: e.worker_id, message: e.message, data: e.data })),
        next: rows.length > query.limit ? String(page[page.length - 1]!.id) : null,
      };
    },
  });
}
