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
  created_at: string;
  updated_at: string;
}

const COLUMNS = 'id, project_id, slug, spec, env_sealed, generation, state, desired_state, placement, created_at, updated_at';
const stateSchema = z.enum(workloadStates);
const desiredSchema = z.enum(['active', 'inactive']);
const envSchema = z.record(z.string(), z.string());

export function maskEnv(env: Record<string, string> | undefined): Record<string, string> | undefined {
  return env && Object.fromEntries(Object.keys(env).map((k) => [k, ENV_MASK]));
}

export function createWorkloadStore(db: Db, clock: Clock, box: SecretBox) {
  const insert = db.prepare(
    `INSERT INTO workloads (id, project_id, slug, spec, env_sealed, generation, state, desired_state, created_at, updated_at)
     VALUES (@id, @project_id, @slug, @spec, @env_sealed, 1, 'creating', 'active', @at, @at)`,
  );
  const bySlug = db.prepare<[string, string], WorkloadDbRow>(`SELECT ${COLUMNS} FROM workloads WHERE project_id = ? AND slug = ?`);
  const byId = db.prepare<[string], WorkloadDbRow>(`SELECT ${COLUMNS} FROM workloads WHERE id = ?`);
  const listByProject = db.prepare<[string], WorkloadDbRow>(`SELECT ${COLUMNS} FROM workloads WHERE project_id = ? ORDER BY slug`);
  const listAll = db.prepare<[], WorkloadDbRow>(`SELECT ${COLUMNS} FROM workloads ORDER BY project_id, slug`);
  const update = db.prepare(
    `UPDATE workloads SET spec = @spec, env_sealed = @env_sealed, generation = generation + 1, updated_at = @at
     WHERE id = @id AND generation = @generation`,
  );
  const setLifecycle = db.prepare<[string, string, string, string]>(
    'UPDATE workloads SET desired_state = ?, state = ?, updated_at = ? WHERE id = ?',
  );
  const remove = db.prepare<[string]>('DELETE FROM workloads WHERE id = ?');
  const setState = db.prepare<[string, string, string]>('UPDATE workloads SET state = ?, updated_at = ? WHERE id = ?');
  const setPlacement = db.prepare<[string | null, string]>('UPDATE workloads SET placement = ? WHERE id = ?');

  const fromDb = (row: WorkloadDbRow): WorkloadRecord & { env_sealed: string | null } => ({
    ...row,
    spec: readJson(normalizedWorkloadSpecSchema, row.spec, 'workloads.spec'),
    state: stateSchema.parse(row.state),
    desired_state: desiredSchema.parse(row.desired_state),
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
    setLifecycle(id: string, desired: DesiredState, state: WorkloadState): void {
      setLifecycle.run(desired, state, isoTime(clock.now()), id);
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
