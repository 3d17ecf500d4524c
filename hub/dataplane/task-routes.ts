// Which routes each task type serves on the data plane (DESIGN §4.4), and where a route lives on the backend.
import type { TaskType } from '../../shared/spec/backends.ts';

/** Sync routes under /endpoint/{p}/{w}/v1. The async-only task types have none. */
export const syncRoutes: Record<TaskType, readonly string[]> = {
  text2text: ['chat/completions', 'completions'],
  image2text: ['chat/completions'],
  embedding: ['embeddings'],
  text2image: ['images/generations'],
  image2image: ['images/edits'],
  text2audio: ['audio/speech'],
  audio2text: ['audio/transcriptions', 'audio/translations'],
  text2video: [],
  reranker: [],
  classification: [],
  reward: [],
  score: [],
};

/** Routes an async job may call: every sync route, plus the async-only ones. */
export const asyncRoutes: Record<TaskType, readonly string[]> = {
  ...syncRoutes,
  text2video: ['videos/generations'],
  reranker: ['rerank'],
  classification: ['classify'],
  reward: ['pooling'],
  score: ['score'],
};

/** The backend's path for a route: vLLM serves the pooling routes without the /v1 prefix. */
export function upstreamPath(route: string): string {
  if (route === 'classify' || route === 'pooling') return `/${route}`;
  return `/v1/${route}`;
}

/** The 404 text for a route the task type does not serve: it lists the routes it does serve. */
export function routeNotServed(taskType: TaskType, route: string): string {
  const sync = syncRoutes[taskType];
  const served = sync.length > 0 ? sync.map((r) => `POST ${r}`) : asyncRoutes[taskType].map((r) => `POST async/${r}`);
  return `this workload (task type ${taskType}) does not serve ${route}; it serves: ${[...served, 'GET models'].join(', ')}`;
}
