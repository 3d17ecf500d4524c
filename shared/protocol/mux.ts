// The stream multiplexer of the tunnel: many byte streams over one message transport (the agent's WebSocket),
// with per-stream credit windows so one slow reader never grows the other side's buffers without bound.
// Transport-agnostic: frames go out through `send` and come in through `receive` (tests use an in-memory pair).
import { Duplex } from 'node:stream';
import {
  decodeFrame,
  encodeFrame,
  encodeWindow,
  Flag,
  FrameType,
  MAX_FRAME_PAYLOAD_BYTES,
  STREAM_WINDOW_BYTES,
  type Frame,
} from './frames.ts';

export interface MuxOptions {
  /** The hub opens even stream ids, the agent odd ones. */
  side: 'hub' | 'agent';
  send: (frame: Buffer) => void;
  /** Streams the peer may have open at once; a SYN beyond it is refused with RST. */
  maxStreams: number;
  maxFramePayload?: number;
  window?: number;
  /** A stream the peer opened; accept() it once the target is reached, or reject(reason). Without it, SYNs are refused. */
  onStream?: (stream: MuxStream, syn: Buffer) => void;
  /** The peer broke the framing itself: the session must end (go_away protocol_error). */
  onProtocolError: (reason: string) => void;
}

/** The peer refused or aborted the stream; `reason` is what it said. */
export class StreamResetError extends Error {
  constructor(
    readonly reason: string,
    readonly beforeAccept: boolean,
  ) {
    super(reason);
    this.name = 'StreamResetError';
  }
}

const RECENTLY_CLOSED_KEPT = 4096;

export class Mux {
  private readonly streams = new Map<number, MuxStream>();
  /** Frames still in flight for a stream that just closed are dropped quietly. */
  private readonly recentlyClosed = new Set<number>();
  private nextId: number;
  private closed = false;
  /** Streams the peer opened and that are still open (what maxStreams limits). */
  private peerStreams = 0;
  readonly window: number;
  readonly maxFramePayload: number;

  constructor(private readonly opts: MuxOptions) {
    this.nextId = opts.side === 'hub' ? 2 : 1;
    this.window = opts.window ?? STREAM_WINDOW_BYTES;
    this.maxFramePayload = opts.maxFramePayload ?? MAX_FRAME_PAYLOAD_BYTES;
  }

  get size(): number {
    return this.streams.size;
  }

  /** Opens a stream: the SYN carries `syn` (what to connect to); the stream emits 'accepted' on the peer's ACK. */
  open(syn: Buffer): MuxStream {
    if (this.closed) throw new Error('the tunnel is closed');
    // The peer would take an oversized frame for broken framing and end the whole tunnel.
    if (syn.length > this.maxFramePayload) throw new Error(`the stream target is ${syn.length} bytes, over the ${this.maxFramePayload}-byte frame limit`);
    const id = this.nextId;
    this.nextId += 2;
    const stream = new MuxStream(this, id, 'syn-sent');
    this.streams.set(id, stream);
    this.sendFrame(encodeFrame(FrameType.DATA, Flag.SYN, id, syn));
    return stream;
  }

  /** One binary message from the transport. Never throws: bad frames end in RST or a protocol error. */
  receive(data: Buffer): void {
    if (this.closed) return;
    const decoded = decodeFrame(data, this.maxFramePayload);
    if (!decoded.ok) return this.protocolError(decoded.error);
    const frame = decoded.frame;
    if (frame.streamId === 0) return this.protocolError('stream id 0 is reserved');
    const stream = this.streams.get(frame.streamId);
    if (frame.type === FrameType.WINDOW) {
      stream?.onWindow(frame.payload.readUInt32BE(0));
      return;
    }
    if (frame.flags & Flag.SYN) return this.onSyn(frame, stream);
    if (stream) return stream.onData(frame);
    // RST for a stream we do not know needs no answer; anything else gets one, unless it raced a close.
    if (!(frame.flags & Flag.RST) && !this.recentlyClosed.has(frame.streamId)) this.reset(frame.streamId, 'unknown stream');
  }

