// What a job's run means (pure): a backend answer or a broken relay becomes a result, a retry or a failure; and how a
// job looks to the client polling it (DESIGN §4.6).
import { z } from 'zod';
import type { JobError, JobResult, JobView } from '../store/jobs.ts';

/** How one run of a job ended, as the dispatcher saw it. */
export type RunOutcome =
  | { kind: 'response'; status: number; contentType: string | null; body: Buffer }
  /** The relay broke: the replica could not be reached, the stream reset, the connection closed mid-answer. */
  | { kind: 'broken'; reason: string; beforeResponse: boolean }
  | { kind: 'timeout'; afterMs: number }
  | { kind: 'too_large'; status: number; limitBytes: number };

export type RunDecision =
  | { action: 'succeed'; result: JobResult }
  /** No other run would do better: a bad request, a result too large. */
  | { action: 'fail'; error: JobError; resultStatus: number | null }
  /** Another run (on this or another replica) may succeed: retried while attempts remain, else failed with `error`. */
  | { action: 'retry'; error: JobError; resultStatus: number | null };

/** Backend statuses worth another run: the replica is sick or busy, not the request wrong. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

export function decideRun(outcome: RunOutcome): RunDecision {
  switch (outcome.kind) {
    case 'response': {
      const { status, contentType, body } = outcome;
      if (status >= 200 && status < 300) return { action: 'succeed', result: { status, contentType, encoding: resultEncoding(contentType, body), body } };
      const error: JobError = {
        message: `the backend answered ${status}: ${backendErrorMessage(contentType, body)}`,
        type: status < 500 && status !== 408 && status !== 429 ? 'invalid_request_error' : 'api_error',
        code: 'backend_error',
      };
      return isRetryableStatus(status) ? { action: 'retry', error, resultStatus: status } : { action: 'fail', error, resultStatus: status };
    }
    case 'broken':
      return { action: 'retry', error: { message: outcome.reason, type: 'api_error', code: 'replica_failed' }, resultStatus: null };
    case 'timeout':
      return {
        action: 'retry',
        error: { message: `the backend did not finish within ${Math.round(outcome.afterMs / 1000)} s (IK_REQUEST_TIMEOUT_S)`, type: 'timeout_error', code: 'job_timeout' },
        resultStatus: null,
      };
    case 'too_large':
      return {
        action: 'fail',
        error: { message: `the backend's answer is larger than a job result may be (${outcome.limitBytes} bytes)`, type: 'api_error', code: 'result_too_large' },
        resultStatus: outcome.status,
      };
  }
}

/** The error a job keeps when its last allowed run failed. */
export function finalError(error: JobError, attempts: number): JobError {
  return { ...error, message: `gave up after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${error.message}` };
}

/** Wait before a retried job runs again: 1 s, 2 s, 4 s … capped at 30 s. */
export function retryDelayMs(attempts: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, attempts - 1));
}

const JSON_TYPE = /^application\/(.+\+)?json\b/i;

/** JSON results are shown as JSON; anything else (audio, images, video, text) as base64 with its content type. */
export function resultEncoding(contentType: string | null, body: Buffer): 'json' | 'base64' {
  if (!contentType || !JSON_TYPE.test(contentType) || body.length === 0) return 'base64';
  try {
    JSON.parse(body.toString('utf8'));
    return 'json';
  } catch {
    return 'base64';
  }
}

/** The message of a backend's error body: OpenAI's {"error": {"message"}}, vLLM's {"message"}, FastAPI's {"detail"}, or its text. */
export function backendErrorMessage(contentType: string | null, body: Buffer): string {
  const text = body.toString('utf8');
  if (contentType && JSON_TYPE.test(contentType)) {
    try {
      const json: unknown = JSON.parse(text);
      const found = messageIn(json);
      if (found) return clip(found);
    } catch {
      // not JSON after all: its text
    }
  }
  return text.trim() ? clip(text.trim()) : '(empty body)';
}

const backendErrorSchema = z.union([
  z.object({ error: z.object({ message: z.string() }) }).transform((b) => b.error.message),
  z.object({ error: z.string() }).transform((b) => b.error),
  z.object({ message: z.string() }).transform((b) => b.message),
  z.object({ detail: z.unknown().refine((d) => d !== undefined) }).transform((b) => (typeof b.detail === 'string' ? b.detail : JSON.stringify(b.detail))),
]);

function messageIn(json: unknown): string | undefined {
  const parsed = backendErrorSchema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

function clip(s: string): string {
  return s.length > 1000 ? `${s.slice(0, 1000)}…` : s;
}

/**
 * The body of `GET …/v1/async/{request_id}`. A JSON result is spliced in as the backend wrote it (a poll never parses
 * a large result); other results are `{"content_type", "base64"}`.
 */
export function renderJob(job: JobView): Buffer {
  const view: Record<string, unknown> = { request_id: job.id, status: job.status };
  if (job.status === 'failed' && job.error) view.error = { ...job.error, param: null };
  view.created_at = job.created_at;
  if (job.completed_at) view.completed_at = job.completed_at;
  const head = JSON.stringify(view);
  if (job.status !== 'succeeded' || job.result_body === null) return Buffer.from(head);
  const result =
    job.result_encoding === 'json'
      ? job.result_body
      : Buffer.from(JSON.stringify({ content_type: job.result_content_type ?? 'application/octet-stream', base64: job.result_body.toString('base64') }));
  return Buffer.concat([Buffer.from(`${head.slice(0, -1)},"result":`), result, Buffer.from('}')]);
}
