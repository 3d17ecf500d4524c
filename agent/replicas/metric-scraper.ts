// Reads the backend metric an autoscaling workload scales on (metric "backend", e.g. vllm:num_requests_waiting) from
// each ready replica's /metrics about once a second; the heartbeat carries the last value to the hub.
import { sumMetric } from '../../shared/prometheus-text.ts';
import type { ReplicaLaunch } from '../../shared/protocol/replicas.ts';
import { backendDriver } from '../backends/index.ts';

export const SCRAPE_EVERY_MS = 1000;
const SCRAPE_TIMEOUT_MS = 900;
/** A value older than this is not reported (the replica stopped answering /metrics). */
const FRESH_MS = 5000;

export interface ScrapeTarget {
  launch: ReplicaLaunch;
  port: number;
}

/** The metric a replica's workload scales on, or null when it does not scale on a backend metric. */
export function scrapedMetricOf(launch: ReplicaLaunch): string | null {
  const { spec } = launch;
  if (spec.execution_policy !== 'autoscaling' || spec.execution_policy_config.metric !== 'backend') return null;
  return spec.execution_policy_config.backend_metric ?? null;
}

export class MetricScraper {
  private readonly values = new Map<string, { name: string; value: number; at: number }>();
  private readonly timer: NodeJS.Timeout;
  private running = false;

  constructor(private readonly targets: () => ScrapeTarget[]) {
    this.timer = setInterval(() => void this.scrapeAll(), SCRAPE_EVERY_MS);
    this.timer.unref();
  }

  /** The last fresh value per metric name for a replica, for its heartbeat report. */
  metricsOf(replicaId: string): Record<string, number> | undefined {
    const v = this.values.get(replicaId);
    return v && Date.now() - v.at < FRESH_MS ? { [v.name]: v.value } : undefined;
  }

  forget(replicaId: string): void {
    this.values.delete(replicaId);
  }

  close(): void {
    clearInterval(this.timer);
  }

  private async scrapeAll(): Promise<void> {
    // One pass at a time: a backend slow to answer must not pile scrapes up.
    if (this.running) return;
    this.running = true;
    try {
      await Promise.all(
        this.targets().map(async ({ launch, port }) => {
          const name = scrapedMetricOf(launch);
          if (!name) return;
          const value = await scrape(port, backendDriver(launch.spec.backend).metricsPath, name);
          if (value !== null) this.values.set(launch.replica_id, { name, value, at: Date.now() });
        }),
      );
    } finally {
      this.running = false;
    }
  }
}

async function scrape(port: number, path: string, name: string): Promise<number | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
    if (!res.ok) return null;
    return sumMetric(await res.text(), name);
  } catch {
    return null;
  }
}
