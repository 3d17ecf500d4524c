// Replicas: the hub's record of every copy of a workload it asked a worker to run. `desired` is the hub's wish;
// `state` and the runtime fields follow the agent's reports.
import { z } from 'zod';
import type { Db } from '../db/open.ts';
import { newId } from '../../shared/secrets.ts';
import { isoTime, type Clock } from '../../shared/clock.ts';
import { replicaStates } from '../../shared/api.ts';
import { readJson, writeJson } from './json-column.ts';

export type ReplicaState = (typeof replicaStates)[number];

export interface ReplicaRecord {
  id: string;
  workload_id: string;
  project_id: string;
  slug: string;
  generation: number;
  desired: 'run' | 'stop';
  state: ReplicaState;
  worker_id: string | null;
  gpu_uuids: string[];
  claim_mib: number;
  port: number | null;
  runtime: 'docker' | 'process' | null;
  container_id: string | null;
  pid: number | null;
  restarts: number;
  last_error: string | null;
  created_at: string;
  ready_at: string | null;
  updated_at: string;
  unknown_since: string | null;
}

interface ReplicaDbRow extends Omit<ReplicaRecord, 'gpu_uuids' | 'desired' | 'state' | 'runtime'> {
  gpu_uuids: string;
  desired: string;
  state: string;
  runtime: string | null;
}

const COLUMNS =
  'id, workload_id, project_id, slug, generation, desired, state, worker_id, gpu_uuids, claim_mib, port, runtime, container_id, pid, ' +
  'restarts, last_error, created_at, ready_at, updated_at, unknown_since';

const stateSchema = z.enum(replicaStates);
const desiredSchema = z.enum(['run', 'stop']);
const runtimeSchema = z.enum(['docker', 'process']).nullable();

const uuidsSchema = z.array(z.string());

function fromDb(row: ReplicaDbRow): ReplicaRecord {
  return {
    ...row,
    gpu_uuids: readJson(uuidsSchema, row.gpu_uuids, 'replicas.gpu_uuids'),
    desired: desiredSchema.parse(row.desired),
    state: stateSchema.parse(row.state),
    runtime: runtimeSchema.parse(row.runtime),
  };
}

/** Fields an agent report may change. */
export type ReplicaObservation = Partial<Pick<ReplicaRecord, 'state' | 'port' | 'runtime' | 'container_id' | 'pid' | 'restarts' | 'last_error' | 'ready_at' | 'unknown_since'>>;

export function createReplicaStore(db: Db, clock: Clock) {
  const insert = db.prepare(
    `INSERT INTO replicas (id, workload_id, project_id, slug, generation, desired, state, created_at, updated_at)
     VALUES (@id, @workload_id, @project_id, @slug, @generation, 'run', 'pending', @at, @at)`,
  );
  const byId = db.prepare<[string], ReplicaDbRow>(`SELECT ${COLUMNS} FROM replicas WHERE id = ?`);
  const byWorkload = db.prepare<[string], ReplicaDbRow>(`SELECT ${COLUMNS} FROM replicas WHERE workload_id = ? AND state != 'stopped' ORDER BY created_at, id`);
  const byWorker = db.prepare<[string], ReplicaDbRow>(`SELECT ${COLUMNS} FROM replicas WHERE worker_id = ? AND state != 'stopped' ORDER BY created_at, id`);
  const live = db.prepare<[], ReplicaDbRow>(`SELECT ${COLUMNS} FROM replicas WHERE state != 'stopped' ORDER BY created_at, id`);
  const orphans = db.prepare<[], { workload_id: string }>(
    `SELECT DISTINCT workload_id FROM replicas WHERE state != 'stopped' AND workload_id NOT IN (SELECT id FROM workloads)`,
  );
  const assign = db.prepare<[string, string, number, string, string]>(
    `UPDATE replicas SET worker_id = ?, gpu_uuids = ?, claim_mib = ?, state = 'pulling', updated_at = ? WHERE id = ? AND state = 'pending'`,
  );
  const setDesiredStop = db.prepare<[string, string]>(`UPDATE replicas SET desired = 'stop', updated_at = ? WHERE id = ?`);
  const purge = db.prepare<[string]>(`DELETE FROM replicas WHERE state = 'stopped' AND updated_at < ?`);

  return {
    insert(opts: { workloadId: string; projectId: string; slug: string; generation: number }): ReplicaRecord {
      const id = newId('rep');
      insert.run({ id, workload_id: opts.workloadId, project_id: opts.projectId, slug: opts.slug, generation: opts.generation, at: isoTime(clock.now()) });
      return this.get(id)!;
    },
    get(id: string): ReplicaRecord | undefined {
      const row = byId.get(id);
      return row && fromDb(row);
    },
    /** Replicas of a workload that are not stopped. */
    forWorkload(workloadId: string): ReplicaRecord[] {
      return byWorkload.all(workloadId).map(fromDb);
    },
    forWorker(workerId: string): ReplicaRecord[] {
      return byWorker.all(workerId).map(fromDb);
    },
    live(): ReplicaRecord[] {
      return live.all().map(fromDb);
    },
    /** Workload ids that still have replicas although the workload was deleted. */
    orphanedWorkloadIds(): string[] {
      return orphans.all().map((r) => r.workload_id);
    },
    /** Binds a pending replica to a worker and its GPUs (compare-and-swap on the pending state). */
    assign(id: string, workerId: string, gpuUuids: string[], claimMib: number): boolean {
      return assign.run(workerId, writeJson(gpuUuids), claimMib, isoTime(clock.now()), id).changes === 1;
    },
    markForStop(id: string): void {
      setDesiredStop.run(isoTime(clock.now()), id);
    },
    observe(id: string, fields: ReplicaObservation): void {
      const entries = Object.entries(fields).filter(([, v]) => v !== undefined);
      if (entries.length === 0) return;
      const sets = entries.map(([k]) => `${k} = @${k}`).join(', ');
      db.prepare(`UPDATE replicas SET ${sets}, updated_at = @updated_at WHERE id = @id`).run({ ...Object.fromEntries(entries), updated_at: isoTime(clock.now()), id });
    },
    /** Forgets stopped replicas older than the cutoff (they are history, not state). */
    purgeStopped(beforeIso: string): number {
      return purge.run(beforeIso).changes;
    },
  };
}

export type ReplicaStore = ReturnType<typeof createReplicaStore>;
