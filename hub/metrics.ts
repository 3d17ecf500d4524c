// Prometheus metrics of one hub (its own registry, so several hubs in one test process never collide).
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Store } from './store/index.ts';
import { workerStates } from './store/workers.ts';

export function createMetrics(deps: { store: Store; sessionCount: () => number }) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ik_hub_' });
  const { store } = deps;

  new Gauge({
    name: 'ik_workers',
    help: 'Registered workers by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const counts = store.workers.countByState();
      for (const state of workerStates) this.set({ state }, counts[state]);
    },
  });
  new Gauge({
    name: 'ik_gpus',
    help: 'GPUs reported by workers, by worker state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const totals: Record<string, number> = { ready: 0, disconnected: 0, down: 0 };
      for (const w of store.workers.list()) totals[w.state] = (totals[w.state] ?? 0) + w.gpus.length;
      for (const [state, n] of Object.entries(totals)) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'ik_gpu_memory_free_mib',
    help: 'Free GPU memory as last measured by nvidia-smi, per GPU of ready workers',
    labelNames: ['worker', 'gpu'],
    registers: [registry],
    collect() {
      this.reset();
      for (const w of store.workers.list()) {
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
