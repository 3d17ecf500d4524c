// Calls to the Docker engine: each one bounded by a timeout (or the caller's signal), its failure turned into an
// error that says what failed and what to do (engine down, no permission, no answer, or the engine's own reason).
import { deadline } from '../../shared/abort.ts';
import type Docker from 'dockerode';

/** Ordinary engine calls (inspect, list, create, remove …) answer within this, or the engine is in trouble. */
export const CALL_TIMEOUT_MS = 30_000;

export class DockerEngineError extends Error {
  constructor(
    message: string,
    /** The engine's HTTP status, when it answered at all. */
    readonly statusCode: number | null,
    /** True when the engine could not be reached (down, restarting, no permission, no answer). */
    readonly unreachable: boolean,
  ) {
    super(message);
    this.name = 'DockerEngineError';
  }
}

/** The engine and where it listens, for messages. */
export interface Engine {
  docker: Docker;
  address: string;
}

/** Where a dockerode client talks to, in words (`/var/run/docker.sock`, `tcp://host:2375`). */
export function engineAddress(docker: Docker): string {
  const modem: unknown = docker.modem;
  if (modem && typeof modem === 'object') {
    if ('socketPath' in modem && typeof modem.socketPath === 'string') return modem.socketPath;
    if ('host' in modem && typeof modem.host === 'string') return `${modem.host}${'port' in modem && modem.port ? `:${String(modem.port)}` : ''}`;
  }
  return process.env.DOCKER_HOST ?? '/var/run/docker.sock';
}

const UNREACHABLE_CODES = new Set(['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND']);

function errorCode(err: unknown): string | undefined {
  return err && typeof err === 'object' && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function httpStatus(err: unknown): number | null {
  return err && typeof err === 'object' && 'statusCode' in err && typeof err.statusCode === 'number' ? err.statusCode : null;
}

/** The engine's own words: dockerode prefixes them with `(HTTP code 404) no such container - `. */
export function engineMessage(err: unknown): string {
  if (err && typeof err === 'object' && 'json' in err && err.json && typeof err.json === 'object' && 'message' in err.json && typeof err.json.message === 'string') {
    return err.json.message.trim();
  }
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/^\(HTTP code \d+\) .*? - /, '').trim();
}

/** Turns any failure of a call into a DockerEngineError whose message reads `<what> failed: <why> (<what to do>)`. */
export function describeEngineError(err: unknown, address: string, what: string, timedOut: { ms: number } | null): DockerEngineError {
  if (err instanceof DockerEngineError) return err;
  if (timedOut) {
    return new DockerEngineError(`the Docker engine at ${address} did not answer within ${Math.round(timedOut.ms / 1000)} s (${what}); check \`docker info\` on the box`, null, true);
  }
  const code = errorCode(err);
  const raw = err instanceof Error ? err.message : String(err);
  if (code === 'EACCES') {
    return new DockerEngineError(`the agent may not use the Docker engine at ${address}: ${raw} (add the agent's user to the docker group, or run it as root)`, null, true);
  }
  if ((code && UNREACHABLE_CODES.has(code)) || /socket hang up/i.test(raw)) {
    return new DockerEngineError(`the Docker engine does not answer at ${address}: ${raw} (start it, e.g. systemctl start docker, or run the agent with IK_RUNTIME=process)`, null, true);
  }
  const status = httpStatus(err);
  return new DockerEngineError(`${what} failed: ${engineMessage(err)}`, status, false);
}

/**
 * Runs one engine call with a timeout (and the caller's signal, when given), so no call can hang the agent.
 * `fn` gets the signal to hand to dockerode as `abortSignal`.
 */
export async function engineCall<T>(
  engine: Engine,
  what: string,
  fn: (signal: AbortSignal) => Promise<T>,
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? CALL_TIMEOUT_MS;
  const limit = deadline(timeoutMs, opts.signal);
  const signal = limit.signal;
  // Not every dockerode call honours its signal: the timeout also settles the call itself.
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([fn(signal), aborted]);
  } catch (err) {
    if (opts.signal?.aborted) throw new DockerEngineError(`${what} was cancelled`, null, false);
    throw describeEngineError(err, engine.address, what, signal.aborted ? { ms: timeoutMs } : null);
  } finally {
    limit.clear();
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

/** A raw engine request, for the calls dockerode cannot abort (image inspect). */
export function dial<T = unknown>(engine: Engine, path: string, signal: AbortSignal, statusCodes: Record<number, string | boolean>): Promise<T> {
  return new Promise((resolve, reject) => {
    engine.docker.modem.dial({ path, method: 'GET', statusCodes, abortSignal: signal }, (err, data) => (err ? reject(err) : resolve(data as T)));
  });
}

export function isNotFound(err: unknown): boolean {
  return err instanceof DockerEngineError ? err.statusCode === 404 : httpStatus(err) === 404;
}

export function isConflict(err: unknown): boolean {
  return err instanceof DockerEngineError ? err.statusCode === 409 : httpStatus(err) === 409;
}

export function isNotModified(err: unknown): boolean {
  return err instanceof DockerEngineError ? err.statusCode === 304 : httpStatus(err) === 304;
}
