// An in-memory tunnel for mux tests: a hub and an agent Mux joined by one ordered (global FIFO) message queue,
// delivered asynchronously (setImmediate), recording every frame and the credit in flight per stream and direction.
import { setImmediate as nextTick } from 'node:timers/promises';
import { FRAME_HEADER_BYTES, Flag, FrameType, MAX_FRAME_PAYLOAD_BYTES, STREAM_WINDOW_BYTES } from '../../../shared/protocol/frames.ts';
import { Mux, type MuxOptions, type MuxStream } from '../../../shared/protocol/mux.ts';

export type Side = 'hub' | 'agent';

/** Tiny seeded PRNG (mulberry32): the same seed gives the same test run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Rng {
  next(): number;
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  /** An integer in [min, max], log-uniform: small values are as likely as large ones by order of magnitude. */
  logInt(min: number, max: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  bytes(n: number): Buffer;
}

export function makeRng(seed: number): Rng {
  const next = mulberry32(seed);
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  return {
    next,
    int,
    logInt: (min, max) => Math.min(max, Math.floor(Math.exp(Math.log(min) + next() * (Math.log(max + 1) - Math.log(min))))),
    chance: (p) => next() < p,
    pick: (items) => items[Math.floor(next() * items.length)]!,
    bytes: (n) => {
      const buf = Buffer.allocUnsafe(n);
      let i = 0;
      for (; i + 4 <= n; i += 4) buf.writeUInt32LE(Math.floor(next() * 4294967296), i);
      for (; i < n; i++) buf[i] = Math.floor(next() * 256);
      return buf;
    },
  };
}

/** The seed of a randomized test: `IK_TEST_SEED` overrides it, so a failure printed with its seed can be replayed. */
export function seedsFromEnv(defaults: number[]): number[] {
  const override = process.env.IK_TEST_SEED;
  return override ? override.split(',').map((s) => Number.parseInt(s, 10) >>> 0) : defaults;
}

export interface SentFrame {
  from: Side;
  type: number;
  flags: number;
  streamId: number;
  payloadLength: number;
  /** The RST reason, for RST frames. */
  reason?: string;
  /** The credit granted, for WINDOW frames. */
  delta?: number;
  /** DATA bytes of this stream and direction sent but not yet granted back (delivered WINDOWs), after this frame. */
  inFlight?: number;
}

export interface PairOptions {
  /** Seeds the delivery batching (how many frames go per tick). */
  seed?: number;
  window?: number;
  maxStreams?: number;
  hubOnStream?: MuxOptions['onStream'];
  agentOnStream?: MuxOptions['onStream'];
  /** Up to this many frames are delivered per setImmediate tick (random in 1..max); default 4. */
  maxBatch?: number;
  /** A side found a protocol error: by default the pair closes both muxes with the reason, as the tunnel would. */
  onProtocolError?: (side: Side, reason: string) => void;
}

export interface MuxPair {
  hub: Mux;
  agent: Mux;
  /** Every frame either side sent, in send order. */
  frames: SentFrame[];
  /** Protocol errors reported, by side. */
  protocolErrors: Array<{ side: Side; reason: string }>;
  /** The most DATA bytes ever in flight, over all streams and directions. */
  maxInFlight(): number;
  /** A DATA frame sent over the window or over the payload limit: a description per violation. */
  violations: string[];
  /** Stops delivering frames (a slow transport consumer) until release(). */
  hold(): void;
  release(): void;
  /** Frames queued, not yet delivered. */
  queued(): number;
  /** Resolves once the queue is empty and has stayed empty for a few ticks (nothing left to answer). */
  settle(): Promise<void>;
  /** Both muxes close with the reason; queued frames are dropped (the socket is gone). */
  close(reason: string): void;
  /** Test teardown: close() with every stream's error expected (no unhandled 'error' events). */
  dispose(reason?: string): void;
  /** Every stream either side opened or was offered. */
  streams: Set<MuxStream>;
  closed: boolean;
}

/** A Mux that reports the streams it opens, so the pair can tear every one of them down. */
class TrackedMux extends Mux {
  private readonly onOpen: (stream: MuxStream) => void;
  constructor(opts: MuxOptions & { onOpen: (stream: MuxStream) => void }) {
    super(opts);
    this.onOpen = opts.onOpen;
  }
  override open(syn: Buffer): MuxStream {
    const stream = super.open(syn);
    this.onOpen(stream);
    return stream;
  }
}

