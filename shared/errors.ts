// The one error model: AppError with a stable literal code, and one table from code to HTTP status.

export const errorTable = {
  BAD_REQUEST: { status: 400, openaiType: 'invalid_request_error' },
  INVALID_JSON: { status: 400, openaiType: 'invalid_request_error' },
  VALIDATION_FAILED: { status: 400, openaiType: 'invalid_request_error' },
  WORKLOAD_SPEC_INVALID: { status: 422, openaiType: 'invalid_request_error' },
  UNAUTHORIZED: { status: 401, openaiType: 'authentication_error' },
  FORBIDDEN: { status: 403, openaiType: 'permission_error' },
  NOT_FOUND: { status: 404, openaiType: 'not_found_error' },
  ROUTE_NOT_FOUND: { status: 404, openaiType: 'not_found_error' },
  WORKER_NOT_FOUND: { status: 404, openaiType: 'not_found_error' },
  PROJECT_NOT_FOUND: { status: 404, openaiType: 'not_found_error' },
  TOKEN_NOT_FOUND: { status: 404, openaiType: 'not_found_error' },
  WORKLOAD_NOT_FOUND: { status: 404, openaiType: 'not_found_error' },
  KEY_NOT_FOUND: { status: 404, openaiType: 'not_found_error' },
  ADAPTER_NOT_FOUND: { status: 404, openaiType: 'not_found_error' },
  METHOD_NOT_ALLOWED: { status: 405, openaiType: 'invalid_request_error' },
  CONFLICT: { status: 409, openaiType: 'invalid_request_error' },
  WORKLOAD_DRIFT: { status: 409, openaiType: 'invalid_request_error' },
  PAYLOAD_TOO_LARGE: { status: 413, openaiType: 'invalid_request_error' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, openaiType: 'invalid_request_error' },
  RATE_LIMITED: { status: 429, openaiType: 'rate_limit_error' },
  INTERNAL: { status: 500, openaiType: 'api_error' },
  UNAVAILABLE: { status: 503, openaiType: 'api_error' },
} as const satisfies Record<string, { status: number; openaiType: string }>;

export type ErrorCode = keyof typeof errorTable;

export interface ErrorDetail {
  path: string;
  message: string;
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: ErrorDetail[] };
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetail[] | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, message: string, opts: { details?: ErrorDetail[]; headers?: Record<string, string> } = {}) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.details = opts.details;
    this.headers = opts.headers;
  }

  get status(): number {
    return errorTable[this.code].status;
  }

  toBody(): ErrorBody {
    const body: ErrorBody = { error: { code: this.code, message: this.message } };
    if (this.details && this.details.length > 0) body.error.details = this.details;
    return body;
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorTable, value);
}

/** Formats zod issues as the `details` of an error: one entry per problem, with its dotted path. */
export function detailsFromIssues(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): ErrorDetail[] {
  return issues.map((issue) => ({
    path: issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '['),
    message: issue.message,
  }));
}
