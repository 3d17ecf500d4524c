// The hub's store: one object per table group over one SQLite database, so the control loops never touch SQL.
import type { Db } from '../db/open.ts';
import type { Clock } from '../../shared/clock.ts';
import { createProjectStore } from './projects.ts';
import { createControlTokenStore } from './control-tokens.ts';
import { createJoinTokenStore } from './join-tokens.ts';
import { createWorkerStore } from './workers.ts';
import { createEventStore } from './events.ts';
import { createWorkloadStore } from './workloads.ts';
import { createDataKeyStore } from './data-keys.ts';
import { createReplicaStore } from './replicas.ts';
import { createRequestLogStore } from './request-log.ts';
import { createJobStore } from './jobs.ts';
import { createAdapterStore } from './adapters.ts';
import type { SecretBox } from '../secret-box.ts';

export function createStore(db: Db, clock: Clock, box: SecretBox) {
  return {
    db,
    projects: createProjectStore(db, clock),
    controlTokens: createControlTokenStore(db, clock),
    joinTokens: createJoinTokenStore(db, clock),
    workers: createWorkerStore(db, clock),
    events: createEventStore(db, clock),
    workloads: createWorkloadStore(db, clock, box),
    dataKeys: createDataKeyStore(db, clock),
    replicas: createReplicaStore(db, clock),
    requestLog: createRequestLogStore(db),
    jobs: createJobStore(db, clock),
    adapters: createAdapterStore(db, clock),
    /** Runs `fn` in one immediate transaction (racy transitions are decided inside it). */
    transaction<T>(fn: () => T): T {
      return db.transaction(fn).immediate();
    },
  };
}

export type Store = ReturnType<typeof createStore>;
