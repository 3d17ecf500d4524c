// Pooling-model routes as vLLM serves them: embeddings, rerank (/rerank, /v1/rerank, /v2/rerank), score, classify, pooling.
import { randomUUID } from 'node:crypto';
import { occupySlot } from './generate.ts';
import type { ModelCatalog } from './openai-routes.ts';
import type { Ctx, Route } from './server.ts';
import { countTokens, embeddingVector, pairScore, seededRandom, hash32 } from './text.ts';

export const DEFAULT_EMBEDDING_DIMS = 64;
const MAX_EMBEDDING_DIMS = 8192;
const CLASS_LABELS = ['negative', 'positive'];

export function poolingRoutes(catalog: ModelCatalog): Route[] {
  const rerankRoute = (path: string): Route => ({ method: 'POST', path, handler: (ctx) => rerank(ctx, catalog), inference: true });
  const both = (name: string, handler: (ctx: Ctx, c: ModelCatalog) => Promise<void>): Route[] =>
    [`/${name}`, `/v1/${name}`].map((path) => ({ method: 'POST', path, handler: (ctx: Ctx) => handler(ctx, catalog), inference: true }));
  return [
    { method: 'POST', path: '/v1/embeddings', handler: (ctx) => embeddings(ctx, catalog), inference: true },
    rerankRoute('/rerank'),
    rerankRoute('/v1/rerank'),
    rerankRoute('/v2/rerank'),
    ...both('score', score),
    ...both('classify', classify),
    ...both('pooling', pooling),
  ];
}

export async function embeddings(ctx: Ctx, catalog: ModelCatalog): Promise<void> {
  const body = await ctx.json();
  const model = catalog.resolve(body.model);
  const inputs = inputList(ctx, body.input, 'input');
  const dims = body.dimensions === undefined || body.dimensions === null ? DEFAULT_EMBEDDING_DIMS : body.dimensions;
  if (typeof dims !== 'number' || !Number.isInteger(dims) || dims < 1 || dims > MAX_EMBEDDING_DIMS) {
    throw ctx.badRequest(`dimensions must be an integer between 1 and ${MAX_EMBEDDING_DIMS}, got ${JSON.stringify(body.dimensions)}`);
  }
  const tokens = inputs.reduce((s, t) => s + countTokens(t), 0);
  if (!(await occupySlot(ctx, model.key, inputs[0]!, tokens))) return;
  const base64 = body.encoding_format === 'base64';
  const data = inputs.map((text, index) => {
    const v = embeddingVector(`${model.key}\u0000${text}`, dims);
    return { index, object: 'embedding', embedding: base64 ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v };
  });
  ctx.sendJson(200, {
    id: `embd-${uid()}`,
    object: 'list',
    created: now(),
    model: model.echo,
    data,
    usage: { prompt_tokens: tokens, total_tokens: tokens, completion_tokens: 0, prompt_tokens_details: null },
  });
}

async function rerank(ctx: Ctx, catalog: ModelCatalog): Promise<void> {
  const body = await ctx.json();
  const model = catalog.resolve(body.model);
  if (typeof body.query !== 'string') throw ctx.badRequest('query: Field required');
  const docs = documentTexts(ctx, body.documents);
  const topN = typeof body.top_n === 'number' && body.top_n > 0 ? Math.min(body.top_n, docs.length) : docs.length;
  const tokens = docs.reduce((s, d) => s + countTokens(body.query as string) + countTokens(d), 0);
  if (!(await occupySlot(ctx, model.key, body.query, tokens))) return;
  const results = docs
    .map((text, index) => ({ index, document: { text }, relevance_score: pairScore(model.key, body.query as string, text) }))
    .sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index)
    .slice(0, topN);
  ctx.sendJson(200, { id: `rerank-${uid()}`, model: model.echo, usage: { total_tokens: tokens }, results });
}

