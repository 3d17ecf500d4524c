// Makes an image present on the engine: nothing to do when it is there, else a pull whose per-layer progress is
// summed into one percent, whose every event is checked for an error (a failed pull still answers 200), and which is
// aborted when it makes no progress for a while.
import { Readable } from 'node:stream';
import { z } from 'zod';
import { describeEngineError, dial, engineCall, engineMessage, isNotFound, type Engine } from './docker-engine.ts';
import type { PullProgress } from './types.ts';

/** A pull that reports nothing for this long is stuck (a dead registry connection never ends by itself). */
export const PULL_STALL_MS = 120_000;
/** Progress goes over the tunnel to the hub: at most this often. */
const REPORT_EVERY_MS = 1000;

/** One line of the engine's pull stream (only what we read of it). */
const pullEventSchema = z
  .object({
    status: z.string().optional(),
    id: z.string().optional(),
    progressDetail: z.object({ current: z.number().optional(), total: z.number().optional() }).loose().optional(),
    error: z.string().optional(),
    errorDetail: z.object({ message: z.string().optional() }).loose().optional(),
  })
  .loose();
type PullEvent = z.infer<typeof pullEventSchema>;

function parsePullEvent(line: string): PullEvent | null {
  try {
    const parsed = pullEventSchema.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : null;
  } catch {
    return null; // not a progress event: nothing to learn from it
  }
}

/** Sums the layers' downloaded bytes into one percent; layers whose size is unknown (already present) do not count. */
export class PullTracker {
  private readonly layers = new Map<string, { current: number; total: number }>();

  /** Records one event; returns the engine's error when the event carries one. */
  add(event: PullEvent): string | null {
    if (event.error !== undefined || event.errorDetail !== undefined) return event.errorDetail?.message || event.error || 'unknown error';
    const id = event.id;
    if (!id) return null;
    const detail = event.progressDetail;
    if (event.status === 'Downloading' && detail?.total && detail.total > 0) {
      this.layers.set(id, { current: Math.min(detail.current ?? 0, detail.total), total: detail.total });
    } else if (event.status === 'Download complete' || event.status === 'Pull complete') {
      const layer = this.layers.get(id);
      if (layer) layer.current = layer.total;
    }
    return null;
  }

  percent(): number | null {
    let current = 0;
    let total = 0;
    for (const layer of this.layers.values()) {
      current += layer.current;
      total += layer.total;
    }
    if (total === 0) return null;
    return Math.min(100, Math.round((current / total) * 1000) / 10);
  }
}

/** The whole failure, in words: what could not be had, why, and what the operator can do. */
function pullFailure(image: string, why: string): Error {
  return new Error(`image ${image} not found and cannot be pulled: ${why} (pull it on the box, or map it with IK_IMAGE_MAP)`);
}

export async function imagePresent(engine: Engine, image: string): Promise<boolean> {
  try {
    await engineCall(engine, `inspecting image ${image}`, (abortSignal) =>
      dial(engine, `/images/${image}/json`, abortSignal, { 200: true, 404: 'no such image', 500: 'server error' }),
    );
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

export interface EnsureImageOptions {
  onProgress: (p: PullProgress) => void;
  signal: AbortSignal;
  stallMs?: number;
}

/** Resolves once the image is on the engine; pulls it (with progress) when it is not. */
export async function ensureImage(engine: Engine, image: string, opts: EnsureImageOptions): Promise<void> {
  if (await imagePresent(engine, image)) return;
  opts.signal.throwIfAborted();
  const stallMs = opts.stallMs ?? PULL_STALL_MS;
  opts.onProgress({ status: `pulling ${image}`, percent: null });
  await pullImage(engine, image, stallMs, opts);
  // A pull that ended without an error event still has to have produced the image.
  if (!(await imagePresent(engine, image))) throw pullFailure(image, 'the pull ended but the image is not on the engine');
  opts.onProgress({ status: `pulled ${image}`, percent: 100 });
}

async function pullImage(engine: Engine, image: string, stallMs: number, opts: EnsureImageOptions): Promise<void> {
  const stalled = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const rearm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stalled.abort(), stallMs);
  };
  const signal = AbortSignal.any([stalled.signal, opts.signal]);
  const whyAborted = () =>
    stalled.signal.aborted
      ? pullFailure(image, `the pull made no progress for ${Math.round(stallMs / 1000)} s (check the box's network and registry access)`)
      : new Error(`pulling ${image} was cancelled`);
  rearm();
  let stream: Readable | undefined;
  try {
    // The stall timer bounds the connection too; a call timeout would outlive the answer and cut the stream.
    try {
      const body: unknown = await engine.docker.pull(image, { abortSignal: signal });
      if (!(body instanceof Readable)) throw new Error('the engine answered the pull without a progress stream');
      stream = body;
    } catch (err) {
      if (signal.aborted) throw whyAborted();
      const failure = describeEngineError(err, engine.address, `pulling ${image}`, null);
      throw failure.unreachable ? failure : pullFailure(image, engineMessage(err));
    }
    await readPullEvents(stream, image, signal, opts.onProgress, rearm).catch((err: unknown) => {
      throw signal.aborted ? whyAborted() : err;
    });
  } finally {
    clearTimeout(timer);
    stream?.destroy();
  }
}

/** Reads the pull's JSON lines; rejects on the first error event, a broken stream, or the signal. */
function readPullEvents(stream: Readable, image: string, signal: AbortSignal, onProgress: (p: PullProgress) => void, onActivity: () => void): Promise<void> {
  const tracker = new PullTracker();
  let lastReport = 0;
  let buffered = '';
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      stream.off('data', onData);
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onAbort = () => finish(new Error('aborted'));
    /** Handles complete lines; returns false once an error event ended the pull. */
    const consume = (lines: string[]): boolean => {
      for (const line of lines) {
        const event = line.trim() ? parsePullEvent(line) : null;
        if (!event) continue;
        const error = tracker.add(event);
        if (error !== null) {
          finish(pullFailure(image, error));
          return false;
        }
        const now = Date.now();
        if (now - lastReport >= REPORT_EVERY_MS) {
          lastReport = now;
          onProgress({ status: event.id ? `${event.status ?? 'pulling'} ${event.id}` : (event.status ?? 'pulling'), percent: tracker.percent() });
        }
      }
      return true;
    };
    const onData = (chunk: Buffer) => {
      onActivity();
      const lines = (buffered + chunk.toString('utf8')).split('\n');
      buffered = lines.pop() ?? '';
      consume(lines);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    stream.on('data', onData);
    stream.on('error', (err: Error) => finish(pullFailure(image, `the engine broke off the pull: ${err.message}`)));
    stream.once('end', () => consume([buffered]) && finish());
    // A close without an end is a connection cut mid-pull (an engine restart), not a finished pull.
    stream.once('close', () => finish(pullFailure(image, 'the connection to the engine closed before the pull finished')));
  });
}
