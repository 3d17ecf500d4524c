// Helpers for tests that run workloads: ensure a spec, wait for replicas, ask a backend directly.
import assert from 'node:assert/strict';
import type { TestHub } from './processes.ts';
import { api, eventually } from './api.ts';

export interface ReplicaInfo {
  id: string;
  state: string;
  worker_id: string | null;
  port: number | null;
  pid: number | null;
  restarts: number;
  gpu_uuids: string[];
  container_id: string | null;
  generation: number;
}

export async function ensure(hub: TestHub, spec: Record<string, unknown>, project = 'default'): Promise<any> {
  const res = await api(hub.url, hub.adminToken, 'PUT', `/api/v1/projects/${project}/workloads/${String(spec.slug)}`, spec);
  assert.ok(res.status === 200 || res.status === 201, `ensure ${String(spec.slug)}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function getWorkload(hub: TestHub, slug: string, project = 'default'): Promise<any> {
  const res = await api(hub.url, hub.adminToken, 'GET', `/api/v1/projects/${project}/workloads/${slug}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

/** Waits until the workload's replicas satisfy `pred` (e.g. n ready), returning them. */
export function waitForReplicas(hub: TestHub, slug: string, pred: (rs: ReplicaInfo[]) => boolean, timeoutMs = 30_000, project = 'default'): Promise<ReplicaInfo[]> {
  return eventually(`replicas of ${slug}`, async () => {
    const w = await getWorkload(hub, slug, project);
    return pred(w.replicas) ? (w.replicas as ReplicaInfo[]) : undefined;
  }, timeoutMs, 100);
}

export const allReady = (n: number) => (rs: ReplicaInfo[]) => rs.length === n && rs.every((r) => r.state === 'ready');

export async function events(hub: TestHub, query: string): Promise<Array<{ kind: string; message: string; data: any; worker_id: string | null }>> {
  const res = await api(hub.url, hub.adminToken, 'GET', `/api/v1/events?${query}`);
  assert.equal(res.status, 200);
  return res.body.items;
}

/** GET on a backend replica directly (127.0.0.1:port): what the simulator serves. */
export async function backendGet(port: number, path: string): Promise<{ status: number; body: any; replica: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep text
  }
  return { status: res.status, body, replica: res.headers.get('x-ik-sim-replica') };
}

/** A small vLLM spec served by the simulator. */
export function vllmSpec(slug: string, model = 'Qwen/Qwen2.5-0.5B-Instruct', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { slug, model, backend: 'vllm', command: `vllm serve ${model}`, ...extra };
}
