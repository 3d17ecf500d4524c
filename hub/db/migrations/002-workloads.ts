// Migration 2: workloads (desired state written by the API) and data keys (ik_live_, one workload each).
import type { Migration } from './index.ts';

export const migration002: Migration = {
  version: 2,
  name: 'workloads',
  sql: `
    CREATE TABLE workloads (
      id TEXT PRIMARY KEY,
      project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
      slug TEXT NOT NULL,
      -- The normalized spec without env values; env is sealed apart (AES-256-GCM with the hub's key).
      spec TEXT NOT NULL,
      env_sealed TEXT,
      generation INTEGER NOT NULL CHECK (generation >= 1),
      state TEXT NOT NULL CHECK (state IN ('creating', 'active', 'scheduled', 'inactive', 'degraded', 'failed')),
      desired_state TEXT NOT NULL CHECK (desired_state IN ('active', 'inactive')),
      placement TEXT,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      UNIQUE (project_id, slug)
    ) STRICT;

    CREATE TABLE data_keys (
      id TEXT PRIMARY KEY,
      project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
      workload_id TEXT NOT NULL REFERENCES workloads(id) ON DELETE CASCADE,
      name TEXT NOT NULL,
      prefix TEXT NOT NULL,
      hash TEXT NOT NULL UNIQUE,
      rate_limit_per_minute INTEGER CHECK (rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0),
      created_at TEXT NOT NULL,
      expires_at TEXT,
      last_used_at TEXT,
      revoked_at TEXT
    ) STRICT;
    CREATE INDEX data_keys_prefix ON data_keys(prefix);
    CREATE INDEX data_keys_workload ON data_keys(workload_id);
    CREATE INDEX events_workload ON events(project_id, workload, id);
  `,
};
