// The HTTP server (node:http, no framework): route table, request context, error shapes, access log, failure injection.
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Sim } from './state.ts';

export const REPLICA_HEADER = 'x-ik-sim-replica';
const MAX_BODY_BYTES = 256 * 1024 * 1024;

export type Handler = (ctx: Ctx) => void | Promise<void>;

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  handler: Handler;
  /** Inference routes wait for readiness (503 before) and are subject to IK_SIM_FAIL=http500. */
  inference?: boolean;
  /** Waits for readiness (503 before) without failure injection. */
  gated?: boolean;
}

/** An answer other than 2xx, thrown by handlers; `payload` is JSON unless it is a string. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly payload: unknown,
  ) {
    super(typeof payload === 'string' ? payload : JSON.stringify(payload));
  }
}

const ERROR_TYPES: Record<number, string> = {
  400: 'BadRequestError',
  404: 'NotFoundError',
  500: 'InternalServerError',
  503: 'ServiceUnavailableError',
};

/** vLLM's error body: `{"error": {"message", "type", "param", "code"}}`. */
export function openaiError(status: number, message: string, type = ERROR_TYPES[status] ?? 'BadRequestError', param: string | null = null): HttpError {
  return new HttpError(status, { error: { message, type, param, code: status } });
}

/** Per-request state: the parsed path, the body on demand, and an AbortSignal that fires when the client goes away. */
export class Ctx {
  readonly signal: AbortSignal;
  private bodyPromise: Promise<Buffer> | null = null;

  constructor(
    readonly sim: Sim,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly path: string,
  ) {
    const controller = new AbortController();
    this.signal = controller.signal;
    res.once('close', () => {
      if (!res.writableFinished) controller.abort();
    });
  }

  body(): Promise<Buffer> {
    this.bodyPromise ??= new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      this.req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) {
          reject(openaiError(413, `request body over ${MAX_BODY_BYTES} bytes`, 'BadRequestError'));
          this.req.destroy();
        } else chunks.push(c);
      });
      this.req.once('end', () => resolve(Buffer.concat(chunks)));
      this.req.once('error', reject);
    });
    return this.bodyPromise;
  }

  /** The body as a JSON object; a malformed or non-object body is a 400 in the flavour's error shape. */
  async json(): Promise<Record<string, unknown>> {
    const raw = (await this.body()).toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw this.badRequest(`Invalid JSON body: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw this.badRequest('The request body must be a JSON object');
    return value as Record<string, unknown>;
  }

  badRequest(message: string): HttpError {
    return this.sim.config.flavour === 'ollama' ? new HttpError(400, { error: message }) : openaiError(400, message);
  }

  sendJson(status: number, value: unknown): void {
    this.send(status, JSON.stringify(value), 'application/json');
  }

  send(status: number, body: string | Buffer, contentType: string): void {
    if (this.res.headersSent) return;
    this.res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    this.res.end(body);
  }

  /** Starts a streamed answer (SSE or NDJSON); later writes go straight to the socket. */
  startStream(contentType: string): void {
    this.res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-cache', connection: 'keep-alive' });
  }
}

export function createSimServer(sim: Sim, routes: Route[]): Server {
  const table = new Map<string, Route>();
  const paths = new Set<string>();
  for (const r of routes) {
    table.set(`${r.method} ${r.path}`, r);
    paths.add(r.path);
  }
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
    const started = performance.now();
    res.setHeader(REPLICA_HEADER, sim.knobs.replicaId);
    if (sim.knobs.accessLog) res.once('close', () => sim.log(accessLine(sim, req, res, performance.now() - started)));
    // hang: the connection stays open and nothing is ever written.
    if (sim.knobs.fail.hang) return;
    const q = req.url?.indexOf('?') ?? -1;
    const path = q >= 0 ? req.url!.slice(0, q) : (req.url ?? '/');
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    const route = table.get(`${method} ${path}`);
    const ctx = new Ctx(sim, req, res, path);
    if (!route) return void sendError(ctx, paths.has(path) ? 405 : 404);
    void dispatch(ctx, route);
  });
  return server;
}

async function dispatch(ctx: Ctx, route: Route): Promise<void> {
  const { sim } = ctx;
  try {
    if ((route.inference || route.gated) && !sim.ready) throw unavailable(sim);
    if (route.inference && sim.nextRequestFails()) {
      throw sim.config.flavour === 'ollama'
        ? new HttpError(500, { error: 'simulated failure (IK_SIM_FAIL=http500)' })
        : openaiError(500, 'Internal server error (simulated by IK_SIM_FAIL=http500)');
    }
    await route.handler(ctx);
  } catch (err) {
    if (err instanceof HttpError) {
      const isText = typeof err.payload === 'string';
      ctx.send(err.status, isText ? (err.payload as string) : JSON.stringify(err.payload), isText ? 'text/plain; charset=utf-8' : 'application/json');
      return;
    }
    process.stderr.write(`ik-sim: internal error on ${route.method} ${route.path}: ${err instanceof Error ? err.stack : String(err)}\n`);
    if (!ctx.res.headersSent) ctx.sendJson(500, { error: { message: 'internal error in the simulator', type: 'InternalServerError', param: null, code: 500 } });
    else ctx.res.destroy();
  }
}

function unavailable(sim: Sim): HttpError {
  return sim.config.flavour === 'ollama'
    ? new HttpError(503, { error: 'server starting' })
    : openaiError(503, 'The server is still starting; retry when /health answers 200');
}

/** FastAPI answers unknown routes with {"detail": "Not Found"}; Ollama (gin) with plain text. */
function sendError(ctx: Ctx, status: 404 | 405): void {
  if (ctx.sim.config.flavour === 'ollama') ctx.send(status, status === 404 ? '404 page not found' : '405 method not allowed', 'text/plain');
  else ctx.sendJson(status, { detail: status === 404 ? 'Not Found' : 'Method Not Allowed' });
}

function accessLine(sim: Sim, req: IncomingMessage, res: ServerResponse, ms: number): string {
  const status = res.headersSent ? res.statusCode : 499;
  const remote = `${req.socket.remoteAddress ?? '-'}`;
  if (sim.config.flavour === 'ollama') {
    const d = new Date();
    const stamp = `${d.getFullYear()}/${p2(d.getMonth() + 1)}/${p2(d.getDate())} - ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
    return `[GIN] ${stamp} | ${status} | ${ms.toFixed(3).padStart(12)}ms | ${remote.padStart(15)} | ${(req.method ?? '').padEnd(7)} "${req.url}"`;
  }
  return `INFO:     ${remote}:${req.socket.remotePort ?? 0} - "${req.method} ${req.url} HTTP/${req.httpVersion}" ${status} ${STATUS_CODES[status] ?? ''}`;
}

function p2(n: number): string {
  return String(n).padStart(2, '0');
}

/** Binds; resolves with the bound port, rejects with the listen error (EADDRINUSE and friends). */
export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}
