// Migration 3: replicas. A replica row outlives its workload until it is stopped, so it has no foreign key to it.
import type { Migration } from './index.ts';

export const migration003: Migration = {
  version: 3,
  name: 'replicas',
  sql: `
    CREATE TABLE replicas (
      id TEXT PRIMARY KEY,
      workload_id TEXT NOT NULL,
      project_id TEXT NOT NULL,
      slug TEXT NOT NULL,
      generation INTEGER NOT NULL,
      -- 'run' while the hub wants it, 'stop' once it should go (scale down, roll, delete, lost worker).
      desired TEXT NOT NULL CHECK (desired IN ('run', 'stop')),
      state TEXT NOT NULL CHECK (state IN ('pending', 'pulling', 'starting', 'ready', 'draining', 'stopped', 'failed', 'unknown', 'lost')),
      worker_id TEXT,
      gpu_uuids TEXT NOT NULL DEFAULT '[]',
      claim_mib INTEGER NOT NULL DEFAULT 0,
      port INTEGER,
      runtime TEXT CHECK (runtime IS NULL OR runtime IN ('docker', 'process')),
      container_id TEXT,
      pid INTEGER,
      restarts INTEGER NOT NULL DEFAULT 0,
      last_error TEXT,
      created_at TEXT NOT NULL,
      ready_at TEXT,
      updated_at TEXT NOT NULL,
      -- When its worker was last seen by the tunnel, while the replica is 'unknown' (for the grace period).
      unknown_since TEXT
    ) STRICT;
    CREATE INDEX replicas_workload ON replicas(workload_id, state);
    CREATE INDEX replicas_worker ON replicas(worker_id, state);
  `,
};
