// Project routes (list, create, show) and the one rule every /projects/{p}/… route starts with: is this project yours?
import { z } from 'zod';
import { AppError } from '../../shared/errors.ts';
import { listOf, projectCreateSchema, projectViewSchema, slugSchema, type ProjectView } from '../../shared/api.ts';
import type { Project } from '../store/projects.ts';
import type { Caller } from './auth.ts';
import type { ApiRouter } from './route.ts';
import type { ApiDeps } from './deps.ts';

export const projectParams = z.strictObject({ p: z.string().min(1).max(100).describe('project slug') });

/** The project named in the path, if the caller may use it; another project's is a 404, like one that does not exist. */
export function resolveProject(deps: Pick<ApiDeps, 'store'>, caller: Caller, slug: string): Project {
  const project = deps.store.projects.getBySlug(slug);
  if (!project || (caller.kind === 'project' && caller.projectId !== project.id)) {
    throw new AppError('PROJECT_NOT_FOUND', `no project "${slug}": list yours with \`ik projects ls\``);
  }
  return project;
}

export function toProjectView(p: Project): ProjectView {
  return { slug: p.slug, name: p.name, created_at: p.created_at };
}

export function registerProjectRoutes(router: ApiRouter, deps: ApiDeps): void {
  const { store } = deps;

  router.add({
    method: 'GET',
    url: '/api/v1/projects',
    operationId: 'listProjects',
    summary: 'List projects (a project token sees its own)',
    tag: 'projects',
    responses: { 200: { description: 'projects', schema: listOf(projectViewSchema) } },
    handler: ({ caller }) => ({
      items: store.projects.list().filter((p) => caller.kind === 'admin' || p.id === caller.projectId).map(toProjectView),
      next: null,
    }),
  });

  router.add({
    method: 'POST',
    url: '/api/v1/projects',
    operationId: 'createProject',
    summary: 'Create a project (admin token)',
    tag: 'projects',
    body: projectCreateSchema,
    responses: { 201: { description: 'created', schema: projectViewSchema } },
    handler: ({ body, caller, reply }) => {
      if (caller.kind !== 'admin') throw new AppError('FORBIDDEN', "creating projects needs the hub's admin token");
      const project = store.transaction(() => {
        if (store.projects.getBySlug(body.slug)) throw new AppError('CONFLICT', `a project "${body.slug}" already exists`);
        const created = store.projects.create(body.slug, body.name ?? body.slug);
        store.events.record({ kind: 'project.created', projectId: created.id, message: `project ${created.slug} created` });
        return created;
      });
      reply.code(201);
      return toProjectView(project);
    },
  });

  router.add({
    method: 'GET',
    url: '/api/v1/projects/:p',
    operationId: 'getProject',
    summary: 'Show one project',
    tag: 'projects',
    params: projectParams,
    responses: { 200: { description: 'the project', schema: projectViewSchema } },
    handler: ({ params, caller }) => toProjectView(resolveProject(deps, caller, params.p)),
  });
}

export { slugSchema };
