// Admin routes are declared once: the declaration registers the fastify handler, validates with zod, and feeds OpenAPI.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError, detailsFromIssues } from '../../shared/errors.ts';
import type { Caller } from './auth.ts';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteContext<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  /** The JSON body as received, for routes that validate it themselves (see `bodyDoc`). */
  rawBody: unknown;
  caller: Caller;
  req: FastifyRequest;
  reply: FastifyReply;
}

export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: Method;
  /** fastify syntax: `/api/v1/workers/:id` */
  url: string;
  operationId: string;
  summary: string;
  tag: string;
  params?: P;
  query?: Q;
  body?: B;
  /** For routes whose handler validates the body itself (with its own error code): the schema OpenAPI shows. */
  bodyDoc?: z.ZodType;
  /** Status → response schema (undefined: no body). */
  responses: Record<number, { description: string; schema?: z.ZodType }>;
  handler: (ctx: RouteContext<z.output<P>, z.output<Q>, z.output<B>>) => unknown;
}

// Each declared route, with the types erased: the router only needs the shapes for OpenAPI.
type AnyRoute = RouteSpec<z.ZodType, z.ZodType, z.ZodType>;

export class ApiRouter {
  readonly routes: AnyRoute[] = [];

  constructor(
    private readonly app: FastifyInstance,
    private readonly authenticate: (req: FastifyRequest) => Caller,
  ) {}

  add<P extends z.ZodType = z.ZodUndefined, Q extends z.ZodType = z.ZodUndefined, B extends z.ZodType = z.ZodUndefined>(
    spec: RouteSpec<P, Q, B>,
  ): void {
    this.routes.push(spec as unknown as AnyRoute);
    this.app.route({
      method: spec.method,
      url: spec.url,
      handler: async (req, reply) => {
        const caller = this.authenticate(req);
        // The schemas checked these values; the casts only carry that knowledge to the handler's types.
        const params = parsePart(spec.params, req.params, 'path') as z.output<P>;
        const query = parsePart(spec.query, req.query, 'query') as z.output<Q>;
        if ((spec.body || spec.bodyDoc) && !isJson(req)) {
          throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'send the body as JSON with "Content-Type: application/json"');
        }
        const body = parsePart(spec.body, req.body, 'body') as z.output<B>;
        const rawBody = spec.bodyDoc ? req.body : undefined;
        const result = await spec.handler({ params, query, body, rawBody, caller, req, reply });
        if (reply.sent) return reply;
        if (result === undefined) return reply.code(reply.statusCode === 200 ? 204 : reply.statusCode).send();
        return reply.send(result);
      },
    });
  }
}

function isJson(req: FastifyRequest): boolean {
  return /^application\/(.+\+)?json\b/i.test(req.headers['content-type'] ?? '');
}

function parsePart(schema: z.ZodType | undefined, value: unknown, where: string): unknown {
  if (!schema) return undefined;
  const result = schema.safeParse(value ?? (where === 'body' ? undefined : {}));
  if (result.success) return result.data;
  const details = detailsFromIssues(result.error.issues).map((d) => ({ ...d, path: d.path ? `${where}.${d.path}` : where }));
  throw new AppError('VALIDATION_FAILED', `invalid ${where === 'path' ? 'path parameter' : where}: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, { details });
}
