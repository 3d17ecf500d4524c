// The OpenAPI 3.1 document, generated from the same zod schemas that validate the admin routes.
import { z } from 'zod';
import { errorBodySchema } from '../../shared/api.ts';
import { errorTable } from '../../shared/errors.ts';
import { VERSION } from '../../shared/version.ts';
import type { ApiRouter } from './route.ts';

type JsonSchema = Record<string, unknown>;

function toSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema;
  return rest;
}

/** `/api/v1/workers/:id` → `/api/v1/workers/{id}`; `workloads::plan` (fastify's escaped colon) → `workloads:plan`. */
export function openApiPath(url: string): string {
  return url.replace(/::/g, '\u0000').replace(/:([A-Za-z_]\w*)/g, '{$1}').replace(/\u0000/g, ':');
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query') {
  if (!schema) return [];
  const json = toSchema(schema, 'input') as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || (json.required ?? []).includes(name),
    schema: s,
    ...(typeof s.description === 'string' ? { description: s.description } : {}),
  }));
}

export function buildOpenApi(routers: ApiRouter[], extraPaths: Record<string, unknown> = {}) {
  const paths: Record<string, Record<string, unknown>> = {};
  const errorResponse = { description: 'error', content: { 'application/json': { schema: toSchema(errorBodySchema, 'output') } } };
  for (const route of routers.flatMap((r) => r.routes)) {
    const path = openApiPath(route.url);
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(route.responses)) {
      responses[status] = r.schema ? { description: r.description, content: { 'application/json': { schema: toSchema(r.schema, 'output') } } } : { description: r.description };
    }
    responses['4XX'] = errorResponse;
    (paths[path] ??= {})[route.method.toLowerCase()] = {
      operationId: route.operationId,
      summary: route.summary,
      tags: [route.tag],
      security: [{ bearer: [] }],
      parameters: [...parameters(route.params, 'path'), ...parameters(route.query, 'query')],
      ...(route.body || route.bodyDoc
        ? { requestBody: { required: true, content: { 'application/json': { schema: toSchema((route.body ?? route.bodyDoc)!, 'input') } } } }
        : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'ikhub admin API',
      version: VERSION,
      description: `Errors share one shape; their codes: ${Object.keys(errorTable).join(', ')}.`,
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'a control token (ik_sdk_…)' } } },
    paths: { ...paths, ...extraPaths },
  };
}
