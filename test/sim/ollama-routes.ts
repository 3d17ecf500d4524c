// Ollama's API: version, tags, pull (NDJSON progress), chat, generate, embed, show, delete, and its OpenAI-compatible routes.
import { createHash } from 'node:crypto';
import { DEFAULT_MAX_TOKENS, occupySlot, requestedMaxTokens, runChoices } from './generate.ts';
import { sleep } from './engine.ts';
import { textRoutes, type ModelCatalog } from './openai-routes.ts';
import { DEFAULT_EMBEDDING_DIMS, embeddings, inputList } from './pooling-routes.ts';
import { HttpError, type Ctx, type Route } from './server.ts';
import type { Sim } from './state.ts';
import { countTokens, embeddingVector, flattenMessages, hash32 } from './text.ts';

interface PulledModel {
  name: string;
  digest: string;
  size: number;
  modifiedAt: Date;
}

/** `llama3.2` → `llama3.2:latest`, as Ollama names models. */
export function normalizeModelName(name: string): string {
  const slash = name.lastIndexOf('/');
  return name.slice(slash + 1).includes(':') ? name : `${name}:latest`;
}

/** Names that the fake registry does not have: a pull of one fails like a missing manifest. */
function missingFromRegistry(name: string): boolean {
  return /^(missing|does-not-exist)/.test(name);
}

