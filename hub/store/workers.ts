// Workers: one row per registered GPU box. Observed fields come from the agent's session; flags from the API.
import { z } from 'zod';
import type { Db } from '../db/open.ts';
import { newId, type NewSecret } from '../../shared/secrets.ts';
import { isoTime, type Clock } from '../../shared/clock.ts';
import { gpuErrorSchema, gpuSchema, hostSchema, runtimeInfoSchema, type Inventory } from '../../shared/inventory.ts';
import type { GpuError, Gpu, HostInfo, RuntimeInfo } from '../../shared/inventory.ts';
import { matchSecret } from './secret-match.ts';
import { readJson, writeJson } from './json-column.ts';
import { labelsSchema, type Labels } from './join-tokens.ts';

export const workerStates = ['ready', 'disconnected', 'down'] as const;
export type WorkerState = (typeof workerStates)[number];

export interface WorkerRecord {
  id: string;
  name: string;
  project_id: string | null;
  state: WorkerState;
  cordoned: boolean;
  draining: boolean;
  labels: Labels;
  agent_version: string;
  last_heartbeat_at: string | null;
  connected_at: string | null;
  host: HostInfo;
  runtime: RuntimeInfo;
  gpu_driver_version: string | null;
  cuda_version: string | null;
  gpu_error: GpuError | null;
  gpus: Gpu[];
  gpu_hourly_cost_usd: number | null;
  join_token_id: string | null;
  created_at: string;
}

interface WorkerDbRow {
  id: string;
  name: string;
  project_id: string | null;
  state: string;
  cordoned: number;
  draining: number;
  labels: string;
  agent_version: string;
  last_heartbeat_at: string | null;
  connected_at: string | null;
  host: string;
  runtime: string;
  gpu_driver_version: string | null;
  cuda_version: string | null;
  gpu_error: string | null;
  gpus: string;
  gpu_hourly_cost_usd: number | null;
  join_token_id: string | null;
  created_at: string;
}

const COLUMNS =
  'id, name, project_id, state, cordoned, draining, labels, agent_version, last_heartbeat_at, connected_at, host, runtime, ' +
  'gpu_driver_version, cuda_version, gpu_error, gpus, gpu_hourly_cost_usd, join_token_id, created_at';

const stateSchema = z.enum(workerStates);
const gpuErrorColumn = gpuErrorSchema.nullable();
const gpusColumn = z.array(gpuSchema);

function fromDb(row: WorkerDbRow): WorkerRecord {
  return {
    ...row,
    state: stateSchema.parse(row.state),
    cordoned: row.cordoned === 1,
    draining: row.draining === 1,
    labels: readJson(labelsSchema, row.labels, 'workers.labels'),
    host: readJson(hostSchema, row.host, 'workers.host'),
    runtime: readJson(runtimeInfoSchema, row.runtime, 'workers.runtime'),
    gpu_error: readJson(gpuErrorColumn, row.gpu_error, 'workers.gpu_error'),
    gpus: readJson(gpusColumn, row.gpus, 'workers.gpus'),
  };
}

export interface HeartbeatWrite {
  id: string;
  at: string;
  gpus: Gpu[];
  gpu_error: GpuError | null;
}

