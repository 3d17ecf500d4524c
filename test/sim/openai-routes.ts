// OpenAI-compatible routes as vLLM / SGLang serve them: health, version, models, metrics, chat/completions, completions.
import { randomUUID } from 'node:crypto';
import { DEFAULT_MAX_TOKENS, requestedMaxTokens, runChoices, type ChoiceSpec } from './generate.ts';
import { renderMetrics } from './metrics.ts';
import { openaiError, type Ctx, type Route } from './server.ts';
import type { Sim } from './state.ts';
import { countTokens, flattenMessages } from './text.ts';

/** What a request's `model` field may name, and what /v1/models lists. */
export interface ModelCatalog {
  /** The name to echo and the key that seeds the output; throws the flavour's 404 for a model it does not serve. */
  resolve(requested: unknown): { echo: string; key: string };
  cards(): Record<string, unknown>[];
}

/** Base model (every --served-model-name) and loaded LoRA adapters; SGLang's `base:adapter` form too. */
export function servedModelCatalog(sim: Sim): ModelCatalog {
  const { config } = sim;
  const primary = config.servedNames[0]!;
  const ownedBy = config.flavour === 'sglang' ? 'sglang' : 'vllm';
  return {
    resolve(requested) {
      if (requested === undefined || requested === null || requested === '') return { echo: primary, key: primary };
      const name = String(requested);
      if (config.servedNames.includes(name)) return { echo: name, key: primary };
      const adapter = sim.lora.get(name) ?? (config.flavour === 'sglang' ? sglangAdapter(sim, name) : undefined);
      if (adapter) return { echo: name, key: `${primary}+lora:${adapter.name}` };
      throw openaiError(404, `The model \`${name}\` does not exist.`, 'NotFoundError', 'model');
    },
    cards() {
      if (!sim.ready) return [];
      const created = Math.floor(Date.now() / 1000);
      const base = config.servedNames.map((id) => ({
        id,
        object: 'model',
        created,
        owned_by: ownedBy,
        root: config.model,
        parent: null,
        max_model_len: config.maxModelLen,
        permission: [permission(created)],
      }));
      const adapters = sim.lora.list().map((a) => ({
        id: a.name,
        object: 'model',
        created: a.createdAt,
        owned_by: ownedBy,
        root: a.path,
        parent: a.base,
        max_model_len: null,
        permission: [permission(created)],
      }));
      return [...base, ...adapters];
    },
  };
}

function sglangAdapter(sim: Sim, name: string) {
  const colon = name.indexOf(':');
  return colon > 0 && sim.config.servedNames.includes(name.slice(0, colon)) ? sim.lora.get(name.slice(colon + 1)) : undefined;
}

function permission(created: number) {
  return {
    id: `modelperm-${randomUUID().replace(/-/g, '')}`,
    object: 'model_permission',
    created,
    allow_create_engine: false,
    allow_sampling: true,
    allow_logprobs: true,
    allow_search_indices: false,
    allow_view: true,
    allow_fine_tuning: false,
    organization: '*',
    group: null,
    is_blocking: false,
  };
}

/** /health, /ping, /version, /v1/models, /metrics (SGLang: only with --enable-metrics), SGLang's info routes. */
export function systemRoutes(sim: Sim, catalog: ModelCatalog): Route[] {
  const health = (ctx: Ctx) => ctx.send(sim.ready ? 200 : 503, '', 'application/json');
  const routes: Route[] = [
    { method: 'GET', path: '/health', handler: health },
    { method: 'GET', path: '/ping', handler: health },
    { method: 'GET', path: '/version', handler: (ctx) => ctx.sendJson(200, { version: sim.version }) },
    { method: 'GET', path: '/v1/models', handler: (ctx) => ctx.sendJson(200, { object: 'list', data: catalog.cards() }) },
  ];
  if (sim.config.flavour !== 'sglang' || sim.config.enableMetrics) {
    const flavour = sim.config.flavour === 'ollama' ? 'vllm' : sim.config.flavour;
    routes.push({
      method: 'GET',
      path: '/metrics',
      handler: (ctx) =>
        ctx.send(200, renderMetrics({ flavour, modelName: sim.config.servedNames[0]!, engine: sim.engine }), 'text/plain; version=0.0.4; charset=utf-8'),
    });
  }
  if (sim.config.flavour === 'sglang') {
    routes.push(
      { method: 'GET', path: '/health_generate', handler: health },
      {
        method: 'GET',
        path: '/get_model_info',
        handler: (ctx) => ctx.sendJson(200, { model_path: sim.config.model, tokenizer_path: sim.config.model, is_generation: true }),
      },
    );
  }
  return routes;
}

/** POST /v1/chat/completions and /v1/completions. */
export function textRoutes(catalog: ModelCatalog): Route[] {
  return [
    { method: 'POST', path: '/v1/chat/completions', handler: (ctx) => completions(ctx, catalog, 'chat'), inference: true },
    { method: 'POST', path: '/v1/completions', handler: (ctx) => completions(ctx, catalog, 'text'), inference: true },
  ];
}

