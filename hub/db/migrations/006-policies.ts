// Migration 6: execution policies (DESIGN §4.4, §7). The autoscaler's current count, who deactivated a workload
// (by hand: stays off; by its inactive timeout: the next request wakes it), when it was last activated (the timeout
// counts from then at the earliest), and the LoRA adapters deployed on each workload.
import type { Migration } from './index.ts';

export const migration006: Migration = {
  version: 6,
  name: 'policies',
  sql: `
    -- autoscaling: the replica count the autoscaler last decided (NULL: not decided yet, min_workers applies).
    ALTER TABLE workloads ADD COLUMN scale INTEGER CHECK (scale IS NULL OR scale >= 0);
    ALTER TABLE workloads ADD COLUMN deactivated_by TEXT CHECK (deactivated_by IS NULL OR deactivated_by IN ('hand', 'timeout'));
    ALTER TABLE workloads ADD COLUMN activated_at TEXT;
    UPDATE workloads SET activated_at = created_at;

    CREATE TABLE adapters (
      workload_id TEXT NOT NULL REFERENCES workloads(id) ON DELETE CASCADE,
      -- The name clients put in the request's model field.
      name TEXT NOT NULL,
      -- Where the backend loads it from: a Hugging Face repo id or a path on the worker.
      source TEXT NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      PRIMARY KEY (workload_id, name)
    ) STRICT;
  `,
};
