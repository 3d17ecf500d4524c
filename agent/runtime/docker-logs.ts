// A container's log as lines: the engine's multiplexed stdout/stderr frames decoded in order, partial lines kept
// across chunks (per stream), `tail` and `since` passed to the engine, and `follow` until the caller's signal aborts.
import { Readable } from 'node:stream';
import { CALL_TIMEOUT_MS, describeEngineError, engineCall, type Engine } from './docker-engine.ts';

const FRAME_HEADER_BYTES = 8;

/**
 * Decodes Docker's multiplexed log stream (non-TTY containers): frames of `[stream u8][0 0 0][length u32 BE]` then
 * the payload, split anywhere across chunks. Lines are completed per stream, so interleaved stdout and stderr writes
 * never splice into one line. A stream that does not start with a frame header (a TTY container) is read as raw text.
 */
export class LogDecoder {
  private pending: Buffer = Buffer.alloc(0);
  private raw = false;
  private readonly partial = new Map<number, string>();

  /** Feeds a chunk; returns the lines it completed, in order. */
  push(chunk: Buffer): string[] {
    if (this.raw) return this.text(1, chunk);
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const lines: string[] = [];
    while (this.pending.length >= FRAME_HEADER_BYTES) {
      const stream = this.pending.readUInt8(0);
      if (stream > 2 || this.pending.readUInt8(1) !== 0 || this.pending.readUInt16BE(2) !== 0) {
        this.raw = true;
        const rest = this.pending;
        this.pending = Buffer.alloc(0);
        lines.push(...this.text(1, rest));
        return lines;
      }
      const length = this.pending.readUInt32BE(4);
      if (this.pending.length < FRAME_HEADER_BYTES + length) break;
      lines.push(...this.text(stream, this.pending.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length)));
      this.pending = this.pending.subarray(FRAME_HEADER_BYTES + length);
    }
    return lines;
  }

  /** The unfinished last lines, when the log ends without a newline. */
  end(): string[] {
    const rest = [...this.partial.values()].filter((l) => l !== '');
    this.partial.clear();
    return rest;
  }

  private text(stream: number, payload: Buffer): string[] {
    const text = (this.partial.get(stream) ?? '') + payload.toString('utf8');
    const lines = text.split('\n');
    this.partial.set(stream, lines.pop() ?? '');
    return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  }
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `since` as Docker takes it (unix seconds): an ISO time, or a duration before `now` like `90s`, `10m`, `2h`, `1d`. */
export function parseSince(since: string, now = Date.now()): number {
  const duration = /^(\d+(?:\.\d+)?)\s*([smhd])$/.exec(since.trim());
  if (duration) return Math.floor(now / 1000 - Number(duration[1]) * DURATION_UNITS[duration[2]!]!);
  const time = Date.parse(since);
  if (Number.isNaN(time)) throw new Error(`since must be an ISO time (2024-05-01T12:00:00Z) or a duration like 10m, not '${since}'`);
  return Math.floor(time / 1000);
}

export interface ReadLogsOptions {
  tail: number | null;
  since: string | null;
  follow: boolean;
  signal: AbortSignal;
}

function logQuery(opts: { tail: number | null; since: string | null }) {
  return {
    stdout: true,
    stderr: true,
    timestamps: false,
    // Without `tail` the engine sends the whole log.
    ...(opts.tail !== null ? { tail: Math.max(0, Math.floor(opts.tail)) } : {}),
    ...(opts.since !== null ? { since: parseSince(opts.since) } : {}),
  };
}

/** The log as it is now (no follow), as lines. */
export async function readLogLines(engine: Engine, containerRef: string, opts: { tail: number | null; since: string | null; signal?: AbortSignal }): Promise<string[]> {
  const query = logQuery(opts);
  const body = await engineCall(
    engine,
    `reading the log of container ${containerRef}`,
    (abortSignal) => engine.docker.getContainer(containerRef).logs({ ...query, follow: false, abortSignal }),
    opts.signal ? { signal: opts.signal } : {},
  );
  const decoder = new LogDecoder();
  const lines = decoder.push(Buffer.isBuffer(body) ? body : Buffer.from(String(body)));
  return [...lines, ...decoder.end()];
}

/** Yields the log in batches of lines; with follow, keeps yielding new lines until the signal aborts or the container ends. */
export async function* streamLogLines(engine: Engine, containerRef: string, opts: ReadLogsOptions): AsyncGenerator<string[]> {
  if (!opts.follow) {
    yield await readLogLines(engine, containerRef, opts);
    return;
  }
  if (opts.signal.aborted) return;
  const query = logQuery(opts);
  const what = `following the log of container ${containerRef}`;
  // Only connecting is bounded by a timeout; the stream itself lives until the caller aborts or the container ends.
  const live = new AbortController();
  const stopOnAbort = () => live.abort();
  opts.signal.addEventListener('abort', stopOnAbort, { once: true });
  let connectTimedOut = false;
  const connectTimer = setTimeout(() => ((connectTimedOut = true), live.abort()), CALL_TIMEOUT_MS);
  let stream: Readable | undefined;
  try {
    try {
      const body = await engine.docker.getContainer(containerRef).logs({ ...query, follow: true, abortSignal: live.signal });
      if (!(body instanceof Readable)) throw new Error('the engine answered the log request without a stream');
      stream = body;
    } catch (err) {
      if (opts.signal.aborted) return;
      throw describeEngineError(err, engine.address, what, connectTimedOut ? { ms: CALL_TIMEOUT_MS } : null);
    } finally {
      clearTimeout(connectTimer);
    }
    const decoder = new LogDecoder();
    try {
      for await (const chunk of stream) {
        const lines = decoder.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
        if (lines.length > 0) yield lines;
      }
    } catch (err) {
      // Aborting destroys the stream with an AbortError: that is how following ends, not a failure.
      if (!opts.signal.aborted) throw new Error(`the log of container ${containerRef} broke off: ${err instanceof Error ? err.message : String(err)}`);
    }
    const rest = decoder.end();
    if (rest.length > 0) yield rest;
  } finally {
    opts.signal.removeEventListener('abort', stopOnAbort);
    stream?.destroy();
  }
}