async function completions(ctx: Ctx, catalog: ModelCatalog, kind: 'chat' | 'text'): Promise<void> {
  const body = await ctx.json();
  const model = catalog.resolve(body.model);
  const prompts = kind === 'chat' ? chatPrompt(ctx, body) : textPrompts(ctx, body);
  const n = typeof body.n === 'number' && Number.isInteger(body.n) && body.n >= 1 ? Math.min(body.n, 16) : 1;
  const requested = requestedMaxTokens(body, (m) => ctx.badRequest(m));
  const maxTokens = requested ?? DEFAULT_MAX_TOKENS;
  const seed = typeof body.seed === 'number' ? `\u0000seed=${body.seed}` : '';
  const specs: ChoiceSpec[] = [];
  for (const p of prompts) {
    const limit = ctx.sim.config.maxModelLen;
    if (p.tokens + maxTokens > limit) {
      throw ctx.badRequest(
        `This model's maximum context length is ${limit} tokens. However, you requested ${p.tokens + maxTokens} tokens ` +
          `(${p.tokens} in the messages, ${maxTokens} in the completion). Please reduce the length of the messages or completion.`,
      );
    }
    for (let k = 0; k < n; k++) {
      specs.push({ key: `${model.key}\u0000${p.text}${seed}${k ? `\u0000choice=${k}` : ''}`, prompt: p.text, promptTokens: p.tokens, maxTokens });
    }
  }
  const finish = requested === null ? 'stop' : 'length';
  const promptTokens = prompts.reduce((s, p) => s + p.tokens, 0);
  const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replace(/-/g, '')}`;
  const created = Math.floor(Date.now() / 1000);
  const object = kind === 'chat' ? 'chat.completion' : 'text_completion';
  const usage = (completion: number) => ({ prompt_tokens: promptTokens, total_tokens: promptTokens + completion, completion_tokens: completion, prompt_tokens_details: null });

  if (body.stream === true) {
    const streamOptions = typeof body.stream_options === 'object' && body.stream_options !== null ? (body.stream_options as Record<string, unknown>) : {};
    const chunkObject = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    const send = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      ctx.res.write(`data: ${JSON.stringify({ id, object: chunkObject, created, model: model.echo, choices, ...extra })}\n\n`);
    ctx.startStream('text/event-stream; charset=utf-8');
    if (kind === 'chat') {
      specs.forEach((_, index) => send([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]));
    }
    const result = await runChoices(ctx, model.key, specs, finish, (index, token, last) => {
      const reason = last ? finish : null;
      send([
        kind === 'chat'
          ? { index, delta: { content: token }, logprobs: null, finish_reason: reason, stop_reason: null }
          : { index, text: token, logprobs: null, finish_reason: reason, stop_reason: null },
      ]);
    });
    if (result.aborted) return void ctx.res.destroy();
    if (streamOptions.include_usage === true) send([], { usage: usage(result.completionTokens) });
    ctx.res.end('data: [DONE]\n\n');
    return;
  }

  const result = await runChoices(ctx, model.key, specs, finish);
  if (result.aborted) return;
  const choices = result.texts.map((text, index) =>
    kind === 'chat'
      ? { index, message: { role: 'assistant', content: text, reasoning_content: null, tool_calls: [] }, logprobs: null, finish_reason: finish, stop_reason: null }
      : { index, text, logprobs: null, finish_reason: finish, stop_reason: null, prompt_logprobs: null },
  );
  ctx.sendJson(200, { id, object, created, model: model.echo, choices, usage: usage(result.completionTokens), prompt_logprobs: null });
}

interface Prompt {
  text: string;
  tokens: number;
}

function chatPrompt(ctx: Ctx, body: Record<string, unknown>): Prompt[] {
  if (!Array.isArray(body.messages) || body.messages.length === 0) throw ctx.badRequest('messages: Field required (a non-empty list of messages)');
  const text = flattenMessages(body.messages);
  return [{ text, tokens: countTokens(text) + 3 * body.messages.length }];
}

/** `prompt`: a string, a list of strings, a list of token ids, or a list of token-id lists. */
function textPrompts(ctx: Ctx, body: Record<string, unknown>): Prompt[] {
  const p = body.prompt;
  if (typeof p === 'string') return [{ text: p, tokens: countTokens(p) }];
  if (Array.isArray(p) && p.length > 0) {
    if (p.every((x) => typeof x === 'number')) return [{ text: p.join(' '), tokens: p.length }];
    if (p.every((x) => typeof x === 'string')) return p.map((x: string) => ({ text: x, tokens: countTokens(x) }));
    if (p.every((x) => Array.isArray(x) && x.every((t) => typeof t === 'number'))) {
      return p.map((x: number[]) => ({ text: x.join(' '), tokens: Math.max(1, x.length) }));
    }
  }
  throw ctx.badRequest('prompt: Field required (a string, a list of strings or a list of token ids)');
}
