// Deterministic "model output": seeded token streams, prompt token counts and embedding vectors from a hash of the input.

const VOCAB = [
  'the', 'model', 'answers', 'with', 'a', 'simulated', 'token', 'stream', 'for', 'testing', 'only', 'and', 'every',
  'word', 'is', 'chosen', 'from', 'seeded', 'hash', 'of', 'prompt', 'so', 'same', 'request', 'gives', 'text',
  'gpu', 'cache', 'batch', 'queue', 'latency', 'replica', 'hub', 'agent', 'worker', 'endpoint', 'adapter', 'prefix',
  'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'river', 'stone', 'cloud', 'light', 'signal', 'value',
  'north', 'south', 'east', 'west', 'blue', 'green', 'amber', 'silver', 'copper', 'paper', 'glass', 'wind', 'fire',
] as const;

/** FNV-1a over the UTF-16 code units, then a murmur-style finalizer so nearby inputs spread well. */
export function hash32(input: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < input.length; i++) {
    h ^= input.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** hash32 over bytes (uploaded files). */
export function hashBytes(data: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) {
    h ^= data[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return hash32(String(h), data.length);
}

/** mulberry32: a tiny seeded PRNG in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A deterministic token stream for (model, prompt): token i is the same on every call. */
export class TokenStream {
  private readonly next: () => number;
  private count = 0;

  constructor(key: string) {
    this.next = seededRandom(hash32(key));
  }

  /** The next token's text, with a leading space except for the first token. */
  take(): string {
    const word = VOCAB[Math.floor(this.next() * VOCAB.length)]!;
    return this.count++ === 0 ? word : ` ${word}`;
  }
}

/** The whole completion text for (key, n tokens): the concatenation of the streamed tokens. */
export function completionText(key: string, tokens: number): string {
  const stream = new TokenStream(key);
  let text = '';
  for (let i = 0; i < tokens; i++) text += stream.take();
  return text;
}

/** Roughly four UTF-8 bytes per token, at least one: deterministic and close enough to a real tokenizer. */
export function countTokens(text: string): number {
  return Math.max(1, Math.ceil(Buffer.byteLength(text) / 4));
}

/** A unit-length vector of `dims` floats derived from the input. */
export function embeddingVector(key: string, dims: number): number[] {
  const next = seededRandom(hash32(key));
  const v = new Array<number>(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    const x = next() * 2 - 1;
    v[i] = x;
    norm += x * x;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < dims; i++) v[i] = Math.fround(v[i]! * scale);
  return v;
}

/** A score in [0, 1) for a pair of texts (rerank, score). */
export function pairScore(model: string, a: string, b: string): number {
  return seededRandom(hash32(`${model}\u0000${a}\u0001${b}`))();
}

/** Flattens OpenAI chat messages into one prompt string: text parts verbatim, other parts by a short hash. */
export function flattenMessages(messages: unknown): string {
  if (!Array.isArray(messages)) return '';
  let out = '';
  for (const m of messages) {
    if (typeof m !== 'object' || m === null) continue;
    const msg = m as Record<string, unknown>;
    const role = typeof msg.role === 'string' ? msg.role : 'user';
    out += `<|${role}|>${flattenContent(msg.content)}\n`;
  }
  return out;
}

function flattenContent(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let out = '';
  for (const part of content) {
    if (typeof part !== 'object' || part === null) continue;
    const p = part as Record<string, unknown>;
    if (p.type === 'text' && typeof p.text === 'string') out += p.text;
    else out += `[${String(p.type)}:${hash32(JSON.stringify(p)).toString(16)}]`;
  }
  return out;
}
