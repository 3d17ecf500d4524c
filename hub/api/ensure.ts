// ensure(): idempotent create-or-update of a workload by slug, with the caller's choice on drift (reconcile, fail, ignore).
import { AppError, type ErrorDetail } from '../../shared/errors.ts';
import { diffWorkloadSpecs, parseWorkloadSpec, type WorkloadSpec } from '../../shared/spec/workload-spec.ts';
import type { OnDriftMode } from '../../shared/api.ts';
import type { Store } from '../store/index.ts';
import type { Project } from '../store/projects.ts';
import { ENV_MASK, type WorkloadRecord } from '../store/workloads.ts';

export const ensureOutcomes = ['created', 'unchanged', 'reconciled', 'ignored'] as const;
export type EnsureOutcome = (typeof ensureOutcomes)[number];

export interface EnsureResult {
  outcome: EnsureOutcome;
  workload: WorkloadRecord;
}

export function ensureWorkload(store: Store, project: Project, slug: string, body: unknown, onDrift: OnDriftMode): EnsureResult {
  const raw = withPathSlug(body, slug);
  const existing = store.workloads.get(project.id, slug);
  const stored = existing && store.workloads.fullSpec(existing.id);
  const spec = validateSpec(store, project, unmaskEnv(raw, stored));

  return store.transaction((): EnsureResult => {
    // Re-read inside the transaction: a concurrent ensure() of the same slug may have won the race.
    const current = store.workloads.get(project.id, slug);
    if (!current) {
      const workload = store.workloads.insert(project.id, spec);
      store.events.record({ kind: 'workload.created', projectId: project.id, workload: slug, message: `workload ${slug} created (generation 1)` });
      return { outcome: 'created', workload };
    }
    const differences = diffWorkloadSpecs(store.workloads.fullSpec(current.id)!, spec);
    if (differences.length === 0) return { outcome: 'unchanged', workload: current };
    if (onDrift === 'ignore') return { outcome: 'ignored', workload: current };
    const paths = differences.map((d) => d.path);
    if (onDrift === 'fail') {
      throw new AppError('WORKLOAD_DRIFT', `the stored spec of ${slug} differs in ${paths.join(', ')}: ensure with on_drift=reconcile to apply it`, {
        details: differences.map((d) => ({ path: d.path, message: `stored ${JSON.stringify(d.stored)}, given ${JSON.stringify(d.given)}` })),
      });
    }
    if (!store.workloads.replaceSpec(current.id, current.generation, spec)) {
      throw new AppError('CONFLICT', `workload ${slug} changed while this update was applied: try again`);
    }
    const generation = current.generation + 1;
    store.events.record({
      kind: 'workload.updated',
      projectId: project.id,
      workload: slug,
      message: `workload ${slug} updated to generation ${generation}: ${paths.join(', ')}`,
      data: { generation, changed: paths },
    });
    return { outcome: 'reconciled', workload: store.workloads.getById(current.id)! };
  });
}

function withPathSlug(body: unknown, slug: string): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const given = (body as Record<string, unknown>).slug;
  if (given === undefined) return { ...body, slug };
  if (given !== slug) {
    throw new AppError('VALIDATION_FAILED', `the body's slug ${JSON.stringify(given)} differs from the path's "${slug}": they must be the same`, {
      details: [{ path: 'slug', message: `must equal the slug in the path ("${slug}")` }],
    });
  }
  return body;
}

/** A spec read back from GET carries masked env values; sending it again keeps the stored values. */
function unmaskEnv(raw: unknown, stored: WorkloadSpec | undefined): unknown {
  if (typeof raw !== 'object' || raw === null || !('env' in raw)) return raw;
  const env = (raw as { env: unknown }).env;
  if (typeof env !== 'object' || env === null || Array.isArray(env)) return raw;
  const details: ErrorDetail[] = [];
  const restored: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== ENV_MASK) restored[key] = value;
    else if (stored?.env?.[key] !== undefined) restored[key] = stored.env[key];
    else details.push({ path: `env.${key}`, message: `"${ENV_MASK}" only keeps a value the hub already stores; give the real value` });
  }
  if (details.length > 0) throw new AppError('WORKLOAD_SPEC_INVALID', 'the workload spec is invalid: a masked env value has nothing stored behind it', { details });
  return { ...raw, env: restored };
}

/** Parses a spec and checks it against this hub (worker ids the project may name); throws the 422 on problems. */
export function validateSpec(store: Store, project: Project, raw: unknown): WorkloadSpec {
  const parsed = parseWorkloadSpec(raw);
  if (!parsed.ok) throw specInvalid(parsed.details);
  const spec = parsed.spec;
  const details: ErrorDetail[] = [];
  // Worker ids are checked against this hub: a spec may only name workers its project can use.
  if (spec.worker_id !== undefined) {
    const w = store.workers.getById(spec.worker_id);
    if (!w || (w.project_id !== null && w.project_id !== project.id)) {
      details.push({ path: 'worker_id', message: `no worker ${spec.worker_id} in project ${project.slug} or the shared pool (see \`ik workers ls\`)` });
    }
  }
  const config = spec.execution_policy_config;
  if ('workers' in config && config.workers?.source === 'private') {
    config.workers.private_worker_ids.forEach((id, i) => {
      const w = store.workers.getById(id);
      if (!w || w.project_id !== project.id) {
        details.push({ path: `execution_policy_config.workers.private_worker_ids[${i}]`, message: `${id} is not a private worker of project ${project.slug}` });
      }
    });
  }
  if (details.length > 0) throw specInvalid(details);
  return spec;
}

function specInvalid(details: ErrorDetail[]): AppError {
  const summary = details.map((d) => `${d.path || '(spec)'}: ${d.message}`).join('; ');
  return new AppError('WORKLOAD_SPEC_INVALID', `the workload spec is invalid (${details.length} problem${details.length === 1 ? '' : 's'}): ${summary}`, { details });
}
