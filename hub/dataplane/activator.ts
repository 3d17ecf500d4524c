// The activator (DESIGN §4.5, §7): a request for a workload with no ready replica waits here, in a bounded queue per
// workload, until one is ready. It wakes a workload its inactive timeout put to sleep; a workload deactivated by hand
// or outside its schedule answers 503 at once, with Retry-After.
import type { Clock } from '../../shared/clock.ts';
import { isoTime } from '../../shared/clock.ts';
import { retryAfterSeconds, scheduleState } from '../../shared/spec/schedule-time.ts';
import { DataPlaneError } from './openai-error.ts';
import type { RouteEntry, RoutingTable } from './routing.ts';

export interface ActivatorConfig {
  /** For fixed and scheduled workloads (autoscaling ones carry cold_start_timeout_s and max_queue in their spec). */
  coldStartTimeoutMs: number;
  coldStartQueue: number;
}

export interface ActivatorDeps {
  routing: RoutingTable;
  clock: Clock;
  /** Activates a workload its inactive timeout deactivated (a request arrived for it). */
  wake: (workloadId: string) => void;
  /** The time schedules are read at. */
  scheduleNow: () => number;
  config: ActivatorConfig;
}

export interface Serving {
  entry: RouteEntry;
  /** The request waited for a replica to start. */
  coldStart: boolean;
}

/** While a request waits, the routing table is read again this often (a ready report also wakes the waiters). */
const POLL_MS = 100;

interface Waiter {
  wake: () => void;
}

export class Activator {
  private readonly waiting = new Map<string, Set<Waiter>>();

  constructor(private readonly deps: ActivatorDeps) {}

  /** Requests waiting for a replica, per workload id (metrics, tests). */
  queued(workloadId: string): number {
    return this.waiting.get(workloadId)?.size ?? 0;
  }

  /** A replica of the workload became ready: its waiters look again now rather than at their next poll. */
  replicaReady(workloadId: string): void {
    for (const w of this.waiting.get(workloadId) ?? []) w.wake();
  }

  /**
   * Resolves once the workload has a ready replica (at once when it has one); throws the 503 that explains why it
   * cannot serve otherwise. `signal` ends the wait when the client leaves.
   */
  async serving(entry: RouteEntry, signal?: AbortSignal): Promise<Serving> {
    this.refuseIfOff(entry);
    if (entry.replicas.length > 0 && entry.workload.desired_state === 'active') return { entry, coldStart: false };
    if (entry.workload.desired_state === 'inactive') this.deps.wake(entry.workload.id);
    return { entry: await this.wait(entry, signal), coldStart: true };
  }

  /** The answers that need no waiting: deactivated by hand, or outside the schedule. */
  private refuseIfOff(entry: RouteEntry): void {
    const { workload, spec } = entry;
    if (workload.desired_state === 'inactive' && workload.deactivated_by !== 'timeout') {
      throw new DataPlaneError(503, `workload ${workload.slug} is deactivated: activate it with \`ik workloads activate ${workload.slug}\``, 'api_error', 'workload_inactive', {
        'retry-after': '60',
      });
    }
    if (spec.execution_policy === 'scheduled' && workload.desired_state === 'active') {
      const now = this.deps.scheduleNow();
      const schedule = scheduleState(spec.execution_policy_config, now);
      if (!schedule.open) {
        const next = schedule.opensAtMs === null ? 'it has no next start' : `it next starts at ${isoTime(schedule.opensAtMs)}`;
        throw new DataPlaneError(503, `workload ${workload.slug} runs on a schedule and is outside it now: ${next}; async jobs wait in the queue for it`, 'api_error', 'workload_scheduled', {
          'retry-after': String(retryAfterSeconds(schedule, now)),
          ...(schedule.opensAtMs !== null ? { 'x-ik-next-start': isoTime(schedule.opensAtMs) } : {}),
        });
      }
    }
  }

  /** Waiting is pointless when no replica can be placed or every one keeps failing: say why now. */
  private refuseIfStuck(entry: RouteEntry): void {
    const { workload } = entry;
    if (workload.placement) {
      throw new DataPlaneError(503, `workload ${workload.slug} has no ready replica and none can be placed now: ${workload.placement}`, 'api_error', 'no_ready_replica', {
        'retry-after': '30',
      });
    }
    if (workload.state === 'failed') {
      throw new DataPlaneError(503, `workload ${workload.slug} has no ready replica: its replicas keep failing (see \`ik workloads logs ${workload.slug}\`)`, 'api_error', 'no_ready_replica', {
        'retry-after': '30',
      });
    }
  }

  private limits(entry: RouteEntry): { timeoutMs: number; queue: number } {
    const { spec } = entry;
    if (spec.execution_policy === 'autoscaling') {
      const c = spec.execution_policy_config;
      return { timeoutMs: c.cold_start_timeout_s * 1000, queue: c.max_queue };
    }
    return { timeoutMs: this.deps.config.coldStartTimeoutMs, queue: this.deps.config.coldStartQueue };
  }

  private async wait(entry: RouteEntry, signal: AbortSignal | undefined): Promise<RouteEntry> {
    const { timeoutMs, queue } = this.limits(entry);
    const id = entry.workload.id;
    let set = this.waiting.get(id);
    if ((set?.size ?? 0) >= queue) {
      throw new DataPlaneError(503, `workload ${entry.workload.slug} is starting and its cold-start queue is full (${queue} requests wait): retry shortly`, 'api_error', 'cold_start_queue_full', {
        'retry-after': '5',
      });
    }
    if (!set) this.waiting.set(id, (set = new Set()));
    const deadline = this.deps.clock.now() + timeoutMs;
    const waiter: Waiter = { wake: () => undefined };
    set.add(waiter);
    try {
      for (;;) {
        if (signal?.aborted) throw new DataPlaneError(499, 'the client went away while the workload started', 'api_error', 'client_closed');
        const current = this.deps.routing.get(entry.projectSlug, entry.workload.slug);
        if (!current) throw new DataPlaneError(404, `workload ${entry.workload.slug} was deleted while the request waited`, 'not_found_error', 'workload_not_found');
        this.refuseIfOff(current);
        if (current.replicas.length > 0 && current.workload.desired_state === 'active') return current;
        this.refuseIfStuck(current);
        const left = deadline - this.deps.clock.now();
        if (left <= 0) {
          throw new DataPlaneError(
            503,
            `workload ${entry.workload.slug} did not get a ready replica within its cold-start timeout (${Math.round(timeoutMs / 1000)} s, state ${current.workload.state}): retry later`,
            'api_error',
            'cold_start_timeout',
            { 'retry-after': '30' },
          );
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.min(POLL_MS, left));
          function done() {
            clearTimeout(timer);
            signal?.removeEventListener('abort', done);
            resolve();
          }
          waiter.wake = done;
          signal?.addEventListener('abort', done, { once: true });
        });
      }
    } finally {
      set.delete(waiter);
      if (set.size === 0) this.waiting.delete(id);
    }
  }
}
