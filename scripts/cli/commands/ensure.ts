// `ik ensure -f spec.json [--on-drift reconcile|fail|ignore]`: idempotent create or update of a workload.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseCommandArgs, UsageError } from '../../../shared/cli-args.ts';
import { ENSURE_OUTCOME_HEADER, onDriftModes } from '../../../shared/api.ts';
import { callHubWithStatus, CliError, resolveHub } from '../client.ts';
import { printJson } from '../output.ts';
import { projectOf, projectPath } from '../project.ts';

export const ENSURE_USAGE = `usage: ik ensure -f spec.json [--on-drift reconcile|fail|ignore] [--project P] [--json]

Creates the workload, or brings it to this spec. The same spec again changes nothing. A changed spec
is applied (reconcile, the default), refused with the differences (fail), or left as stored (ignore).
-f - reads the spec from standard input.`;

const workloadSummary = z.looseObject({ slug: z.string(), project: z.string(), generation: z.number(), state: z.string() });

export async function runEnsureCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = parseCommandArgs('ik ensure', argv, {
    file: { type: 'string', short: 'f' },
    'on-drift': { type: 'string' },
    project: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return (process.stdout.write(`${ENSURE_USAGE}\n`), 0);
  if (!values.file) throw new UsageError('`ik ensure` needs -f spec.json (or -f - for standard input)');
  const onDrift = values['on-drift'] ?? 'reconcile';
  if (!(onDriftModes as readonly string[]).includes(onDrift)) throw new UsageError(`--on-drift is one of ${onDriftModes.join(', ')}, got "${onDrift}"`);
  const spec = readSpec(values.file);
  const slug = typeof spec === 'object' && spec !== null && 'slug' in spec && typeof spec.slug === 'string' ? spec.slug : undefined;
  if (!slug) throw new CliError(`${values.file}: the spec has no "slug" (a workload is identified by its slug)`);

  const hub = resolveHub(env);
  const project = projectOf(values.project, env);
  const { headers, body } = await callHubWithStatus(hub, 'PUT', `${projectPath(project)}/workloads/${encodeURIComponent(slug)}?on_drift=${onDrift}`, spec);
  if (values.json) return (printJson(body), 0);
  const w = workloadSummary.parse(body);
  const outcome = headers.get(ENSURE_OUTCOME_HEADER) ?? 'ensured';
  const note = outcome === 'ignored' ? ' (the stored spec differs and was kept: --on-drift ignore)' : '';
  process.stdout.write(`workload ${w.project}/${w.slug} ${outcome}: generation ${w.generation}, state ${w.state}${note}\n`);
  return 0;
}

function readSpec(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(err)}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(`${file} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}
