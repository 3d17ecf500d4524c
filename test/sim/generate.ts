// Runs a request's choices as engine sequences and produces their deterministic tokens (shared by OpenAI and Ollama routes).
import type { Ctx } from './server.ts';
import { TokenStream } from './text.ts';

export interface ChoiceSpec {
  /** Seeds the token stream: same key, same text. */
  key: string;
  prompt: string;
  promptTokens: number;
  maxTokens: number;
}

export interface GenerationResult {
  texts: string[];
  completionTokens: number;
  aborted: boolean;
}

/** Default output length when a request sets no max_tokens (finish_reason "stop"); a set max_tokens ends in "length". */
export const DEFAULT_MAX_TOKENS = 16;
const PREFIX_CHARS = 256;

/**
 * Runs every choice concurrently on the engine; `onToken` sees each token as it is produced (streaming), with
 * `last` true on a choice's final token. Resolves when all are done or the client went away.
 */
export async function runChoices(
  ctx: Ctx,
  modelKey: string,
  specs: ChoiceSpec[],
  finishReason: 'stop' | 'length',
  onToken?: (choice: number, text: string, last: boolean) => void,
): Promise<GenerationResult> {
  const texts = specs.map(() => '');
  let completionTokens = 0;
  const outcomes = await Promise.all(
    specs.map((spec, choice) => {
      const stream = new TokenStream(spec.key);
      const prefixKey = `${modelKey}\u0000${spec.prompt.slice(0, PREFIX_CHARS)}`;
      return ctx.sim.engine.run(
        { prefixKey, promptTokens: spec.promptTokens, maxTokens: spec.maxTokens },
        ctx.signal,
        (i) => {
          const token = stream.take();
          texts[choice] += token;
          completionTokens++;
          onToken?.(choice, token, i === spec.maxTokens - 1);
        },
        finishReason,
      );
    }),
  );
  return { texts, completionTokens, aborted: outcomes.includes('abort') };
}

/** One engine slot for a request that produces no tokens (embeddings, rerank, images, audio): queueing and TTFT apply. */
export async function occupySlot(ctx: Ctx, modelKey: string, prompt: string, promptTokens: number): Promise<boolean> {
  const prefixKey = `${modelKey}\u0000${prompt.slice(0, PREFIX_CHARS)}`;
  const outcome = await ctx.sim.engine.run({ prefixKey, promptTokens, maxTokens: 0 }, ctx.signal, () => {}, 'stop');
  return outcome !== 'abort';
}

/**
 * The request's output length: `max_tokens` / `max_completion_tokens` (OpenAI) or `options.num_predict` (Ollama).
 * Returns null when none is set.
 */
export function requestedMaxTokens(body: Record<string, unknown>, badRequest: (m: string) => Error): number | null {
  const options = typeof body.options === 'object' && body.options !== null ? (body.options as Record<string, unknown>) : {};
  for (const [name, value] of [
    ['max_tokens', body.max_tokens],
    ['max_completion_tokens', body.max_completion_tokens],
    ['num_predict', options.num_predict],
  ] as const) {
    if (value === undefined || value === null) continue;
    if (name === 'num_predict' && typeof value === 'number' && value < 0) return null;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw badRequest(`${name} must be at least 1, got ${JSON.stringify(value)}.`);
    }
    return value;
  }
  return null;
}
