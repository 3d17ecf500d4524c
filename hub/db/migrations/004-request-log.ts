// Migration 4: the request log, one row per data-plane request (written in batches off the hot path).
import type { Migration } from './index.ts';

export const migration004: Migration = {
  version: 4,
  name: 'request-log',
  sql: `
    CREATE TABLE request_log (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      at TEXT NOT NULL,
      project_id TEXT NOT NULL,
      workload_id TEXT NOT NULL,
      key_prefix TEXT,
      route TEXT NOT NULL,
      status INTEGER NOT NULL,
      latency_ms REAL NOT NULL,
      ttft_ms REAL,
      prompt_tokens INTEGER,
      completion_tokens INTEGER,
      replica_id TEXT
    ) STRICT;
    CREATE INDEX request_log_workload ON request_log(workload_id, id);
    CREATE INDEX request_log_at ON request_log(at);
  `,
};
