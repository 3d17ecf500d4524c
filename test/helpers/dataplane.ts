// Helpers for data-plane tests: data keys, OpenAI clients pointed at a workload's endpoint, the simulator's /metrics,
// the hub's resident memory, and the specs of the workloads these tests run (small VRAM claims, so many fit on one box).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import type { TestHub } from './processes.ts';
import { api, eventually } from './api.ts';
import { vllmSpec, type ReplicaInfo } from './workloads.ts';

/** Every simulator replica these tests start claims a tenth of a GPU: a dozen fit on one h100-x2 worker. */
export const SMALL_CLAIM = '--gpu-memory-utilization 0.1';

export const CHAT_MODEL = 'Qwen/Qwen2.5-0.5B-Instruct';

/** A text2text workload on vLLM (the simulator), with simulator knobs in its env. */
export function chatSpec(slug: string, env: Record<string, string> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return vllmSpec(slug, CHAT_MODEL, { task_type: 'text2text', command: `vllm serve ${CHAT_MODEL} ${SMALL_CLAIM}`, env, ...extra });
}

export function embeddingSpec(slug: string, model = 'BAAI/bge-large-en-v1.5'): Record<string, unknown> {
  return { slug, model, backend: 'vllm', task_type: 'embedding', command: `vllm serve ${model} --task embed ${SMALL_CLAIM}` };
}

/** vllm-omni workloads: text2image, text2audio, audio2text (the `vllm-omni serve M` form). */
export function omniSpec(slug: string, model: string, taskType: 'text2image' | 'text2audio' | 'audio2text'): Record<string, unknown> {
  return { slug, model, backend: 'vllm-omni', task_type: taskType, command: `vllm-omni serve ${model} ${SMALL_CLAIM}` };
}

export interface DataKey {
  id: string;
  prefix: string;
  secret: string;
}

/** Creates a data key for a workload (POST …/keys); the secret is in the answer once. */
export async function createKey(hub: TestHub, slug: string, body: Record<string, unknown> = {}, project = 'default'): Promise<DataKey> {
  const res = await api(hub.url, hub.adminToken, 'POST', `/api/v1/projects/${project}/workloads/${slug}/keys`, body);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.match(res.body.secret, /^ik_live_/);
  return { id: res.body.id, prefix: res.body.prefix, secret: res.body.secret };
}

export function endpointUrl(hub: TestHub, slug: string, project = 'default'): string {
  return `${hub.url}/endpoint/${project}/${slug}/v1`;
}

/** The official OpenAI client against a workload's endpoint; no retries of its own unless asked. */
export function openaiFor(hub: TestHub, slug: string, apiKey: string, options: { maxRetries?: number } = {}): OpenAI {
  return new OpenAI({ baseURL: endpointUrl(hub, slug), apiKey, maxRetries: options.maxRetries ?? 0, timeout: 30_000 });
}

/** A raw POST to the data plane (what curl would send). */
export function postData(hub: TestHub, slug: string, route: string, init: { key?: string; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<Response> {
  const body = init.body === undefined ? undefined : typeof init.body === 'string' || Buffer.isBuffer(init.body) ? init.body : JSON.stringify(init.body);
  return fetch(`${endpointUrl(hub, slug)}/${route}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(init.key ? { authorization: `Bearer ${init.key}` } : {}),
      ...init.headers,
    },
    ...(body === undefined ? {} : { body }),
    // A test waits on an answer for a bounded time: a hung request fails, it never blocks the suite.
    signal: init.signal ?? AbortSignal.timeout(20_000),
  });
}

/** Asserts an answer in the OpenAI error shape `{"error": {"message", "type", "code", "param"}}` and returns the error. */
export async function expectOpenAiError(res: Response, status: number, type?: string): Promise<{ message: string; type: string; code: string | null; param: string | null }> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const body = JSON.parse(text) as { error: { message: string; type: string; code: string | null; param: string | null } };
  assert.deepEqual(Object.keys(body), ['error'], text);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type'], text);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  if (type) assert.equal(body.error.type, type, text);
  return body.error;
}

/** One sample of the simulator's Prometheus text, e.g. `vllm:num_requests_running` (labels ignored, first series). */
export async function simMetric(port: number, name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  assert.ok(line, `no ${name} in the simulator's /metrics`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Waits until a sample of the simulator's /metrics satisfies `pred`; resolves with the milliseconds it took. */
export async function waitForSimMetric(port: number, name: string, pred: (v: number) => boolean, timeoutMs = 5000): Promise<number> {
  const started = Date.now();
  await eventually(`${name} on 127.0.0.1:${port}`, async () => (pred(await simMetric(port, name)) ? true : undefined), timeoutMs, 20);
  return Date.now() - started;
}

/** Resident memory of a process, in KiB (VmRSS from /proc). */
export function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  assert.ok(m, `no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

export function replicaIds(replicas: ReplicaInfo[]): string[] {
  return replicas.map((r) => r.id);
}

/** Lines of a child's output that pino wrote at warn level (40) with this message. */
export function warnLines(output: string, message: string | RegExp): string[] {
  return output.split('\n').filter((l) => {
    if (!l.startsWith('{')) return false;
    try {
      const rec = JSON.parse(l) as { level?: number; msg?: string };
      return rec.level === 40 && typeof rec.msg === 'string' && (typeof message === 'string' ? rec.msg.includes(message) : message.test(rec.msg));
    } catch {
      return false;
    }
  });
}

/** A small 16 kHz mono 16-bit PCM WAV (a tone), for upload tests. */
export function makeTestWav(seconds = 0.5, sampleRate = 16_000): Buffer {
  const samples = Math.round(seconds * sampleRate);
  const pcm = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) pcm.writeInt16LE(Math.round(6000 * Math.sin((2 * Math.PI * 440 * i) / sampleRate)), i * 2);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + pcm.length, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([header, pcm]);
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