export function ollamaRoutes(sim: Sim): Route[] {
  const models = new Map<string, PulledModel>();
  const addModel = (name: string) => {
    const digest = createHash('sha256').update(name).digest('hex');
    models.set(name, { name, digest, size: 1_000_000_000 + (hash32(name) % 4_000_000_000), modifiedAt: new Date() });
  };
  for (const m of sim.knobs.ollamaModels) addModel(normalizeModelName(m));

  const notFound = (name: string) => new HttpError(404, { error: `model "${name}" not found, try pulling it first` });
  const lookup = (requested: unknown): { echo: string; key: string } => {
    const echo = typeof requested === 'string' ? requested : '';
    if (!echo) throw new HttpError(400, { error: 'model is required' });
    const key = normalizeModelName(echo);
    if (!models.has(key)) throw notFound(echo);
    return { echo, key };
  };
  const catalog: ModelCatalog = {
    resolve(requested) {
      try {
        return lookup(requested);
      } catch (err) {
        // The OpenAI-compatible routes wrap the message in OpenAI's error shape.
        const message = err instanceof HttpError ? (err.payload as { error: string }).error : String(err);
        throw new HttpError(err instanceof HttpError ? err.status : 500, { error: { message, type: 'api_error', param: null, code: null } });
      }
    },
    cards() {
      return [...models.values()].map((m) => ({ id: m.name, object: 'model', created: Math.floor(m.modifiedAt.getTime() / 1000), owned_by: 'library' }));
    },
  };

  const tags = (ctx: Ctx) =>
    ctx.sendJson(200, {
      models: [...models.values()].map((m) => ({
        name: m.name,
        model: m.name,
        modified_at: m.modifiedAt.toISOString(),
        size: m.size,
        digest: m.digest,
        details: { parent_model: '', format: 'gguf', family: 'llama', families: ['llama'], parameter_size: '8.0B', quantization_level: 'Q4_K_M' },
      })),
    });

  async function pull(ctx: Ctx): Promise<void> {
    const body = await ctx.json();
    const raw = typeof body.model === 'string' && body.model ? body.model : typeof body.name === 'string' ? body.name : '';
    if (!raw) throw new HttpError(400, { error: 'model is required' });
    const name = normalizeModelName(raw);
    const stream = body.stream !== false;
    const lines = pullPlan(name, models.has(name));
    const stepMs = (models.has(name) ? sim.knobs.ollamaPullMs / 10 : sim.knobs.ollamaPullMs) / lines.length;
    if (stream) ctx.startStream('application/x-ndjson');
    for (const line of lines) {
      if (stepMs > 0 && !(await sleep(stepMs, ctx.signal))) return;
      if (ctx.signal.aborted) return;
      if ('error' in line && !stream) throw new HttpError(500, line);
      if (stream) ctx.res.write(`${JSON.stringify(line)}\n`);
      if ('error' in line) return void ctx.res.end();
    }
    addModel(name);
    sim.log(`time=${new Date().toISOString()} level=INFO source=download.go msg="pulled model" model=${name}`);
    if (stream) ctx.res.end();
    else ctx.sendJson(200, { status: 'success' });
  }

  async function chatOrGenerate(ctx: Ctx, kind: 'chat' | 'generate'): Promise<void> {
    const body = await ctx.json();
    const model = lookup(body.model);
    const createdAt = () => new Date().toISOString();
    const prompt = kind === 'chat' ? flattenMessages(body.messages) : typeof body.prompt === 'string' ? body.prompt : '';
    if (!prompt) {
      // No messages / empty prompt: Ollama just loads the model.
      const base = { model: model.echo, created_at: createdAt(), done: true, done_reason: 'load' };
      return ctx.sendJson(200, kind === 'chat' ? { ...base, message: { role: 'assistant', content: '' } } : { ...base, response: '' });
    }
    const requested = requestedMaxTokens(body, (m) => new HttpError(400, { error: m }));
    const maxTokens = requested ?? DEFAULT_MAX_TOKENS;
    const finish = requested === null ? 'stop' : 'length';
    const promptTokens = countTokens(prompt);
    const spec = { key: `${model.key}\u0000${prompt}`, prompt, promptTokens, maxTokens };
    const piece = (content: string) => (kind === 'chat' ? { message: { role: 'assistant', content } } : { response: content });
    const started = process.hrtime.bigint();
    const stream = body.stream !== false;
    if (stream) ctx.startStream('application/x-ndjson');
    const result = await runChoices(ctx, model.key, [spec], finish, (_, token) => {
      if (stream) ctx.res.write(`${JSON.stringify({ model: model.echo, created_at: createdAt(), ...piece(token), done: false })}\n`);
    });
    if (result.aborted) return void (stream && ctx.res.destroy());
    const total = Number(process.hrtime.bigint() - started);
    const final = {
      model: model.echo,
      created_at: createdAt(),
      ...piece(stream ? '' : result.texts[0]!),
      done_reason: finish,
      done: true,
      ...(kind === 'generate' ? { context: [1, 2, 3] } : {}),
      total_duration: total,
      load_duration: 0,
      prompt_eval_count: promptTokens,
      prompt_eval_duration: Math.floor(total / 4),
      eval_count: result.completionTokens,
      eval_duration: total - Math.floor(total / 4),
    };
    if (stream) ctx.res.end(`${JSON.stringify(final)}\n`);
    else ctx.sendJson(200, final);
  }

  async function embed(ctx: Ctx): Promise<void> {
    const body = await ctx.json();
    const model = lookup(body.model);
    const inputs = inputList(ctx, body.input, 'input');
    const dims = typeof body.dimensions === 'number' && body.dimensions >= 1 ? Math.min(body.dimensions, 8192) : DEFAULT_EMBEDDING_DIMS;
    const started = process.hrtime.bigint();
    const tokens = inputs.reduce((s, t) => s + countTokens(t), 0);
    if (!(await occupySlot(ctx, model.key, inputs[0]!, tokens))) return;
    ctx.sendJson(200, {
      model: model.echo,
      embeddings: inputs.map((t) => embeddingVector(`${model.key}\u0000${t}`, dims)),
      total_duration: Number(process.hrtime.bigint() - started),
      load_duration: 0,
      prompt_eval_count: tokens,
    });
  }

  async function legacyEmbeddings(ctx: Ctx): Promise<void> {
    const body = await ctx.json();
    const model = lookup(body.model);
    const prompt = typeof body.prompt === 'string' ? body.prompt : '';
    ctx.sendJson(200, { embedding: embeddingVector(`${model.key}\u0000${prompt}`, DEFAULT_EMBEDDING_DIMS) });
  }

  async function show(ctx: Ctx): Promise<void> {
    const body = await ctx.json();
    const raw = typeof body.model === 'string' ? body.model : typeof body.name === 'string' ? body.name : '';
    const m = models.get(normalizeModelName(raw));
    if (!m) throw new HttpError(404, { error: `model '${raw}' not found` });
    ctx.sendJson(200, {
      modelfile: `FROM ${m.name}\n`,
      parameters: '',
      template: '{{ .Prompt }}',
      details: { parent_model: '', format: 'gguf', family: 'llama', families: ['llama'], parameter_size: '8.0B', quantization_level: 'Q4_K_M' },
      model_info: { 'general.architecture': 'llama', 'llama.context_length': sim.config.maxModelLen },
      capabilities: ['completion'],
      modified_at: m.modifiedAt.toISOString(),
    });
  }

  async function remove(ctx: Ctx): Promise<void> {
    const body = await ctx.json();
    const raw = typeof body.model === 'string' ? body.model : typeof body.name === 'string' ? body.name : '';
    if (!models.delete(normalizeModelName(raw))) throw new HttpError(404, { error: `model '${raw}' not found` });
    ctx.send(200, '', 'application/json');
  }

  return [
    { method: 'GET', path: '/', handler: (ctx) => ctx.send(200, 'Ollama is running', 'text/plain; charset=utf-8'), gated: true },
    { method: 'GET', path: '/api/version', handler: (ctx) => ctx.sendJson(200, { version: sim.version }), gated: true },
    { method: 'GET', path: '/api/tags', handler: tags, gated: true },
    { method: 'GET', path: '/api/ps', handler: (ctx) => ctx.sendJson(200, { models: [] }), gated: true },
    { method: 'POST', path: '/api/pull', handler: pull, inference: true },
    { method: 'POST', path: '/api/chat', handler: (ctx) => chatOrGenerate(ctx, 'chat'), inference: true },
    { method: 'POST', path: '/api/generate', handler: (ctx) => chatOrGenerate(ctx, 'generate'), inference: true },
    { method: 'POST', path: '/api/embed', handler: embed, inference: true },
    { method: 'POST', path: '/api/embeddings', handler: legacyEmbeddings, inference: true },
    { method: 'POST', path: '/api/show', handler: show, gated: true },
    { method: 'DELETE', path: '/api/delete', handler: remove, gated: true },
    ...textRoutes(catalog),
    { method: 'POST', path: '/v1/embeddings', handler: (ctx) => embeddings(ctx, catalog), inference: true },
    { method: 'GET', path: '/v1/models', handler: (ctx) => ctx.sendJson(200, { object: 'list', data: catalog.cards() }), gated: true },
  ];
}

