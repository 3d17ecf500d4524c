// Workloads: the desired state of each (project, slug), written only by the API; env values are sealed at rest.
import { z } from 'zod';
import type { Db } from '../db/open.ts';
import { newId } from '../../shared/secrets.ts';
import { isoTime, type Clock } from '../../shared/clock.ts';
import { normalizedWorkloadSpecSchema, type WorkloadSpec } from '../../shared/spec/workload-spec.ts';
import type { SecretBox } from '../secret-box.ts';
import { readJson, writeJson } from './json-column.ts';

export const workloadStates = ['creating', 'active', 'scheduled', 'inactive', 'degraded', 'failed'] as const;
export type WorkloadState = (typeof workloadStates)[number];
export type DesiredState = 'active' | 'inactive';
/** Who deactivated a workload: by hand it stays off until activated; by its inactive timeout a request wakes it. */
export type DeactivatedBy = 'hand' | 'timeout';

/** What GET shows in place of an env value. */
export const ENV_MASK = '********';

export interface WorkloadRecord {
  id: string;
  project_id: string;
  slug: string;
  /** The normalized spec with env values masked (ENV_MASK); `fullSpec()` opens the real values. */
  spec: WorkloadSpec;
  generation: number;
  state: WorkloadState;
  desired_state: DesiredState;
  placement: string | null;
  /** autoscaling: the count the autoscaler last decided (null: not yet; min_workers applies). */
  scale: number | null;
  deactivated_by: DeactivatedBy | null;
  /** When the workload was last activated (created counts): an inactive timeout counts from then at the earliest. */
  activated_at: string;
  created_at: string;
  updated_at: string;
}

interface WorkloadDbRow {
  id: string;
  project_id: string;
  slug: string;
  spec: string;
  env_sealed: string | null;
  generation: number;
  state: string;
  desired_state: string;
  placement: string | null;
  scale: number | null;
  deactivated_by: string | null;
  activated_at: string | null;
  created_at: string;
  updated_at: string;
}

const COLUMNS =
  'id, project_id, slug, spec, env_sealed, generation, state, desired_state, placement, scale, deactivated_by, activated_at, created_at, updated_at';
const stateSchema = z.enum(workloadStates);
const desiredSchema = z.enum(['active', 'inactive']);
const deactivatedBySchema = z.enum(['hand', 'timeout']).nullable();
const envSchema = z.record(z.string(), z.string());

export function maskEnv(env: Record<string, string> | undefined): Record<string, string> | undefined {
  return env && Object.fromEntries(Object.keys(env).map((k) => [k, ENV_MASK]));
}

