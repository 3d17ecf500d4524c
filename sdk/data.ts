// DataClient and Endpoint: calls to a workload's OpenAI-compatible data plane (/endpoint/{project}/{workload}/v1) with a data key.
import { z } from 'zod';
import { callHub, expectShape, IkHubError } from './errors.ts';
import { normalizeHubUrl } from './management.ts';

export interface DataClientOptions {
  /** Base URL of the hub, e.g. `https://hub.example.com`. */
  hubUrl: string;
  /** Default `default`. */
  project?: string;
  /** Per-request timeout; default 600 s (the hub's own request timeout). */
  timeoutMs?: number;
}

export interface DataFromEnvOptions {
  /** Default: IK_PROJECT, then `default`. */
  project?: string;
  /** Default: IK_HUB_URL. */
  hubUrl?: string;
  timeoutMs?: number;
}

export interface EndpointOptions {
  /** The workload's data key (`ik_live_…`). Required; typed to accept `process.env.X` directly. */
  apiKey: string | undefined;
}

export type ChatRole = 'system' | 'developer' | 'user' | 'assistant' | 'tool';

/** One chat message; `content` may be a list of OpenAI content parts (text, image_url, …), passed through as given. */
export interface ChatMessage {
  role: ChatRole;
  content: string | Array<Record<string, unknown>>;
  name?: string;
}

interface GenerateCommon {
  /** Prepended as a system message. */
  system?: string;
  temperature?: number;
  maxTokens?: number;
  /** Default: the workload slug, which the hub maps to the workload's model (an adapter's name selects that adapter). */
  model?: string;
  stop?: string | string[];
}

export type GenerateTextOptions = GenerateCommon & ({ prompt: string; messages?: never } | { messages: ChatMessage[]; prompt?: never });

export interface GenerateTextResult {
  text: string;
  model: string;
  finishReason: string | null;
  usage: { promptTokens: number; completionTokens: number; totalTokens: number } | null;
}

export interface EmbedOptions {
  input: string | string[];
  /** Default: the workload slug (see GenerateTextOptions.model). */
  model?: string;
}

export interface EmbedResult {
  /** One vector per input, in input order. */
  embeddings: number[][];
  model: string;
  usage: { promptTokens: number; totalTokens: number } | null;
}

const DEFAULT_TIMEOUT_MS = 600_000;

export class DataClient {
  readonly hubUrl: string;
  readonly project: string;
  readonly #timeoutMs: number;

  constructor(options: DataClientOptions) {
    this.hubUrl = normalizeHubUrl(options.hubUrl, 'hubUrl');
    this.project = options.project || 'default';
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Reads IK_HUB_URL and IK_PROJECT; options given here win over the environment. */
  static fromEnv(options: DataFromEnvOptions = {}): DataClient {
    const hubUrl = options.hubUrl || process.env.IK_HUB_URL;
    if (!hubUrl) throw new Error('IK_HUB_URL is not set: set it to the hub URL (e.g. http://127.0.0.1:8080) or pass { hubUrl }');
    normalizeHubUrl(hubUrl, options.hubUrl ? 'hubUrl' : 'IK_HUB_URL');
    return new DataClient({
      hubUrl,
      project: options.project || process.env.IK_PROJECT || 'default',
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
  }

  /** A handle on one workload's endpoint, authenticated with its data key. */
  endpoint(workload: string, options: EndpointOptions): Endpoint {
    if (!options.apiKey) {
      throw new Error(`no data key for endpoint ${this.project}/${workload}: pass { apiKey: "ik_live_…" } (create one with ManagementClient.createKey or \`ik keys create ${workload}\`)`);
    }
    return new Endpoint(this.hubUrl, this.project, workload, options.apiKey, this.#timeoutMs);
  }
}

const chatCompletionSchema = z.object({
  model: z.string(),
  choices: z
    .array(
      z.object({
        message: z.object({ content: z.string().nullish() }),
        finish_reason: z.string().nullish(),
      }),
    )
    .min(1),
  usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number(), total_tokens: z.number() }).nullish(),
});

const embeddingsSchema = z.object({
  model: z.string(),
  data: z.array(z.object({ index: z.number().int(), embedding: z.array(z.number()) })),
  usage: z.object({ prompt_tokens: z.number(), total_tokens: z.number() }).nullish(),
});

export class Endpoint {
  /** `{hub}/endpoint/{project}/{workload}/v1`: hand it (with the key) to any OpenAI client as its base URL. */
  readonly baseUrl: string;
  readonly #apiKey: string;
  readonly #timeoutMs: number;

  constructor(
    hubUrl: string,
    readonly project: string,
    readonly workload: string,
    apiKey: string,
    timeoutMs: number,
  ) {
    this.baseUrl = `${hubUrl}/endpoint/${encodeURIComponent(project)}/${encodeURIComponent(workload)}/v1`;
    this.#apiKey = apiKey;
    this.#timeoutMs = timeoutMs;
  }

  /** One chat completion (`POST chat/completions`), not streamed. */
  async generateText(options: GenerateTextOptions): Promise<GenerateTextResult> {
    const messages: ChatMessage[] = [
      ...(options.system === undefined ? [] : [{ role: 'system' as const, content: options.system }]),
      ...(options.messages ?? [{ role: 'user' as const, content: options.prompt ?? '' }]),
    ];
    // Fields left undefined are dropped by JSON.stringify, so the backend applies its own defaults.
    const body = {
      model: options.model ?? this.workload,
      messages,
      temperature: options.temperature,
      max_tokens: options.maxTokens,
      stop: options.stop,
    };
    const res = expectShape(chatCompletionSchema, await this.#post('chat/completions', body), 'chat completion');
    const choice = res.choices[0]!;
    return {
      text: choice.message.content ?? '',
      model: res.model,
      finishReason: choice.finish_reason ?? null,
      usage: res.usage ? { promptTokens: res.usage.prompt_tokens, completionTokens: res.usage.completion_tokens, totalTokens: res.usage.total_tokens } : null,
    };
  }

  /** Embeddings for one text or several (`POST embeddings`). */
  async embed(options: EmbedOptions): Promise<EmbedResult> {
    const body = { model: options.model ?? this.workload, input: options.input };
    const res = expectShape(embeddingsSchema, await this.#post('embeddings', body), 'embeddings response');
    const count = typeof options.input === 'string' ? 1 : options.input.length;
    if (res.data.length !== count) {
      throw new IkHubError({ status: null, code: 'INVALID_RESPONSE', message: `asked for ${count} embeddings, the endpoint answered ${res.data.length}` });
    }
    return {
      embeddings: [...res.data].sort((a, b) => a.index - b.index).map((d) => d.embedding),
      model: res.model,
      usage: res.usage ? { promptTokens: res.usage.prompt_tokens, totalTokens: res.usage.total_tokens } : null,
    };
  }

  async #post(route: string, body: unknown): Promise<unknown> {
    const res = await callHub({ method: 'POST', url: `${this.baseUrl}/${route}`, token: this.#apiKey, body, timeoutMs: this.#timeoutMs });
    return res.body;
  }
}
