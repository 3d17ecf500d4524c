// The agent's end of the tunnel: dial out, hello, then heartbeats; reconnect with backoff and jitter (1 s → 60 s).
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import WebSocket from 'ws';
import {
  MAX_CONTROL_MESSAGE_BYTES,
  hubMessageSchema,
  parseControlMessage,
  type AgentMessage,
  type HubMessage,
  type Reject,
  type Welcome,
} from '../shared/protocol/control.ts';
import { backoffDelay } from '../shared/backoff.ts';
import { batchedBinarySender } from '../shared/protocol/batch-send.ts';
import type { Logger } from '../shared/logger.ts';

export const RECONNECT_BASE_MS = 1000;
export const RECONNECT_CAP_MS = 60_000;

export interface TunnelClientOptions {
  hubUrl: string;
  hubCa: string | undefined;
  log: Logger;
  /** The token to present on this attempt (a stored credential, else the join token). */
  token: () => string | undefined;
  /** The hello to send, built fresh on each attempt (latest inventory). */
  hello: () => AgentMessage;
  onWelcome: (welcome: Welcome) => void;
  /** The hub refused this agent: reconnecting with the same token cannot help. */
  onReject: (reject: Reject) => void;
  onDisconnect: () => void;
  /** Stream frames from the hub (relayed requests), once welcomed. */
  onBinary: (frame: Buffer) => void;
  /** Requests from the hub (replica start/stop, log reads) once welcomed. */
  onRequest: (msg: Exclude<HubMessage, Welcome | Reject | { type: 'go_away' }>) => void;
}

export class TunnelClient {
  private ws: WebSocket | undefined;
  private attempt = 0;
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private watchdogMs = 45_000;
  private welcomed = false;
  private binarySender: ((frame: Buffer) => void) | undefined;

  constructor(private readonly opts: TunnelClientOptions) {}

  start(): void {
    this.connect();
  }

  get connected(): boolean {
    return this.welcomed && this.ws?.readyState === WebSocket.OPEN;
  }

  send(msg: AgentMessage): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  sendBinary(frame: Buffer): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.binarySender!(frame);
    return true;
  }

  /** Drops the connection and dials again (after backoff), e.g. after the hub broke the stream framing. */
  reconnect(): void {
    this.ws?.terminate();
  }

  /** Says goodbye (the hub marks the worker disconnected at once) and stops reconnecting. */
  async stop(reason = 'agent stopping'): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.watchdog);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    if (ws.readyState === WebSocket.OPEN) this.send({ type: 'go_away', code: 'shutdown', message: reason });
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => (ws.terminate(), resolve()), 1000);
      ws.once('close', () => (clearTimeout(t), resolve()));
      ws.close(1000, 'agent stopping');
    });
  }

  private connect(): void {
    if (this.stopped) return;
    const url = `${this.opts.hubUrl.replace(/^http/, 'ws')}/agent/connect`;
    const token = this.opts.token();
    const ws = new WebSocket(url, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      // Control messages and stream frames (at most 64 KiB of payload each) share the socket.
      maxPayload: MAX_CONTROL_MESSAGE_BYTES,
      handshakeTimeout: 10_000,
      perMessageDeflate: false,
      // A zero mask makes ws skip masking. Masking protects browsers' intermediaries from forged requests; this
      // client is the agent, not a browser, and masking every relayed byte was a third of its CPU.
      generateMask: (mask: Buffer) => void mask.fill(0),
      ...(this.opts.hubCa ? { ca: [...rootCertificates, readFileSync(this.opts.hubCa, 'utf8')] } : {}),
    });
    this.ws = ws;
    this.binarySender = batchedBinarySender(ws);
    this.welcomed = false;
    ws.on('open', () => {
      this.kickWatchdog();
      this.send(this.opts.hello());
    });
    ws.on('message', (data, isBinary) => {
      this.kickWatchdog();
      if (isBinary) {
        if (this.welcomed) this.opts.onBinary(Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]));
        return;
      }
      const parsed = parseControlMessage(hubMessageSchema, data.toString());
      if (!parsed.ok) {
        this.opts.log.error({ reason: parsed.error }, 'hub sent a message this agent does not understand; reconnecting');
        ws.terminate();
        return;
      }
      this.onMessage(parsed.message);
    });
    ws.on('ping', () => this.kickWatchdog());
    ws.on('error', (err) => this.opts.log.warn({ url, err: err.message }, 'tunnel error'));
    ws.on('close', (code, reason) => this.onClose(ws, code, reason.toString()));
  }

  private onMessage(msg: HubMessage): void {
    switch (msg.type) {
      case 'welcome':
        this.welcomed = true;
        this.attempt = 0;
        // The hub pings every ping_interval_ms; silence for 2.5 intervals means the tunnel is dead.
        this.watchdogMs = Math.round(msg.config.ping_interval_ms * 2.5);
        this.kickWatchdog();
        this.opts.onWelcome(msg);
        return;
      case 'reject':
        this.stopped = true;
        this.opts.onReject(msg);
        return;
      case 'go_away':
        this.opts.log.warn({ code: msg.code, reason: msg.message }, 'hub asked this agent to go away');
        if (msg.code === 'worker_deleted' || msg.code === 'credential_revoked') {
          this.stopped = true;
          this.opts.onReject({ type: 'reject', code: msg.code, message: msg.message });
        }
        return;
      default:
        if (this.welcomed) this.opts.onRequest(msg);
        return;
    }
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.ws) return;
    clearTimeout(this.watchdog);
    const wasWelcomed = this.welcomed;
    this.welcomed = false;
    if (wasWelcomed) this.opts.onDisconnect();
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt++, { baseMs: RECONNECT_BASE_MS, capMs: RECONNECT_CAP_MS });
    this.opts.log.warn({ code, reason, retryInMs: delay }, wasWelcomed ? 'tunnel closed; reconnecting' : 'could not connect to the hub; retrying');
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private kickWatchdog(): void {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      this.opts.log.warn({ silentMs: this.watchdogMs }, 'no word from the hub; reconnecting');
      this.ws?.terminate();
    }, this.watchdogMs);
  }
}