  /** The transport is gone: every stream ends with this reason. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const stream of [...this.streams.values()]) stream.destroy(new StreamResetError(reason, stream.state === 'syn-sent'));
    this.streams.clear();
    this.peerStreams = 0;
  }

  sendFrame(frame: Buffer): void {
    if (!this.closed) this.opts.send(frame);
  }

  reset(streamId: number, reason: string): void {
    this.sendFrame(encodeFrame(FrameType.DATA, Flag.RST, streamId, Buffer.from(reason.slice(0, 500))));
  }

  forget(stream: MuxStream): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    if (stream.id % 2 === (this.opts.side === 'hub' ? 1 : 0)) this.peerStreams -= 1;
    this.recentlyClosed.add(stream.id);
    if (this.recentlyClosed.size > RECENTLY_CLOSED_KEPT) this.recentlyClosed.delete(this.recentlyClosed.values().next().value!);
  }

  private onSyn(frame: Frame, existing: MuxStream | undefined): void {
    const id = frame.streamId;
    const peerParity = this.opts.side === 'hub' ? 1 : 0;
    // A second SYN for a live stream means the peer forgot it: both ends drop it.
    if (existing) return void existing.destroy(new StreamResetError('stream id already in use', false));
    if (this.recentlyClosed.has(id)) return this.reset(id, 'stream id already in use');
    if (id % 2 !== peerParity) return this.reset(id, `a ${this.opts.side === 'hub' ? 'agent' : 'hub'} opens ${peerParity ? 'odd' : 'even'} stream ids`);
    if (frame.flags & (Flag.ACK | Flag.RST | Flag.FIN)) return this.reset(id, 'SYN cannot be combined with ACK, FIN or RST');
    if (!this.opts.onStream) return this.reset(id, 'this side accepts no streams');
    if (this.peerStreams >= this.opts.maxStreams) return this.reset(id, `too many open streams (limit ${this.opts.maxStreams})`);
    const stream = new MuxStream(this, id, 'syn-received');
    this.streams.set(id, stream);
    this.peerStreams += 1;
    this.opts.onStream(stream, frame.payload);
  }

  private protocolError(reason: string): void {
    this.opts.onProtocolError(reason);
  }
}

type StreamState = 'syn-sent' | 'syn-received' | 'open' | 'closed';

export class MuxStream extends Duplex {
  state: StreamState;
  private sendWindow: number;
  /** Bytes received in all; the peer may send up to `window + granted`. */
  private received = 0;
  private granted = 0;
  private pending: Array<{ chunk: Buffer; callback: (err?: Error | null) => void }> = [];
  private localFin = false;
  private remoteFin = false;
  private resetByPeer = false;
  private idleMs = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly mux: Mux,
    readonly id: number,
    state: StreamState,
  ) {
    super({ allowHalfOpen: true });
    this.state = state;
    this.sendWindow = mux.window;
  }

  // node:http treats its connection as a socket (keep-alive pools call these); a stream has no TCP options to set.
  setKeepAlive(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  /** Emits 'timeout' after `ms` without reads or writes (what node:http's idle pools and request timeouts use). */
  setTimeout(ms: number, callback?: () => void): this {
    if (callback) this.once('timeout', callback);
    clearTimeout(this.idleTimer);
    this.idleMs = ms;
    this.touch();
    return this;
  }

  private touch(): void {
    if (this.idleMs <= 0) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.emit('timeout'), this.idleMs);
    this.idleTimer.unref();
  }

  /** Accepts a stream the peer opened (the target was reached): the peer may now count on it. */
  accept(): void {
    if (this.state !== 'syn-received') return;
    this.state = 'open';
    this.mux.sendFrame(encodeFrame(FrameType.DATA, Flag.ACK, this.id));
  }

  /** Refuses a stream the peer opened, saying why (e.g. the backend could not be dialed). */
  reject(reason: string): void {
    if (this.state === 'closed') return;
    this.mux.reset(this.id, reason);
    this.resetByPeer = true; // no second RST from destroy
    this.destroy();
  }

  onWindow(delta: number): void {
    this.sendWindow += delta;
    this.pump();
  }

  onData(frame: Frame): void {
    if (frame.flags & Flag.RST) {
      this.resetByPeer = true;
      const reason = frame.payload.length ? frame.payload.toString('utf8') : 'reset by peer';
      this.destroy(new StreamResetError(reason, this.state === 'syn-sent'));
      return;
    }
    if (frame.flags & Flag.ACK && this.state === 'syn-sent') {
      this.state = 'open';
      this.emit('accepted');
    }
    if (frame.payload.length > 0) {
      this.touch();
      this.received += frame.payload.length;
      if (this.received > this.mux.window + this.granted) {
        this.destroy(new StreamResetError('flow control violated: more data than the window allows', false));
        return;
      }
      if (!this.remoteFin) this.push(frame.payload);
      this.grantIfDue();
    }
    if (frame.flags & Flag.FIN && !this.remoteFin) {
      this.remoteFin = true;
      this.push(null);
      this.closeIfDone();
    }
  }

  override _read(): void {
    // Node hands the buffered data to the reader after _read returns: count it as consumed on the next tick, or a
    // reader that takes everything at once (for await) would never grant credit and the sender would stall.
    process.nextTick(() => this.grantIfDue());
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.touch();
    this.pending.push({ chunk, callback });
    this.pump();
  }

  override _final(callback: (err?: Error | null) => void): void {
    // FIN goes after every pending byte: queue it like a write.
    this.pending.push({
      chunk: FIN_MARKER,
      callback: (err) => {
        this.localFin = true;
        callback(err);
        this.closeIfDone();
      },
    });
    this.pump();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const fullyClosed = this.localFin && this.remoteFin;
    if (!this.resetByPeer && !fullyClosed && this.state !== 'closed') {
      this.mux.reset(this.id, err ? err.message : 'closed by the other end');
    }
    this.state = 'closed';
    clearTimeout(this.idleTimer);
    for (const p of this.pending) p.callback(err ?? new Error('stream closed'));
    this.pending = [];
    this.mux.forget(this);
    callback(err);
  }

  /** Sends what the window allows, in frames no larger than the limit. */
  private pump(): void {
    while (this.pending.length > 0 && this.state !== 'closed') {
      const head = this.pending[0]!;
      if (head.chunk === FIN_MARKER) {
        this.pending.shift();
        this.mux.sendFrame(encodeFrame(FrameType.DATA, Flag.FIN, this.id));
        head.callback();
        continue;
      }
      if (this.sendWindow <= 0) return;
      const n = Math.min(head.chunk.length, this.sendWindow, this.mux.maxFramePayload);
      this.mux.sendFrame(encodeFrame(FrameType.DATA, 0, this.id, head.chunk.subarray(0, n)));
      this.sendWindow -= n;
      if (n === head.chunk.length) {
        this.pending.shift();
        head.callback();
      } else {
        head.chunk = head.chunk.subarray(n);
      }
    }
  }

  /** Grants credit for what the reader consumed, once it reaches half the window (fewer, larger updates). */
  private grantIfDue(): void {
    if (this.state === 'closed' || this.remoteFin) return;
    const consumed = this.received - this.readableLength;
    const due = consumed - this.granted;
    if (due >= this.mux.window / 2) {
      this.granted += due;
      this.mux.sendFrame(encodeWindow(this.id, due));
    }
  }

  private closeIfDone(): void {
    if (this.localFin && this.remoteFin && this.state !== 'closed') {
      this.state = 'closed';
      this.mux.forget(this);
    }
  }
}

const FIN_MARKER = Buffer.alloc(0);
