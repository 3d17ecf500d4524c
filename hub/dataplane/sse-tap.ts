// Watches a relayed response on its way to the client, without holding it back: the time of the first byte,
// the usage the backend reports, and (for streams where the hub asked for usage on the client's behalf) the usage
// chunk the client did not ask for, which is dropped.
import { StringDecoder } from 'node:string_decoder';
import { Transform, type TransformCallback } from 'node:stream';

const USAGE_BYTES = Buffer.from('"usage"');

function endsWithBlankLine(chunk: Buffer): boolean {
  return chunk.length >= 2 && chunk[chunk.length - 2] === 10 && chunk[chunk.length - 1] === 10;
}

export interface Usage {
  prompt_tokens: number | null;
  completion_tokens: number | null;
}

/** A JSON body is read for its usage only up to this size. */
const JSON_TAP_LIMIT = 1024 * 1024;

export function usageOf(body: unknown): Usage | null {
  if (typeof body !== 'object' || body === null || !('usage' in body)) return null;
  const u = (body as { usage: unknown }).usage;
  if (typeof u !== 'object' || u === null) return null;
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const usage = u as { prompt_tokens?: unknown; completion_tokens?: unknown };
  return { prompt_tokens: n(usage.prompt_tokens), completion_tokens: n(usage.completion_tokens) };
}

export class ResponseTap extends Transform {
  firstByteAt: number | null = null;
  usage: Usage | null = null;
  private pending = '';
  /** Chunks are decoded as one text: a character split between two chunks stays whole. */
  private readonly decoder = new StringDecoder('utf8');
  /** The previous chunk ended with a whole event, so nothing is held back (in `pending` or the decoder). */
  private atEventBoundary = true;
  private jsonChunks: Buffer[] | null;
  private jsonBytes = 0;

  constructor(
    readonly kind: 'sse' | 'json' | 'other',
    /** The hub added stream_options.include_usage: the usage-only chunk is not the client's. */
    private readonly dropUsageChunk: boolean,
    private readonly now: () => number,
  ) {
    super();
    this.jsonChunks = kind === 'json' ? [] : null;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.firstByteAt === null) this.firstByteAt = this.now();
    if (this.kind === 'sse') {
      const boundary = endsWithBlankLine(chunk);
      // Most chunks are whole events without usage: they pass as they came, without decoding.
      if (this.atEventBoundary && boundary && chunk.indexOf(USAGE_BYTES) < 0) return callback(null, chunk);
      this.atEventBoundary = boundary;
      return callback(null, this.filterEvents(this.decoder.write(chunk)));
    }
    if (this.jsonChunks && this.jsonBytes + chunk.length <= JSON_TAP_LIMIT) {
      this.jsonChunks.push(chunk);
      this.jsonBytes += chunk.length;
    } else {
      this.jsonChunks = null;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.jsonChunks) {
      try {
        this.usage = usageOf(JSON.parse(Buffer.concat(this.jsonChunks).toString('utf8')));
      } catch {
        // not JSON after all: no usage
      }
    }
    const rest = this.pending + this.decoder.end();
    callback(null, rest.length > 0 ? rest : undefined);
  }

  /** Passes complete SSE events through, noting (and maybe dropping) the usage event; holds a partial event. */
  private filterEvents(text: string): string | undefined {
    const all = this.pending + text;
    const end = all.lastIndexOf('\n\n');
    if (end < 0) {
      this.pending = all;
      return undefined;
    }
    this.pending = all.slice(end + 2);
    let out = '';
    for (const event of all.slice(0, end).split('\n\n')) {
      if (event.includes('"usage"') && this.isUsageEvent(event)) continue;
      out += `${event}\n\n`;
    }
    return out.length > 0 ? out : undefined;
  }

  /** Records the usage of an event; true when the event is the usage-only chunk that must not reach the client. */
  private isUsageEvent(event: string): boolean {
    const data = event.split('\n').find((l) => l.startsWith('data:'));
    if (!data) return false;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data.slice(5).trim());
    } catch {
      return false;
    }
    const usage = usageOf(parsed);
    if (usage) this.usage = usage;
    const choices = (parsed as { choices?: unknown }).choices;
    return this.dropUsageChunk && usage !== null && Array.isArray(choices) && choices.length === 0;
  }
}
