// One agent's tunnel on the hub: hello → welcome/reject, then heartbeats and inventory updates; protocol errors end it.
import type { WebSocket, RawData } from 'ws';
import {
  agentMessageSchema,
  closeCodes,
  parseControlMessage,
  type AgentMessage,
  type GoAwayCode,
  type Heartbeat,
  type Hello,
  type HubMessage,
  type RejectCode,
} from '../../shared/protocol/control.ts';
import { PROTOCOL_VERSION } from '../../shared/version.ts';
import { isoTime, type Clock, type TimerHandle } from '../../shared/clock.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Gpu, Inventory } from '../../shared/inventory.ts';
import type { Store } from '../store/index.ts';
import type { HubConfig } from '../config.ts';
import type { HubMetrics } from '../metrics.ts';
import type { WorkerLiveness } from '../control/liveness.ts';
import type { HeartbeatWriter } from './heartbeat-writer.ts';
import type { ReplicaReports } from '../control/replica-reports.ts';
import type { AgentRequests } from './agent-requests.ts';
import { admitAgent } from './admit.ts';
import { Mux, type MuxStream } from '../../shared/protocol/mux.ts';
import { encodeTarget, type StreamTarget } from '../../shared/protocol/streams.ts';
import { batchedBinarySender } from '../../shared/protocol/batch-send.ts';

export const HELLO_TIMEOUT_MS = 10_000;

export interface SessionDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  config: Pick<HubConfig, 'heartbeatIntervalMs' | 'inventoryIntervalMs' | 'pingIntervalMs' | 'restartBackoffBaseMs' | 'maxStreamsPerAgent'>;
  metrics: HubMetrics;
  liveness: WorkerLiveness;
  heartbeats: HeartbeatWriter;
  sessions: AgentSessions;
  replicas: ReplicaReports;
  requests: AgentRequests;
}

/** The live tunnels, by worker id (at most one per worker: a newer one replaces an older one). */
export class AgentSessions {
  private readonly byWorker = new Map<string, AgentSession>();
  /** The hub is shutting down: tunnels closing now must not touch the store (it closes right after). */
  closing = false;

  get(workerId: string): AgentSession | undefined {
    return this.byWorker.get(workerId);
  }
  set(workerId: string, session: AgentSession): AgentSession | undefined {
    const previous = this.byWorker.get(workerId);
    this.byWorker.set(workerId, session);
    return previous;
  }
  delete(workerId: string, session: AgentSession): void {
    if (this.byWorker.get(workerId) === session) this.byWorker.delete(workerId);
  }
  get size(): number {
    return this.byWorker.size;
  }
  all(): AgentSession[] {
    return [...this.byWorker.values()];
  }
}

export class AgentSession {
  private phase: 'hello' | 'active' | 'closed' = 'hello';
  private workerId: string | undefined;
  private gpus: Gpu[] = [];
  private helloTimer: TimerHandle | undefined;
  private pingTimer: TimerHandle | undefined;
  private awaitingPong = false;
  private mux: Mux | undefined;
  private readonly log: Logger;

  constructor(
    private readonly ws: WebSocket,
    private readonly token: string | undefined,
    private readonly deps: SessionDeps,
    remoteAddress: string | undefined,
  ) {
    this.log = deps.log.child({ remote: remoteAddress });
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', (code, reason) => this.onClose(code, reason.toString()));
    ws.on('error', (err) => this.log.warn({ err: err.message }, 'agent socket error'));
    ws.on('pong', () => (this.awaitingPong = false));
    this.helloTimer = deps.clock.setTimeout(() => this.close(closeCodes.helloTimeout, 'no hello within 10 s'), HELLO_TIMEOUT_MS);
  }

  get id(): string | undefined {
    return this.workerId;
  }

  /** Sends go_away and closes: used for protocol errors, shutdown, and a deleted worker. */
  goAway(code: GoAwayCode, message: string): void {
    if (this.phase === 'closed') return;
    this.send({ type: 'go_away', code, message });
    this.close(code === 'protocol_error' ? closeCodes.protocolError : code === 'replaced' ? closeCodes.replaced : closeCodes.shutdown, message);
  }

