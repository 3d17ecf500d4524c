// Worker liveness: `disconnected` as soon as the tunnel drops, `down` after 3 missed heartbeats, `ready` again when heard from.
import type { Clock, TimerHandle } from '../../shared/clock.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Store } from '../store/index.ts';
import type { WorkerState } from '../store/workers.ts';

export const MISSED_HEARTBEATS_FOR_DOWN = 3;

export interface LivenessDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  heartbeatIntervalMs: number;
  /** Told of every state change (replicas of a worker that is not ready go out of rotation at once). */
  onTransition?: (workerId: string, state: WorkerState) => void;
}

interface Presence {
  state: WorkerState;
  lastSeenMs: number;
  projectId: string | null;
  name: string;
}

export class WorkerLiveness {
  private readonly presence = new Map<string, Presence>();
  private timer: TimerHandle | undefined;
  private stopped = false;

  constructor(private readonly deps: LivenessDeps) {}

  /** At start nobody is connected yet: workers the database still calls ready are disconnected until they return. */
  start(): void {
    const { store, clock } = this.deps;
    for (const w of store.workers.list()) {
      // Workers that were up when the hub stopped get 3 intervals from now to reconnect before they count as lost.
      const lastSeenMs = w.state === 'ready' || !w.last_heartbeat_at ? clock.now() : Date.parse(w.last_heartbeat_at);
      this.presence.set(w.id, { state: w.state, lastSeenMs, projectId: w.project_id, name: w.name });
      if (w.state === 'ready') this.transition(w.id, 'disconnected', 'hub restarted; waiting for the agent to reconnect');
    }
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.deps.clock.clearTimeout(this.timer);
  }

  connected(workerId: string, info: { projectId: string | null; name: string }, how: string): void {
    const previous = this.presence.get(workerId);
    this.presence.set(workerId, { state: 'ready', lastSeenMs: this.deps.clock.now(), ...info });
    if (how === 'joined') {
      this.record(workerId, 'worker.joined', `worker ${info.name} joined`);
    } else if (how === 'rejoined') {
      this.record(workerId, 'worker.rejoined', `worker ${info.name} joined again with a join token and kept its id`);
    } else if (previous && previous.state !== 'ready') {
      this.record(workerId, 'worker.back', `worker ${info.name} is back (was ${previous.state})`);
    }
  }

  heartbeat(workerId: string): void {
    const p = this.presence.get(workerId);
    if (!p) return;
    p.lastSeenMs = this.deps.clock.now();
    if (p.state === 'down') this.transition(workerId, 'ready', 'heartbeats resumed');
  }

  disconnected(workerId: string, reason: string): void {
    const p = this.presence.get(workerId);
    if (p && p.state === 'ready') this.transition(workerId, 'disconnected', reason);
  }

  forget(workerId: string): void {
    this.presence.delete(workerId);
  }

  stateOf(workerId: string): WorkerState | undefined {
    return this.presence.get(workerId)?.state;
  }

  /** Marks down every worker not heard from for 3 heartbeat intervals. */
  check(): void {
    const limit = this.deps.heartbeatIntervalMs * MISSED_HEARTBEATS_FOR_DOWN;
    const now = this.deps.clock.now();
    for (const [id, p] of this.presence) {
      if (p.state !== 'down' && now - p.lastSeenMs > limit) {
        this.transition(id, 'down', `no heartbeat for ${Math.round((now - p.lastSeenMs) / 1000)} s (${MISSED_HEARTBEATS_FOR_DOWN} missed)`);
      }
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.deps.clock.setTimeout(() => {
      this.check();
      this.schedule();
    }, Math.max(10, Math.floor(this.deps.heartbeatIntervalMs / 2)));
    this.timer.unref?.();
  }

  private transition(workerId: string, state: WorkerState, reason: string): void {
    const p = this.presence.get(workerId);
    if (!p || p.state === state) return;
    const from = p.state;
    p.state = state;
    this.deps.store.workers.setState(workerId, state);
    const kind = state === 'down' ? 'worker.lost' : state === 'disconnected' ? 'worker.disconnected' : 'worker.back';
    this.record(workerId, kind, `worker ${p.name} ${state === 'ready' ? 'is back' : `is ${state}`}: ${reason}`, { from, to: state });
    this.deps.log.info({ workerId, from, to: state, reason }, 'worker state changed');
    this.deps.onTransition?.(workerId, state);
  }

  private record(workerId: string, kind: string, message: string, data?: Record<string, unknown>): void {
    const p = this.presence.get(workerId);
    this.deps.store.events.record({ kind, message, workerId, projectId: p?.projectId ?? null, ...(data ? { data } : {}) });
  }
}
