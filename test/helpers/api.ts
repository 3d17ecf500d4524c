// A small admin-API client for tests, plus polling for state that is only observable through the API.
import assert from 'node:assert/strict';
import type { WorkerView } from '../../shared/api.ts';

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

export async function api<T = any>(
  hubUrl: string,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiResponse<T>> {
  const res = await fetch(`${hubUrl}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** Polls until `check` returns a value (not undefined), or fails with the last value seen. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function listWorkers(hubUrl: string, token: string): Promise<WorkerView[]> {
  const res = await api<{ items: WorkerView[] }>(hubUrl, token, 'GET', '/api/v1/workers');
  assert.equal(res.status, 200);
  return res.body.items;
}

export function waitForWorker(hubUrl: string, token: string, name: string, pred: (w: WorkerView) => boolean = () => true, timeoutMs?: number) {
  return eventually(
    `worker ${name}`,
    async () => (await listWorkers(hubUrl, token)).find((w) => w.name === name && pred(w)),
    timeoutMs,
  );
}
