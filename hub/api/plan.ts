// POST …/workloads:plan: the scheduler's dry run of a spec — VRAM estimate, where it would go and why not elsewhere,
// hourly cost — with no change of state.
import { z } from 'zod';
import { workloadSpecSchema } from '../../shared/spec/workload-spec.ts';
import type { ApiRouter } from './route.ts';
import type { ApiDeps } from './deps.ts';
import { projectParams, resolveProject } from './projects.ts';
import { validateSpec } from './ensure.ts';
import { planWorkload } from '../control/scheduler.ts';
import { schedulerWorkers } from '../control/snapshot.ts';

export const planSchema = z.object({
  feasible: z.boolean(),
  estimate: z.object({ vram_gib_per_gpu: z.number().nullable(), gpus: z.number().int(), known: z.boolean() }),
  placement: z.object({ worker_id: z.string(), gpu_uuids: z.array(z.string()) }).nullable(),
  explanation: z.string().nullable(),
  hourly_cost_usd: z.object({ min: z.number(), max: z.number() }),
  notes: z.array(z.string()),
});

export function registerPlanRoute(router: ApiRouter, deps: ApiDeps & { placement: 'spread' | 'binpack' }): void {
  router.add({
    method: 'POST',
    // find-my-way reads ':' as a parameter; '::' is a literal colon (Google-style custom method).
    url: '/api/v1/projects/:p/workloads::plan',
    operationId: 'planWorkload',
    summary: 'Dry run: validation, VRAM estimate, where a replica would go and why not elsewhere, hourly cost (changes nothing)',
    tag: 'workloads',
    params: projectParams,
    bodyDoc: workloadSpecSchema,
    responses: { 200: { description: 'the plan, whether or not it fits', schema: planSchema } },
    handler: ({ params, rawBody, caller }) => {
      const project = resolveProject(deps, caller, params.p);
      const spec = validateSpec(deps.store, project, rawBody);
      return planWorkload(spec, project.id, schedulerWorkers(deps.store), deps.placement);
    },
  });
}
