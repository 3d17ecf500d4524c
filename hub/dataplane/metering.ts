// Metering of the data plane: a request-log row per request (batched writes), and Prometheus counters and
// histograms per workload (and replica, for what is in flight).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { isoTime, type Clock, type TimerHandle } from '../../shared/clock.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Store } from '../store/index.ts';
import type { NewRequestLogRow } from '../store/request-log.ts';

export interface RequestRecord {
  projectId: string;
  projectSlug: string;
  workloadId: string;
  workload: string;
  keyPrefix: string | null;
  route: string;
  status: number;
  startedAt: number;
  endedAt: number;
  firstByteAt: number | null;
  promptTokens: number | null;
  completionTokens: number | null;
  replicaId: string | null;
}

const FLUSH_MS = 1000;
/** Request-log rows are kept this long. */
const RETENTION_MS = 30 * 24 * 3600_000;

export class Metering {
  private pending: NewRequestLogRow[] = [];
  private timer: TimerHandle | undefined;
  private readonly requests: Counter;
  private readonly latency: Histogram;
  private readonly ttft: Histogram;
  private readonly tokens: Counter;

  constructor(
    private readonly deps: { store: Store; clock: Clock; log: Logger; registry: Registry; inflight: () => Iterable<[string, string, number]> },
  ) {
    const registers = [deps.registry];
    this.requests = new Counter({ name: 'ik_requests_total', help: 'Data-plane requests by workload, route and status', labelNames: ['project', 'workload', 'route', 'status'], registers });
    this.latency = new Histogram({
      name: 'ik_request_duration_seconds',
      help: 'Data-plane request latency (until the last byte)',
      labelNames: ['project', 'workload', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.ttft = new Histogram({
      name: 'ik_time_to_first_byte_seconds',
      help: 'Time to the first response byte (TTFT for streams)',
      labelNames: ['project', 'workload', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.tokens = new Counter({ name: 'ik_tokens_total', help: 'Tokens reported by backends', labelNames: ['project', 'workload', 'kind'], registers });
    new Gauge({
      name: 'ik_requests_in_flight',
      help: 'Data-plane requests in flight per workload and replica',
      labelNames: ['workload', 'replica'],
      registers,
      collect() {
        this.reset();
        for (const [workload, replica, n] of deps.inflight()) this.set({ workload, replica }, n);
      },
    });
  }

  record(r: RequestRecord): void {
    const labels = { project: r.projectSlug, workload: r.workload, route: r.route };
    this.requests.inc({ ...labels, status: String(r.status) });
    this.latency.observe(labels, (r.endedAt - r.startedAt) / 1000);
    if (r.firstByteAt !== null) this.ttft.observe(labels, (r.firstByteAt - r.startedAt) / 1000);
    if (r.promptTokens) this.tokens.inc({ project: r.projectSlug, workload: r.workload, kind: 'prompt' }, r.promptTokens);
    if (r.completionTokens) this.tokens.inc({ project: r.projectSlug, workload: r.workload, kind: 'completion' }, r.completionTokens);
    this.pending.push({
      at: isoTime(r.startedAt),
      project_id: r.projectId,
      workload_id: r.workloadId,
      key_prefix: r.keyPrefix,
      route: r.route,
      status: r.status,
      latency_ms: Math.round((r.endedAt - r.startedAt) * 100) / 100,
      ttft_ms: r.firstByteAt === null ? null : Math.round((r.firstByteAt - r.startedAt) * 100) / 100,
      prompt_tokens: r.promptTokens,
      completion_tokens: r.completionTokens,
      replica_id: r.replicaId,
    });
    if (!this.timer) {
      this.timer = this.deps.clock.setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref?.();
    }
  }

  flush(): void {
    if (this.timer) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const rows = this.pending;
    this.pending = [];
    try {
      this.deps.store.requestLog.append(rows);
      this.deps.store.requestLog.purgeBefore(isoTime(this.deps.clock.now() - RETENTION_MS));
    } catch (err) {
      this.deps.log.error({ err, rows: rows.length }, 'writing the request log failed');
    }
  }
}