async function score(ctx: Ctx, catalog: ModelCatalog): Promise<void> {
  const body = await ctx.json();
  const model = catalog.resolve(body.model);
  const left = inputList(ctx, body.text_1 ?? body.data_1 ?? body.queries, 'text_1');
  const right = inputList(ctx, body.text_2 ?? body.data_2 ?? body.documents, 'text_2');
  if (left.length !== 1 && left.length !== right.length) throw ctx.badRequest('text_1 must be one text or as many texts as text_2');
  const pairs = right.map((r, i) => [left.length === 1 ? left[0]! : left[i]!, r] as const);
  const tokens = pairs.reduce((s, [a, b]) => s + countTokens(a) + countTokens(b), 0);
  if (!(await occupySlot(ctx, model.key, pairs[0]![0], tokens))) return;
  const data = pairs.map(([a, b], index) => ({ index, object: 'score', score: pairScore(model.key, a, b) }));
  ctx.sendJson(200, { id: `score-${uid()}`, object: 'list', created: now(), model: model.echo, data, usage: usage(tokens) });
}

async function classify(ctx: Ctx, catalog: ModelCatalog): Promise<void> {
  const body = await ctx.json();
  const model = catalog.resolve(body.model);
  const inputs = inputList(ctx, body.input, 'input');
  const tokens = inputs.reduce((s, t) => s + countTokens(t), 0);
  if (!(await occupySlot(ctx, model.key, inputs[0]!, tokens))) return;
  const data = inputs.map((text, index) => {
    const p = seededRandom(hash32(`${model.key}\u0000classify\u0000${text}`))();
    const probs = [1 - p, p];
    return { index, label: CLASS_LABELS[p >= 0.5 ? 1 : 0], probs, num_classes: CLASS_LABELS.length };
  });
  ctx.sendJson(200, { id: `classify-${uid()}`, object: 'list', created: now(), model: model.echo, data, usage: usage(tokens) });
}

/** Reward models answer through /pooling: one score per input. */
async function pooling(ctx: Ctx, catalog: ModelCatalog): Promise<void> {
  const body = await ctx.json();
  const model = catalog.resolve(body.model);
  const inputs = body.messages !== undefined ? [JSON.stringify(body.messages)] : inputList(ctx, body.input, 'input');
  const tokens = inputs.reduce((s, t) => s + countTokens(t), 0);
  if (!(await occupySlot(ctx, model.key, inputs[0]!, tokens))) return;
  const data = inputs.map((text, index) => ({ index, object: 'pooling', data: [seededRandom(hash32(`${model.key}\u0000reward\u0000${text}`))()] }));
  ctx.sendJson(200, { id: `pool-${uid()}`, object: 'list', created: now(), model: model.echo, data, usage: usage(tokens) });
}

/** A string, a list of strings, a list of token ids or a list of token-id lists, as a list of texts. */
export function inputList(ctx: Ctx, input: unknown, field: string): string[] {
  if (typeof input === 'string') return [input];
  if (Array.isArray(input) && input.length > 0) {
    if (input.every((x) => typeof x === 'string')) return input as string[];
    if (input.every((x) => typeof x === 'number')) return [input.join(' ')];
    if (input.every((x) => Array.isArray(x))) return input.map((x: unknown[]) => x.join(' '));
  }
  throw ctx.badRequest(`${field}: Field required (a string or a non-empty list)`);
}

function documentTexts(ctx: Ctx, documents: unknown): string[] {
  if (Array.isArray(documents) && documents.length > 0) {
    return documents.map((d) => {
      if (typeof d === 'string') return d;
      if (typeof d === 'object' && d !== null && typeof (d as { text?: unknown }).text === 'string') return (d as { text: string }).text;
      throw ctx.badRequest('documents: each document must be a string or {"text": string}');
    });
  }
  throw ctx.badRequest('documents: Field required (a non-empty list)');
}

function usage(tokens: number) {
  return { prompt_tokens: tokens, total_tokens: tokens, completion_tokens: 0, prompt_tokens_details: null };
}

function uid(): string {
  return randomUUID().replace(/-/g, '');
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}
