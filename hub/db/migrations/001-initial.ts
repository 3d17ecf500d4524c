// Migration 1: projects, control tokens, join tokens, workers and events.
import type { Migration } from './index.ts';

export const migration001: Migration = {
  version: 1,
  name: 'initial',
  sql: `
    CREATE TABLE projects (
      id TEXT PRIMARY KEY,
      slug TEXT NOT NULL UNIQUE,
      name TEXT NOT NULL,
      created_at TEXT NOT NULL
    ) STRICT;

    -- Control tokens (ik_sdk_): project_id NULL means hub-wide admin.
    CREATE TABLE control_tokens (
      id TEXT PRIMARY KEY,
      project_id TEXT REFERENCES projects(id) ON DELETE CASCADE,
      name TEXT NOT NULL,
      prefix TEXT NOT NULL,
      hash TEXT NOT NULL UNIQUE,
      bootstrap INTEGER NOT NULL DEFAULT 0 CHECK (bootstrap IN (0, 1)),
      created_at TEXT NOT NULL,
      expires_at TEXT,
      last_used_at TEXT,
      revoked_at TEXT
    ) STRICT;
    CREATE INDEX control_tokens_prefix ON control_tokens(prefix);

    -- Join tokens (ik_join_): project_id NULL means the shared pool.
    CREATE TABLE join_tokens (
      id TEXT PRIMARY KEY,
      project_id TEXT REFERENCES projects(id) ON DELETE CASCADE,
      name TEXT NOT NULL,
      labels TEXT NOT NULL DEFAULT '{}',
      prefix TEXT NOT NULL,
      hash TEXT NOT NULL UNIQUE,
      bootstrap INTEGER NOT NULL DEFAULT 0 CHECK (bootstrap IN (0, 1)),
      uses INTEGER NOT NULL DEFAULT 0,
      created_at TEXT NOT NULL,
      expires_at TEXT,
      last_used_at TEXT,
      revoked_at TEXT
    ) STRICT;
    CREATE INDEX join_tokens_prefix ON join_tokens(prefix);

    -- Workers: desired flags (cordoned, draining, labels, cost) are written by the API,
    -- observed fields (state, inventory, heartbeat) by the agent's session.
    CREATE TABLE workers (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      project_id TEXT REFERENCES projects(id) ON DELETE CASCADE,
      state TEXT NOT NULL CHECK (state IN ('ready', 'disconnected', 'down')),
      cordoned INTEGER NOT NULL DEFAULT 0 CHECK (cordoned IN (0, 1)),
      draining INTEGER NOT NULL DEFAULT 0 CHECK (draining IN (0, 1)),
      labels TEXT NOT NULL DEFAULT '{}',
      agent_version TEXT NOT NULL,
      last_heartbeat_at TEXT,
      connected_at TEXT,
      host TEXT NOT NULL,
      runtime TEXT NOT NULL,
      gpu_driver_version TEXT,
      cuda_version TEXT,
      gpu_error TEXT,
      gpus TEXT NOT NULL DEFAULT '[]',
      gpu_hourly_cost_usd REAL CHECK (gpu_hourly_cost_usd IS NULL OR gpu_hourly_cost_usd >= 0),
      credential_prefix TEXT NOT NULL,
      credential_hash TEXT NOT NULL UNIQUE,
      join_token_id TEXT,
      created_at TEXT NOT NULL
    ) STRICT;
    CREATE INDEX workers_credential_prefix ON workers(credential_prefix);

    CREATE TABLE events (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      at TEXT NOT NULL,
      project_id TEXT,
      kind TEXT NOT NULL,
      workload TEXT,
      worker_id TEXT,
      message TEXT NOT NULL,
      data TEXT
    ) STRICT;
    CREATE INDEX events_project ON events(project_id, id);
    CREATE INDEX events_worker ON events(worker_id, id);
  `,
};
