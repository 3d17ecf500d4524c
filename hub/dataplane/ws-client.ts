// One client socket of the WebSocket message protocol: reads its messages, runs its requests side by side, and keeps
// its send buffer bounded — requests wait for room before reading more from their backends.
import type { IncomingMessage } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import type { TimerHandle } from '../../shared/clock.ts';
import { DataPlaneError } from './openai-error.ts';
import { errorMessage, MAX_IN_FLIGHT_PER_SOCKET, parseClientMessage, type RequestMessage, type ServerMessage } from './ws-messages.ts';
import { WsRequest, type ClientChannel, type WsDeps } from './ws-request.ts';

/** Above this many bytes queued for the client, requests stop reading from their backends… */
export const SEND_HIGH_WATER_BYTES = 1024 * 1024;
/** …until the queue is down to this. */
const SEND_LOW_WATER_BYTES = 256 * 1024;
/** A client that answers no ping for this long is gone: its requests are cancelled upstream. */
const PING_INTERVAL_MS = 30_000;

export class WsClient implements ClientChannel {
  private readonly inFlight = new Map<string, WsRequest>();
  private waiters: Array<() => void> = [];
  private closed = false;
  private awaitingPong = false;
  private pingTimer: TimerHandle | undefined;

  constructor(
    private readonly ws: WebSocket,
    readonly req: IncomingMessage,
    readonly project: string,
    readonly workload: string,
    private readonly deps: WsDeps,
  ) {
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', () => this.onClose());
    // An oversized message (close 1009) or a broken frame: ws closes the socket itself; 'close' follows.
    ws.on('error', (err) => deps.log.debug({ err: err.message, workload }, 'websocket client error'));
    ws.on('pong', () => (this.awaitingPong = false));
    this.schedulePing();
  }

  send(msg: ServerMessage): boolean {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return false;
    // The callback runs once the message left for the kernel: room may have come back for waiting requests.
    this.ws.send(JSON.stringify(msg), () => this.releaseWaiters());
    return true;
  }

  whenWritable(resume: () => void): void {
    if (this.closed || this.ws.bufferedAmount <= SEND_HIGH_WATER_BYTES) return resume();
    this.waiters.push(resume);
  }

  /** Ends the socket (hub shutdown): its requests are cancelled upstream. */
  terminate(): void {
    this.ws.terminate();
  }

  private releaseWaiters(): void {
    if (this.waiters.length === 0 || (!this.closed && this.ws.bufferedAmount > SEND_LOW_WATER_BYTES)) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resume of waiters) resume();
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (isBinary) {
      return this.refuse(null, 'binary_message', 'binary messages are not part of this protocol: send JSON text messages ({"type":"request",…})');
    }
    const parsed = parseClientMessage(rawText(data));
    if (!parsed.ok) {
      this.send(errorMessage(parsed.id, parsed.error));
      return;
    }
    const msg = parsed.message;
    // A cancel for a request that already ended raced its end: nothing to do.
    if (msg.type === 'cancel') return this.inFlight.get(msg.id)?.cancel('client');
    this.start(msg);
  }

  private start(msg: RequestMessage): void {
    if (this.inFlight.has(msg.id)) {
      // Not under that id: the client would take it for the end of the request already running.
      return this.refuse(null, 'duplicate_id', `a request with id ${JSON.stringify(msg.id)} is already in flight on this socket: give each request its own id`, 400, 'id');
    }
    if (this.inFlight.size >= MAX_IN_FLIGHT_PER_SOCKET) {
      return this.refuse(msg.id, 'too_many_in_flight', `this socket has ${MAX_IN_FLIGHT_PER_SOCKET} requests in flight, the most it may: wait for one to end`, 429);
    }
    const request = new WsRequest(this.deps, this, msg);
    this.inFlight.set(msg.id, request);
    void request.run().finally(() => {
      if (this.inFlight.get(msg.id) === request) this.inFlight.delete(msg.id);
    });
  }

  private refuse(id: string | null, code: string, message: string, status = 400, param: string | null = null): void {
    this.send(errorMessage(id, new DataPlaneError(status, message, status === 429 ? 'rate_limit_error' : 'invalid_request_error', code, {}, param)));
  }

  private schedulePing(): void {
    this.pingTimer = this.deps.clock.setTimeout(() => {
      if (this.closed) return;
      if (this.awaitingPong) {
        this.deps.log.info({ workload: this.workload }, 'websocket client did not answer ping; closing it');
        this.ws.terminate();
        return;
      }
      this.awaitingPong = true;
      this.ws.ping();
      this.schedulePing();
    }, PING_INTERVAL_MS);
    this.pingTimer.unref?.();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pingTimer) this.deps.clock.clearTimeout(this.pingTimer);
    for (const request of this.inFlight.values()) request.cancel('socket');
    this.releaseWaiters();
  }
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