export function createMuxPair(opts: PairOptions = {}): MuxPair {
  const rng = makeRng(opts.seed ?? 1);
  const window = opts.window ?? STREAM_WINDOW_BYTES;
  const maxBatch = opts.maxBatch ?? 4;
  const queue: Array<{ from: Side; data: Buffer }> = [];
  const frames: SentFrame[] = [];
  const violations: string[] = [];
  const protocolErrors: Array<{ side: Side; reason: string }> = [];
  // DATA bytes sent per `${from}:${streamId}`, and credit granted back to that sender by delivered WINDOW frames.
  const sent = new Map<string, number>();
  const credit = new Map<string, number>();
  let maxInFlight = 0;
  let held = false;
  let scheduled = false;
  let closed = false;

  const record = (from: Side, data: Buffer): void => {
    const type = data[0]!;
    const flags = data[1]!;
    const streamId = data.readUInt32BE(2);
    const payloadLength = data.length - FRAME_HEADER_BYTES;
    const frame: SentFrame = { from, type, flags, streamId, payloadLength };
    if (payloadLength > MAX_FRAME_PAYLOAD_BYTES) violations.push(`${from} sent a ${payloadLength}-byte payload on stream ${streamId}`);
    if (type === FrameType.WINDOW) frame.delta = data.readUInt32BE(FRAME_HEADER_BYTES);
    if (type === FrameType.DATA && flags & Flag.RST) frame.reason = data.subarray(FRAME_HEADER_BYTES).toString('utf8');
    // A SYN's payload names the target; it is not stream data and takes no credit.
    if (type === FrameType.DATA && payloadLength > 0 && !(flags & Flag.SYN)) {
      const key = `${from}:${streamId}`;
      const total = (sent.get(key) ?? 0) + payloadLength;
      sent.set(key, total);
      const inFlight = total - (credit.get(key) ?? 0);
      frame.inFlight = inFlight;
      maxInFlight = Math.max(maxInFlight, inFlight);
      if (inFlight > window) violations.push(`${from} has ${inFlight} bytes in flight on stream ${streamId}, over the ${window}-byte window`);
    }
    frames.push(frame);
  };

  const deliver = (): void => {
    scheduled = false;
    if (closed || held) return;
    const n = rng.int(1, maxBatch);
    for (let i = 0; i < n && queue.length > 0 && !closed; i++) {
      const { from, data } = queue.shift()!;
      const to = from === 'hub' ? agent : hub;
      // A WINDOW frame's credit counts for its sender's peer from the moment it is delivered.
      if (data[0] === FrameType.WINDOW && data.length === FRAME_HEADER_BYTES + 4) {
        const key = `${from === 'hub' ? 'agent' : 'hub'}:${data.readUInt32BE(2)}`;
        credit.set(key, (credit.get(key) ?? 0) + data.readUInt32BE(FRAME_HEADER_BYTES));
      }
      to.receive(data);
    }
    schedule();
  };

  const schedule = (): void => {
    if (!scheduled && !closed && !held && queue.length > 0) {
      scheduled = true;
      setImmediate(deliver);
    }
  };

  const sendFrom = (from: Side) => (data: Buffer) => {
    if (closed) return;
    record(from, data);
    queue.push({ from, data });
    schedule();
  };

  const onProtocolError = (side: Side) => (reason: string) => {
    protocolErrors.push({ side, reason });
    if (opts.onProtocolError) opts.onProtocolError(side, reason);
    else pair.close(`protocol error: ${reason}`);
  };

  const streams = new Set<MuxStream>();
  const tracked = (onStream: MuxOptions['onStream']): MuxOptions['onStream'] =>
    onStream &&
    ((stream, syn) => {
      streams.add(stream);
      onStream(stream, syn);
    });
  const common = { window, maxStreams: opts.maxStreams ?? 1000, onOpen: (stream: MuxStream) => streams.add(stream) };
  const hub: Mux = new TrackedMux({
    ...common,
    side: 'hub',
    send: sendFrom('hub'),
    onProtocolError: onProtocolError('hub'),
    ...(opts.hubOnStream ? { onStream: tracked(opts.hubOnStream) } : {}),
  });
  const agent: Mux = new TrackedMux({
    ...common,
    side: 'agent',
    send: sendFrom('agent'),
    onProtocolError: onProtocolError('agent'),
    ...(opts.agentOnStream ? { onStream: tracked(opts.agentOnStream) } : {}),
  });

  const pair: MuxPair = {
    hub,
    agent,
    frames,
    protocolErrors,
    violations,
    maxInFlight: () => maxInFlight,
    hold: () => {
      held = true;
    },
    release: () => {
      held = false;
      schedule();
    },
    queued: () => queue.length,
    settle: async () => {
      for (let quiet = 0; quiet < 5; ) {
        await nextTick();
        quiet = queue.length === 0 || closed ? quiet + 1 : 0;
      }
    },
    close: (reason) => {
      if (closed) return;
      closed = true;
      pair.closed = true;
      queue.length = 0;
      hub.close(reason);
      agent.close(reason);
    },
    dispose: (reason = 'test over') => {
      for (const stream of streams) if (!stream.destroyed) stream.on('error', () => {});
      pair.close(reason);
    },
    streams,
    closed: false,
  };
  return pair;
}

/** Resolves with everything the stream's readable side delivered once it ends; rejects on its error. */
export function readAll(stream: MuxStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

/** Resolves with the error the stream is destroyed with (or null if it closes cleanly). */
export function closedWith(stream: MuxStream): Promise<Error | null> {
  return new Promise((resolve) => {
    let error: Error | null = null;
    stream.once('error', (err) => {
      error = err;
    });
    stream.once('close', () => resolve(error));
  });
}

/** Writes a chunk and resolves when the stream took it (its write callback ran). */
export function writeChunk(stream: MuxStream, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

/** Frames of a given kind in the record. */
export function framesOf(frames: SentFrame[], filter: Partial<Pick<SentFrame, 'from' | 'type' | 'streamId'>> & { flag?: number }): SentFrame[] {
  return frames.filter(
    (f) =>
      (filter.from === undefined || f.from === filter.from) &&
      (filter.type === undefined || f.type === filter.type) &&
      (filter.streamId === undefined || f.streamId === filter.streamId) &&
      (filter.flag === undefined || (f.flags & filter.flag) !== 0),
  );
}

/** Runs event-loop turns until `done()` holds or `maxTicks` turns pass; says whether it held (a bounded wait, not a sleep). */
export async function ticksUntil(done: () => boolean, maxTicks = 10_000): Promise<boolean> {
  for (let i = 0; i < maxTicks; i++) {
    if (done()) return true;
    await nextTick();
  }
  return done();
}

/** A raw frame, for feeding a mux what a well-behaved peer would never send. */
export function rawFrame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const frame = Buffer.alloc(FRAME_HEADER_BYTES + payload.length);
  frame[0] = type;
  frame[1] = flags;
  frame.writeUInt32BE(streamId >>> 0, 2);
  payload.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}