type PullLine = { status: string; digest?: string; total?: number; completed?: number } | { error: string };

/** The NDJSON lines of a pull: manifest, per-layer progress (the weights layer in five steps), verify, write, success. */
function pullPlan(name: string, alreadyPulled: boolean): PullLine[] {
  const lines: PullLine[] = [{ status: 'pulling manifest' }];
  if (missingFromRegistry(name)) return [...lines, { error: 'pull model manifest: file does not exist' }];
  const layers = [
    { digest: createHash('sha256').update(`${name}/weights`).digest('hex'), total: 1_000_000_000 + (hash32(name) % 4_000_000_000) },
    { digest: createHash('sha256').update(`${name}/template`).digest('hex'), total: 1_400 + (hash32(name) % 600) },
    { digest: createHash('sha256').update(`${name}/params`).digest('hex'), total: 96 },
  ];
  for (const [i, layer] of layers.entries()) {
    const steps = i === 0 && !alreadyPulled ? 5 : 1;
    for (let s = 1; s <= steps; s++) {
      lines.push({ status: `pulling ${layer.digest.slice(0, 12)}`, digest: `sha256:${layer.digest}`, total: layer.total, completed: Math.round((layer.total * s) / steps) });
    }
  }
  lines.push({ status: 'verifying sha256 digest' }, { status: 'writing manifest' }, { status: 'success' });
  return lines;
}
