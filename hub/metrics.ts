// Prometheus metrics of one hub (its own registry, so several hubs in one test process never collide).
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Store } from './store/index.ts';
import { workerStates } from './store/workers.ts';

export function createMetrics(deps: { store: Store; sessionCount: () => number }) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ik_hub_' });
  const { store } = deps;

  // One read of the workers per scrape feeds every worker gauge (a fleet of 1,000 boxes is one query, not three).
  let snapshot: { at: number; workers: ReturnType<Store['workers']['list']> } | undefined;
  const workers = () => {
    const now = Date.now();
    if (!snapshot || now - snapshot.at > 500) snapshot = { at: now, workers: store.workers.list() };
    return snapshot.workers;
  };

  new Gauge({
    name: 'ik_workers',
    help: 'Registered workers by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      for (const state of workerStates) this.set({ state }, 0);
      for (const w of workers()) this.inc({ state: w.state });
    },
  });
  new Gauge({
    name: 'ik_gpus',
    help: 'GPUs reported by workers, by worker state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      for (const state of workerStates) this.set({ state }, 0);
      for (const w of workers()) this.inc({ state: w.state }, w.gpus.length);
    },
  });
  new Gauge({
    name: 'ik_gpu_memory_free_mib',
    help: 'Free GPU memory as last measured by nvidia-smi, per GPU of ready workers',
    labelNames: ['worker', 'gpu'],
    registers: [registry],
    collect() {
      this.reset();
      for (const w of workers()) {
        if (w.state !== 'ready') continue;
        for (const g of w.gpus) if (g.memory_free_mib !== null) this.set({ worker: w.name, gpu: g.uuid }, g.memory_free_mib);
      }
    },
  });
  new Gauge({
    name: 'ik_tunnel_sessions',
    help: 'Agent tunnels currently connected',
    registers: [registry],
    collect() {
      this.set(deps.sessionCount());
    },
  });
  const tunnelMessages = new Counter({
    name: 'ik_tunnel_messages_total',
    help: 'Control messages through agent tunnels',
    labelNames: ['direction', 'type'],
    registers: [registry],
  });
  const tunnelRejects = new Counter({
    name: 'ik_tunnel_rejects_total',
    help: 'Agent connections refused, by reason',
    labelNames: ['code'],
    registers: [registry],
  });

  return { registry, tunnelMessages, tunnelRejects };
}

export type HubMetrics = ReturnType<typeof createMetrics>;
