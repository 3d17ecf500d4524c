// Small HTTP helpers for talking to a backend on 127.0.0.1 (probes, model pulls), always with a timeout.
import { deadline } from '../../shared/abort.ts';

export async function getJson(port: number, path: string, signal: AbortSignal, timeoutMs = 3000): Promise<{ status: number; body: unknown }> {
  const limit = deadline(timeoutMs, signal);
  let text: string;
  let status: number;
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: limit.signal });
    status = res.status;
    text = await res.text();
  } finally {
    limit.clear();
  }
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status, body };
}

/** The model ids of an OpenAI-compatible `/v1/models` answer. */
export function modelIds(body: unknown): string[] {
  if (typeof body !== 'object' || body === null || !('data' in body) || !Array.isArray(body.data)) return [];
  return body.data.flatMap((m: unknown) => (typeof m === 'object' && m !== null && 'id' in m && typeof m.id === 'string' ? [m.id] : []));
}

export function describeFetchError(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? err.cause.message : '';
    if (/ECONNREFUSED/.test(cause)) return 'not listening yet';
    if (err.name === 'TimeoutError') return 'no answer within the probe timeout';
    return cause || err.message;
  }
  return String(err);
}