export function createWorkloadStore(db: Db, clock: Clock, box: SecretBox) {
  const insert = db.prepare(
    `INSERT INTO workloads (id, project_id, slug, spec, env_sealed, generation, state, desired_state, activated_at, created_at, updated_at)
     VALUES (@id, @project_id, @slug, @spec, @env_sealed, 1, 'creating', 'active', @at, @at, @at)`,
  );
  const bySlug = db.prepare<[string, string], WorkloadDbRow>(`SELECT ${COLUMNS} FROM workloads WHERE project_id = ? AND slug = ?`);
  const byId = db.prepare<[string], WorkloadDbRow>(`SELECT ${COLUMNS} FROM workloads WHERE id = ?`);
  const listByProject = db.prepare<[string], WorkloadDbRow>(`SELECT ${COLUMNS} FROM workloads WHERE project_id = ? ORDER BY slug`);
  const listAll = db.prepare<[], WorkloadDbRow>(`SELECT ${COLUMNS} FROM workloads ORDER BY project_id, slug`);
  const update = db.prepare(
    `UPDATE workloads SET spec = @spec, env_sealed = @env_sealed, generation = generation + 1, updated_at = @at
     WHERE id = @id AND generation = @generation`,
  );
  const deactivate = db.prepare<[string, string, string]>(
    "UPDATE workloads SET desired_state = 'inactive', state = 'inactive', deactivated_by = ?, updated_at = ? WHERE id = ?",
  );
  const activate = db.prepare<[string, string, string, string]>(
    "UPDATE workloads SET desired_state = 'active', state = ?, deactivated_by = NULL, scale = NULL, activated_at = ?, updated_at = ? WHERE id = ?",
  );
  const setScale = db.prepare<[number | null, string]>('UPDATE workloads SET scale = ? WHERE id = ?');
  const remove = db.prepare<[string]>('DELETE FROM workloads WHERE id = ?');
  const setState = db.prepare<[string, string, string]>('UPDATE workloads SET state = ?, updated_at = ? WHERE id = ?');
  const setPlacement = db.prepare<[string | null, string]>('UPDATE workloads SET placement = ? WHERE id = ?');

  const fromDb = (row: WorkloadDbRow): WorkloadRecord & { env_sealed: string | null } => ({
    ...row,
    spec: readJson(normalizedWorkloadSpecSchema, row.spec, 'workloads.spec'),
    state: stateSchema.parse(row.state),
    desired_state: desiredSchema.parse(row.desired_state),
    deactivated_by: deactivatedBySchema.parse(row.deactivated_by),
    activated_at: row.activated_at ?? row.created_at,
  });
  const columns = (spec: WorkloadSpec) => ({
    spec: writeJson({ ...spec, ...(spec.env ? { env: maskEnv(spec.env) } : {}) }),
    env_sealed: spec.env && Object.keys(spec.env).length > 0 ? box.seal(JSON.stringify(spec.env)) : null,
  });
  const strip = ({ env_sealed: _sealed, ...record }: WorkloadRecord & { env_sealed: string | null }): WorkloadRecord => record;

  return {
    insert(projectId: string, spec: WorkloadSpec): WorkloadRecord {
      const id = newId('wl');
      insert.run({ id, project_id: projectId, slug: spec.slug, at: isoTime(clock.now()), ...columns(spec) });
      return this.getById(id)!;
    },
    get(projectId: string, slug: string): WorkloadRecord | undefined {
      const row = bySlug.get(projectId, slug);
      return row && strip(fromDb(row));
    },
    getById(id: string): WorkloadRecord | undefined {
      const row = byId.get(id);
      return row && strip(fromDb(row));
    },
    list(projectId?: string): WorkloadRecord[] {
      return (projectId === undefined ? listAll.all() : listByProject.all(projectId)).map((r) => strip(fromDb(r)));
    },
    /** The spec with its real env values, for drift checks and for launching replicas. */
    fullSpec(id: string): WorkloadSpec | undefined {
      const row = byId.get(id);
      if (!row) return undefined;
      const record = fromDb(row);
      if (!row.env_sealed) return record.spec;
      return { ...record.spec, env: readJson(envSchema, box.open(row.env_sealed), 'workloads.env_sealed') };
    },
    /** Replaces the spec and bumps the generation, if nobody else did since `generation` (compare-and-swap). */
    replaceSpec(id: string, generation: number, spec: WorkloadSpec): boolean {
      return update.run({ id, generation, at: isoTime(clock.now()), ...columns(spec) }).changes === 1;
    },
    /** Releases the workload's compute; `by` decides whether a request may wake it (timeout) or not (hand). */
    deactivate(id: string, by: DeactivatedBy): void {
      deactivate.run(by, isoTime(clock.now()), id);
    },
    /** Runs the workload by its policy again, from its starting count (autoscaling: min_workers, then the autoscaler). */
    activate(id: string, state: WorkloadState): void {
      const at = isoTime(clock.now());
      activate.run(state, at, at, id);
    },
    /** The autoscaler's decision (null: back to min_workers). */
    setScale(id: string, scale: number | null): void {
      setScale.run(scale, id);
    },
    delete(id: string): boolean {
      return remove.run(id).changes > 0;
    },
    /** Observed lifecycle (written by the reconciler). */
    setState(id: string, state: WorkloadState): void {
      setState.run(state, isoTime(clock.now()), id);
    },
    /** Why a replica is pending, in plain language; null when nothing waits. */
    setPlacement(id: string, explanation: string | null): void {
      setPlacement.run(explanation, id);
    },
  };
}

export type WorkloadStore = ReturnType<typeof createWorkloadStore>;