  /** Opens a stream to one of this agent's replicas; the agent ACKs once it reached the backend. */
  openStream(target: StreamTarget): MuxStream {
    if (!this.mux || this.phase !== 'active') throw new Error('the tunnel is not open');
    return this.mux.open(encodeTarget(target));
  }

  get openStreams(): number {
    return this.mux?.size ?? 0;
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.phase === 'closed') return;
    if (isBinary) {
      if (this.phase !== 'active' || !this.mux) return this.protocolError('a stream frame before hello');
      this.mux.receive(rawToBuffer(data));
      return;
    }
    const parsed = parseControlMessage(agentMessageSchema, rawToString(data));
    if (!parsed.ok) {
      this.protocolError(parsed.error);
      return;
    }
    this.deps.metrics.tunnelMessages.inc({ direction: 'in', type: parsed.message.type });
    this.dispatch(parsed.message);
  }

  private dispatch(msg: AgentMessage): void {
    if (this.phase === 'hello') {
      if (msg.type === 'hello') this.onHello(msg);
      else this.protocolError(`expected hello first, got ${msg.type}`);
      return;
    }
    switch (msg.type) {
      case 'hello':
        return this.protocolError('hello was already received on this tunnel');
      case 'heartbeat':
        return this.onHeartbeat(msg);
      case 'inventory':
        return this.onInventory(msg.inventory);
      case 'replica.status':
        return this.deps.replicas.onStatus(this.workerId!, msg.replica, msg.last_log);
      case 'image.pull.progress':
        return this.deps.requests.onPullProgress(msg, this.deps.clock.now());
      case 'logs.chunk':
        return this.deps.requests.onLogsChunk(msg);
      case 'logs.end':
        return this.deps.requests.onLogsEnd(msg);
      case 'reply':
        if (!msg.ok) this.log.warn({ workerId: this.workerId, request: msg.reply_to, error: msg.error }, 'agent refused a request');
        return;
      case 'go_away':
        this.log.info({ workerId: this.workerId, code: msg.code, reason: msg.message }, 'agent is going away');
        return this.close(closeCodes.shutdown, 'agent going away');
    }
  }

  private onHello(hello: Hello): void {
    if (this.helloTimer) this.deps.clock.clearTimeout(this.helloTimer);
    if (hello.protocol_version !== PROTOCOL_VERSION) {
      return this.reject('protocol_version', `this hub speaks protocol ${PROTOCOL_VERSION}, the agent ${hello.protocol_version}: install the agent from this hub`);
    }
    const { store, clock, sessions, liveness, config } = this.deps;
    let admission;
    try {
      admission = admitAgent({ store, nowMs: clock.now(), isConnected: (id) => sessions.get(id) !== undefined }, this.token, hello);
    } catch (err) {
      this.log.error({ err }, 'agent admission failed');
      return this.close(1011, 'internal error');
    }
    if (!admission.ok) return this.reject(admission.code, admission.message);

    const worker = admission.worker;
    this.workerId = worker.id;
    this.mux = new Mux({
      side: 'hub',
      send: batchedBinarySender(this.ws),
      maxStreams: this.deps.config.maxStreamsPerAgent,
      // The hub opens streams; an agent has no reason to open one.
      onProtocolError: (reason) => this.protocolError(`stream frames: ${reason}`),
    });
    this.gpus = worker.gpus;
    this.phase = 'active';
    const previous = sessions.set(worker.id, this);
    if (previous && previous !== this) previous.goAway('replaced', 'a newer connection of this worker replaced this one');
    liveness.connected(worker.id, { projectId: worker.project_id, name: worker.name }, admission.how);
    this.send({
      type: 'welcome',
      worker_id: worker.id,
      ...(admission.credential ? { credential: admission.credential } : {}),
      heartbeat_interval_ms: config.heartbeatIntervalMs,
      config: {
        heartbeat_interval_ms: config.heartbeatIntervalMs,
        inventory_interval_ms: config.inventoryIntervalMs,
        ping_interval_ms: config.pingIntervalMs,
        restart_backoff_base_ms: config.restartBackoffBaseMs,
      },
    });
    this.log.info({ workerId: worker.id, name: worker.name, how: admission.how, gpus: worker.gpus.length, replicas: hello.replicas.length }, 'agent connected');
    // What the agent already runs is adopted (or stopped, if the hub no longer wants it).
    this.deps.replicas.onReplicaList(worker.id, hello.replicas);
    this.schedulePing();
  }

  private onHeartbeat(hb: Heartbeat): void {
    const workerId = this.workerId!;
    const byUuid = new Map(hb.gpus.map((g) => [g.uuid, g]));
    // A heartbeat carries usage only; GPUs it does not know arrive with the next inventory message.
    this.gpus = this.gpus.map((g) => ({ ...g, ...byUuid.get(g.uuid) }));
    this.deps.liveness.heartbeat(workerId);
    this.deps.heartbeats.queue({ id: workerId, at: isoTime(this.deps.clock.now()), gpus: this.gpus, gpu_error: hb.gpu_error });
    this.deps.replicas.onReplicaList(workerId, hb.replicas);
  }

  private onInventory(inventory: Inventory): void {
    const workerId = this.workerId!;
    const worker = this.deps.store.workers.getById(workerId);
    if (!worker) return;
    this.deps.heartbeats.discard(workerId);
    this.gpus = inventory.gpus;
    this.deps.store.workers.updateInventory(workerId, worker.agent_version, inventory);
    this.deps.liveness.heartbeat(workerId);
  }

  private reject(code: RejectCode, message: string): void {
    this.deps.metrics.tunnelRejects.inc({ code });
    this.log.warn({ code, reason: message }, 'agent rejected');
    this.send({ type: 'reject', code, message });
    this.close(closeCodes.rejected, code);
  }

  private protocolError(message: string): void {
    this.log.warn({ workerId: this.workerId, reason: message }, 'agent protocol error');
    this.goAway('protocol_error', message);
  }

  private schedulePing(): void {
    this.pingTimer = this.deps.clock.setTimeout(() => {
      if (this.phase !== 'active') return;
      if (this.awaitingPong) {
        this.log.warn({ workerId: this.workerId }, 'agent did not answer ping; closing tunnel');
        this.ws.terminate();
        return;
      }
      this.awaitingPong = true;
      this.ws.ping();
      this.schedulePing();
    }, this.deps.config.pingIntervalMs);
    this.pingTimer.unref?.();
  }

  /** Sends a control message; false when the tunnel is not open (the caller's next resync tries again). */
  send(msg: HubMessage): boolean {
    if (this.ws.readyState !== this.ws.OPEN) return false;
    this.deps.metrics.tunnelMessages.inc({ direction: 'out', type: msg.type });
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  private close(code: number, reason: string): void {
    if (this.phase === 'closed') return;
    this.ws.close(code, reason.slice(0, 120));
    // A peer that never completes the close handshake is cut after a short wait.
    const t = this.deps.clock.setTimeout(() => this.ws.terminate(), 2000);
    t.unref?.();
  }

  private onClose(code: number, reason: string): void {
    const wasActive = this.phase === 'active';
    this.phase = 'closed';
    this.mux?.close(`the tunnel to the worker closed (code ${code})`);
    for (const t of [this.helloTimer, this.pingTimer]) if (t) this.deps.clock.clearTimeout(t);
    if (!wasActive || !this.workerId || this.deps.sessions.closing) return;
    this.deps.sessions.delete(this.workerId, this);
    // A replaced session's worker is still connected through the newer tunnel.
    if (this.deps.sessions.get(this.workerId)) return;
    this.deps.heartbeats.flush();
    this.deps.liveness.disconnected(this.workerId, `tunnel closed (code ${code}${reason ? `: ${reason}` : ''})`);
    this.log.info({ workerId: this.workerId, code, reason }, 'agent disconnected');
  }
}

function rawToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function rawToString(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
