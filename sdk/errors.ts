// Typed SDK errors carrying the hub's code, message and details, and the one place an HTTP exchange turns into them.
import { z } from 'zod';
import { errorBodySchema } from '../shared/api.ts';

export interface IkHubErrorDetail {
  /** Dotted path of the offending field as the hub names it (snake_case, e.g. `execution_policy_config.max_workers`). */
  path: string;
  message: string;
}

export interface IkHubErrorInit {
  /** HTTP status; null when no response arrived. */
  status: number | null;
  code: string;
  message: string;
  details?: IkHubErrorDetail[];
  /** OpenAI-shaped errors (data plane) also carry a type and a param. */
  type?: string | null;
  param?: string | null;
  /** Seconds the hub asked the caller to wait (`Retry-After`), when it said. */
  retryAfter?: number | null;
  cause?: unknown;
}

/** Any failure the hub reported (or the absence of an answer): `instanceof IkHubError` catches them all. */
export class IkHubError extends Error {
  readonly status: number | null;
  readonly code: string;
  readonly details: IkHubErrorDetail[];
  readonly type: string | null;
  readonly param: string | null;

  constructor(init: IkHubErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'IkHubError';
    this.status = init.status;
    this.code = init.code;
    this.details = init.details ?? [];
    this.type = init.type ?? null;
    this.param = init.param ?? null;
  }
}

/** 422: the spec broke a rule; `details` names each offending path. */
export class WorkloadSpecInvalidError extends IkHubError {
  override readonly name = 'WorkloadSpecInvalidError';
}

/** 409 under `OnDrift.FAIL`: the stored spec differs; `fields` lists the differing paths. */
export class WorkloadDriftError extends IkHubError {
  override readonly name = 'WorkloadDriftError';
  readonly fields: string[];

  constructor(init: IkHubErrorInit) {
    super(init);
    this.fields = this.details.map((d) => d.path);
  }
}

/** 404: no such project, workload, key or route (another project's things look the same). */
export class NotFoundError extends IkHubError {
  override readonly name = 'NotFoundError';
}

/** 401 or 403: the token or key is missing, wrong, revoked, expired, or lacks the scope. */
export class AuthenticationError extends IkHubError {
  override readonly name = 'AuthenticationError';
}

/** 429: slow down; `retryAfter` is the wait in seconds when the hub said. */
export class RateLimitError extends IkHubError {
  override readonly name = 'RateLimitError';
  readonly retryAfter: number | null;

  constructor(init: IkHubErrorInit) {
    super(init);
    this.retryAfter = init.retryAfter ?? null;
  }
}

/** No HTTP answer: the hub could not be reached (refused, DNS, TLS) or did not answer in time. */
export class HubUnreachableError extends IkHubError {
  override readonly name = 'HubUnreachableError';
}

const openAiErrorSchema = z.object({
  error: z.object({
    message: z.string(),
    type: z.string().nullish(),
    code: z.union([z.string(), z.number()]).nullish(),
    param: z.string().nullish(),
  }),
});

/** The typed error for a non-2xx answer, from either error shape the hub speaks (admin API or OpenAI). */
export function errorFromResponse(status: number, headers: Headers, text: string): IkHubError {
  const init = describeFailure(status, text);
  init.retryAfter = parseRetryAfter(headers.get('retry-after'));
  if (status === 422) return new WorkloadSpecInvalidError(init);
  if (status === 409 && init.code === 'WORKLOAD_DRIFT') return new WorkloadDriftError(init);
  if (status === 404) return new NotFoundError(init);
  if (status === 401 || status === 403) return new AuthenticationError(init);
  if (status === 429) return new RateLimitError(init);
  return new IkHubError(init);
}

function describeFailure(status: number, text: string): IkHubErrorInit {
  const json = parseJson(text);
  const admin = errorBodySchema.safeParse(json);
  if (admin.success) return { status, ...admin.data.error };
  const openAi = openAiErrorSchema.safeParse(json);
  if (openAi.success) {
    const { message, type, code, param } = openAi.data.error;
    return { status, code: code === null || code === undefined ? (type ?? `HTTP_${status}`) : String(code), message, type, param };
  }
  const snippet = text.trim().slice(0, 300);
  return { status, code: `HTTP_${status}`, message: `the hub answered HTTP ${status}${snippet ? `: ${snippet}` : ' with no body'}` };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** `Retry-After` is either delta-seconds or an HTTP date. */
function parseRetryAfter(value: string | null): number | null {
  if (value === null || value.trim() === '') return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

export interface HttpCall {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  token: string;
  body?: unknown;
  timeoutMs: number;
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  /** The parsed JSON body; undefined for an empty body (204). */
  body: unknown;
}

/** One JSON request with a bearer token and a timeout; network failures and non-2xx answers become typed errors. */
export async function callHub(call: HttpCall): Promise<HttpAnswer> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(call.url, {
      method: call.method,
      headers: {
        authorization: `Bearer ${call.token}`,
        accept: 'application/json',
        ...(call.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
      signal: AbortSignal.timeout(call.timeoutMs),
    });
    text = await res.text();
  } catch (err) {
    throw unreachable(call, err);
  }
  if (!res.ok) throw errorFromResponse(res.status, res.headers, text);
  if (text === '') return { status: res.status, headers: res.headers, body: undefined };
  const body = parseJson(text);
  if (body === undefined) {
    throw new IkHubError({ status: res.status, code: 'INVALID_RESPONSE', message: `${call.method} ${call.url} answered ${res.status} with a body that is not JSON` });
  }
  return { status: res.status, headers: res.headers, body };
}

function unreachable(call: HttpCall, err: unknown): HubUnreachableError {
  const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const reason = timedOut ? `no answer within ${call.timeoutMs} ms` : cause instanceof Error ? cause.message : String(cause);
  const origin = new URL(call.url).origin;
  return new HubUnreachableError({
    status: null,
    code: timedOut ? 'HUB_TIMEOUT' : 'HUB_UNREACHABLE',
    message: `cannot reach the hub at ${origin} (${call.method} ${new URL(call.url).pathname}): ${reason}; check IK_HUB_URL and that the hub is running`,
    cause: err,
  });
}

/** Parses a 2xx body with the schema the SDK expects; a mismatch is the hub's fault, named as such. */
export function expectShape<T extends z.ZodType>(schema: T, body: unknown, what: string): z.output<T> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
  throw new IkHubError({ status: null, code: 'INVALID_RESPONSE', message: `unexpected ${what} from the hub (${problems}): is the SDK a match for this hub's version?` });
}
