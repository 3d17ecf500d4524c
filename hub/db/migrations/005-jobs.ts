// Migration 5: async jobs (DESIGN §4.6). A row is the acknowledgement of a submission; the dispatcher claims queued
// rows, runs them on a replica and writes the result or the error; finished rows are purged after the retention.
import type { Migration } from './index.ts';

export const migration005: Migration = {
  version: 5,
  name: 'jobs',
  sql: `
    CREATE TABLE jobs (
      -- job_…: the request_id clients poll.
      id TEXT PRIMARY KEY,
      project_id TEXT NOT NULL,
      workload_id TEXT NOT NULL REFERENCES workloads(id) ON DELETE CASCADE,
      key_prefix TEXT,
      route TEXT NOT NULL,
      method TEXT NOT NULL,
      query TEXT NOT NULL DEFAULT '',
      -- The request as the backend gets it: its headers without credentials or hop-by-hop ones, as [[name, value], …].
      request_content_type TEXT,
      request_headers TEXT NOT NULL DEFAULT '[]',
      request_body BLOB NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
      -- Counted when a run starts; a queued job always has attempts < max_attempts.
      attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
      max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
      -- A retried job waits until then (backoff).
      run_after TEXT NOT NULL,
      -- The replica of the current (or last) run.
      replica_id TEXT,
      result_status INTEGER,
      result_content_type TEXT,
      result_encoding TEXT CHECK (result_encoding IS NULL OR result_encoding IN ('json', 'base64')),
      result_body BLOB,
      -- {"message", "type", "code"} of a failed job (or of the last failed attempt of a queued one).
      error TEXT,
      created_at TEXT NOT NULL,
      started_at TEXT,
      completed_at TEXT,
      updated_at TEXT NOT NULL
    ) STRICT;
    CREATE INDEX jobs_queue ON jobs(status, workload_id, created_at);
    CREATE INDEX jobs_workload ON jobs(workload_id);
    CREATE INDEX jobs_completed ON jobs(completed_at) WHERE completed_at IS NOT NULL;
  `,
};