export function createWorkerStore(db: Db, clock: Clock) {
  const insert = db.prepare(
    `INSERT INTO workers (id, name, project_id, state, labels, agent_version, last_heartbeat_at, connected_at, host, runtime,
       gpu_driver_version, cuda_version, gpu_error, gpus, credential_prefix, credential_hash, join_token_id, created_at)
     VALUES (@id, @name, @project_id, 'ready', @labels, @agent_version, @at, @at, @host, @runtime,
       @gpu_driver_version, @cuda_version, @gpu_error, @gpus, @credential_prefix, @credential_hash, @join_token_id, @at)`,
  );
  const byId = db.prepare<[string], WorkerDbRow>(`SELECT ${COLUMNS} FROM workers WHERE id = ?`);
  const byName = db.prepare<[string], WorkerDbRow>(`SELECT ${COLUMNS} FROM workers WHERE name = ?`);
  const byCredentialPrefix = db.prepare<[string], { id: string; hash: string }>(
    'SELECT id, credential_hash AS hash FROM workers WHERE credential_prefix = ?',
  );
  const listAll = db.prepare<[], WorkerDbRow>(`SELECT ${COLUMNS} FROM workers ORDER BY name`);
  const listVisible = db.prepare<[string], WorkerDbRow>(
    `SELECT ${COLUMNS} FROM workers WHERE project_id IS NULL OR project_id = ? ORDER BY name`,
  );
  const updateInventory = db.prepare(
    `UPDATE workers SET agent_version = @agent_version, host = @host, runtime = @runtime, gpu_driver_version = @gpu_driver_version,
       cuda_version = @cuda_version, gpu_error = @gpu_error, gpus = @gpus WHERE id = @id`,
  );
  const markConnected = db.prepare<[string, string, string]>(
    `UPDATE workers SET state = 'ready', connected_at = ?, last_heartbeat_at = ? WHERE id = ?`,
  );
  const setState = db.prepare<[string, string]>('UPDATE workers SET state = ? WHERE id = ?');
  const heartbeat = db.prepare<[string, string, string | null, string]>(
    'UPDATE workers SET last_heartbeat_at = ?, gpus = ?, gpu_error = ? WHERE id = ?',
  );
  const setFlags = db.prepare<[number, number, string]>('UPDATE workers SET cordoned = ?, draining = ? WHERE id = ?');
  const patchRow = db.prepare<[string, number | null, string]>('UPDATE workers SET labels = ?, gpu_hourly_cost_usd = ? WHERE id = ?');
  const setCredential = db.prepare<[string, string, string]>(
    'UPDATE workers SET credential_prefix = ?, credential_hash = ? WHERE id = ?',
  );
  const remove = db.prepare<[string]>('DELETE FROM workers WHERE id = ?');
  const countStates = db.prepare<[], { state: string; n: number }>('SELECT state, COUNT(*) AS n FROM workers GROUP BY state');

  const inventoryColumns = (inv: Inventory) => ({
    host: writeJson(inv.host),
    runtime: writeJson(inv.runtime),
    gpu_driver_version: inv.gpu_driver_version,
    cuda_version: inv.cuda_version,
    gpu_error: inv.gpu_error === null ? null : writeJson(inv.gpu_error),
    gpus: writeJson(inv.gpus),
  });

  const writeHeartbeats = db.transaction((writes: HeartbeatWrite[]) => {
    for (const w of writes) heartbeat.run(w.at, writeJson(w.gpus), w.gpu_error === null ? null : writeJson(w.gpu_error), w.id);
  });

  return {
    insert(opts: {
      name: string;
      projectId: string | null;
      labels: Labels;
      agentVersion: string;
      inventory: Inventory;
      credential: NewSecret;
      joinTokenId: string | null;
    }): WorkerRecord {
      const id = newId('wrk');
      insert.run({
        id,
        name: opts.name,
        project_id: opts.projectId,
        labels: writeJson(opts.labels),
        agent_version: opts.agentVersion,
        at: isoTime(clock.now()),
        ...inventoryColumns(opts.inventory),
        credential_prefix: opts.credential.prefix,
        credential_hash: opts.credential.hash,
        join_token_id: opts.joinTokenId,
      });
      return this.getById(id)!;
    },
    getById(id: string): WorkerRecord | undefined {
      const row = byId.get(id);
      return row && fromDb(row);
    },
    getByName(name: string): WorkerRecord | undefined {
      const row = byName.get(name);
      return row && fromDb(row);
    },
    /** The worker a credential (ik_agent_…) belongs to, if any. */
    findByCredential(secret: string): WorkerRecord | undefined {
      const match = matchSecret(secret, (prefix) => byCredentialPrefix.all(prefix));
      return match && this.getById(match.id);
    },
    /** All workers, or those a project can see: the shared pool and its own private workers. */
    list(visibleToProjectId?: string): WorkerRecord[] {
      return (visibleToProjectId === undefined ? listAll.all() : listVisible.all(visibleToProjectId)).map(fromDb);
    },
    updateInventory(id: string, agentVersion: string, inventory: Inventory): void {
      updateInventory.run({ id, agent_version: agentVersion, ...inventoryColumns(inventory) });
    },
    markConnected(id: string): void {
      const at = isoTime(clock.now());
      markConnected.run(at, at, id);
    },
    setState(id: string, state: WorkerState): void {
      setState.run(state, id);
    },
    /** Many heartbeats in one transaction: heartbeats are batched off the hot path. */
    writeHeartbeats(writes: HeartbeatWrite[]): void {
      if (writes.length > 0) writeHeartbeats(writes);
    },
    setFlags(id: string, flags: { cordoned: boolean; draining: boolean }): void {
      setFlags.run(flags.cordoned ? 1 : 0, flags.draining ? 1 : 0, id);
    },
    patch(id: string, values: { labels: Labels; gpu_hourly_cost_usd: number | null }): void {
      patchRow.run(writeJson(values.labels), values.gpu_hourly_cost_usd, id);
    },
    replaceCredential(id: string, credential: NewSecret): void {
      setCredential.run(credential.prefix, credential.hash, id);
    },
    delete(id: string): boolean {
      return remove.run(id).changes > 0;
    },
    countByState(): Record<WorkerState, number> {
      const counts: Record<WorkerState, number> = { ready: 0, disconnected: 0, down: 0 };
      for (const row of countStates.all()) {
        const state = stateSchema.safeParse(row.state);
        if (state.success) counts[state.data] = row.n;
      }
      return counts;
    },
  };
}

export type WorkerStore = ReturnType<typeof createWorkerStore>;
