// `ik plan -f spec.json`: a dry run — validation, VRAM estimate, where a replica would go and why not elsewhere,
// and the hourly cost — with no change on the hub.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseCommandArgs, UsageError } from '../../../shared/cli-args.ts';
import { callHub, CliError, resolveHub } from '../client.ts';
import { printFields, printJson } from '../output.ts';
import { projectOf, projectPath } from '../project.ts';

export const PLAN_USAGE = `usage: ik plan -f spec.json [--project P] [--json]

Shows what ensure() would do with this spec, without doing it: the VRAM estimate, the worker and GPUs a replica
would get (or, when nothing fits, why each worker cannot take it), and the hourly cost range.`;

const planSchema = z.object({
  feasible: z.boolean(),
  estimate: z.object({ vram_gib_per_gpu: z.number().nullable(), gpus: z.number(), known: z.boolean() }),
  placement: z.object({ worker_id: z.string(), gpu_uuids: z.array(z.string()) }).nullable(),
  explanation: z.string().nullable(),
  hourly_cost_usd: z.object({ min: z.number(), max: z.number() }),
  notes: z.array(z.string()),
});

export async function runPlanCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = parseCommandArgs('ik plan', argv, {
    file: { type: 'string', short: 'f' },
    project: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return (process.stdout.write(`${PLAN_USAGE}\n`), 0);
  if (!values.file) throw new UsageError('`ik plan` needs -f spec.json (or -f - for standard input)');
  let spec: unknown;
  try {
    spec = JSON.parse(readFileSync(values.file === '-' ? 0 : values.file, 'utf8'));
  } catch (err) {
    throw new CliError(`cannot read the spec from ${values.file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const hub = resolveHub(env);
  const raw = await callHub(hub, 'POST', `${projectPath(projectOf(values.project, env))}/workloads:plan`, spec);
  if (values.json) return (printJson(raw), 0);
  const plan = planSchema.parse(raw);
  const vram = plan.estimate.vram_gib_per_gpu === null ? 'unknown (the model id carries no size)' : `~${plan.estimate.vram_gib_per_gpu} GiB per GPU`;
  const usd = (n: number) => `$${n.toFixed(2)}`;
  printFields([
    ['fits', plan.feasible ? 'yes' : 'no'],
    ['needs', `${plan.estimate.gpus} GPU${plan.estimate.gpus === 1 ? '' : 's'}, ${vram}`],
    ...(plan.placement ? [['placement', `${plan.placement.worker_id} on ${plan.placement.gpu_uuids.join(', ') || 'no GPU'}`] as [string, string]] : []),
    ...(plan.explanation ? [['why not', plan.explanation] as [string, string]] : []),
    ['hourly cost', plan.hourly_cost_usd.min === plan.hourly_cost_usd.max ? usd(plan.hourly_cost_usd.max) : `${usd(plan.hourly_cost_usd.min)} – ${usd(plan.hourly_cost_usd.max)}`],
    ...plan.notes.map((n) => ['note', n] as [string, string]),
  ]);
  return plan.feasible ? 0 : 1;
}
