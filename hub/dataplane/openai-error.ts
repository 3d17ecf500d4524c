// Data-plane errors in the OpenAI shape, so any OpenAI client shows them as it would an OpenAI error.
import type { ServerResponse } from 'node:http';

export type OpenAiErrorType = 'invalid_request_error' | 'authentication_error' | 'permission_error' | 'not_found_error' | 'rate_limit_error' | 'api_error' | 'timeout_error';

export class DataPlaneError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: OpenAiErrorType,
    readonly code: string,
    readonly headers: Record<string, string> = {},
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'DataPlaneError';
  }
}

export function openAiErrorBody(message: string, type: OpenAiErrorType, code: string, param: string | null = null): string {
  return JSON.stringify({ error: { message, type, code, param } });
}

export function sendDataPlaneError(res: ServerResponse, err: DataPlaneError, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) {
    // Too late for a status: end the response (a stream the client will see terminated).
    res.destroy();
    return;
  }
  const body = openAiErrorBody(err.message, err.type, err.code, err.param);
  res.writeHead(err.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...err.headers, ...extraHeaders });
  res.end(body);
}
