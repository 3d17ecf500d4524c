// `ik workloads ls|show|rm`: what a project runs, with state, generation and why a replica is pending.
import { z } from 'zod';
import { intFlag, parseCommandArgs, UsageError } from '../../../shared/cli-args.ts';
import { callHub, CliError, resolveHub, streamHub } from '../client.ts';
import { printFields, printJson, printTable } from '../output.ts';
import { projectOf, projectPath, splitSubcommand } from '../project.ts';

export const WORKLOADS_USAGE = `usage: ik workloads [ls]           list the project's workloads
       ik workloads show SLUG      spec (env values masked), state, replicas, placement
       ik workloads rm SLUG        delete (replicas are drained and stopped)
       ik workloads logs SLUG [--replica ID] [--tail N] [--follow] [--since 10m]
Options: --project P (default: IK_PROJECT or "default"), --json.`;

const workloadSchema = z.looseObject({
  slug: z.string(),
  name: z.string(),
  project: z.string(),
  model: z.string(),
  backend: z.string(),
  task_type: z.string(),
  execution_policy: z.string(),
  execution_policy_config: z.record(z.string(), z.unknown()),
  state: z.string(),
  generation: z.number(),
  desired_replicas: z.number(),
  replicas: z.array(z.looseObject({ id: z.string(), state: z.string(), worker_id: z.string().nullable() })),
  placement: z.string().nullable(),
  worker_id: z.string().optional(),
  command: z.string().optional(),
  env: z.record(z.string(), z.string()).optional(),
  updated_at: z.string(),
});
const listSchema = z.object({ items: z.array(workloadSchema), next: z.string().nullable() });

export async function runWorkloadsCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, rest] = splitSubcommand(argv);
  const { values, positionals } = parseCommandArgs(`ik workloads ${sub}`, rest, {
    project: { type: 'string' },
    json: { type: 'boolean' },
    replica: { type: 'string' },
    tail: { type: 'string' },
    since: { type: 'string' },
    follow: { type: 'boolean', short: 'f' },
    help: { type: 'boolean', short: 'h' },
  }, 1);
  if (values.help) return (process.stdout.write(`${WORKLOADS_USAGE}\n`), 0);
  const hub = resolveHub(env);
  const base = `${projectPath(projectOf(values.project, env))}/workloads`;

  if (sub === 'ls' || sub === 'list') {
    const raw = await callHub(hub, 'GET', base);
    if (values.json) return (printJson(raw), 0);
    const list = listSchema.parse(raw);
    if (list.items.length === 0) return (process.stdout.write('no workloads yet: create one with `ik ensure -f spec.json`\n'), 0);
    printTable(
      ['SLUG', 'MODEL', 'BACKEND', 'TASK', 'POLICY', 'STATE', 'REPLICAS', 'GEN'],
      list.items.map((w) => [
        w.slug,
        w.model,
        w.backend,
        w.task_type,
        w.execution_policy,
        w.state,
        `${w.replicas.filter((r) => r.state === 'ready').length}/${w.desired_replicas}`,
        String(w.generation),
      ]),
    );
    return 0;
  }
  const slug = positionals[0];
  if (!slug) throw new UsageError(`\`ik workloads ${sub}\` needs a workload slug (see \`ik workloads ls\`)`);
  const path = `${base}/${encodeURIComponent(slug)}`;
  switch (sub) {
    case 'show': {
      const raw = await callHub(hub, 'GET', path);
      if (values.json) return (printJson(raw), 0);
      const w = workloadSchema.parse(raw);
      printFields([
        ['workload', `${w.project}/${w.slug} (${w.name})`],
        ['model', `${w.model} on ${w.backend} (${w.task_type})`],
        ...(w.command ? [['command', w.command] as [string, string]] : []),
        ...(w.worker_id ? [['worker', w.worker_id] as [string, string]] : []),
        ['policy', `${w.execution_policy} ${JSON.stringify(w.execution_policy_config)}`],
        ['env', Object.entries(w.env ?? {}).map(([k, v]) => `${k}=${v}`).join(' ') || '-'],
        ['state', `${w.state} (generation ${w.generation}, updated ${w.updated_at})`],
        ['replicas', `${w.replicas.filter((r) => r.state === 'ready').length} ready of ${w.desired_replicas} desired`],
        ...(w.placement ? [['pending because', w.placement] as [string, string]] : []),
      ]);
      if (w.replicas.length > 0) {
        process.stdout.write('\n');
        printTable(['REPLICA', 'STATE', 'WORKER'], w.replicas.map((r) => [r.id, r.state, r.worker_id ?? '-']));
      }
      return 0;
    }
    case 'logs': {
      const w = workloadSchema.parse(await callHub(hub, 'GET', path));
      const replica = values.replica ?? w.replicas.find((r) => r.state === 'ready')?.id ?? w.replicas[0]?.id;
      if (!replica) throw new CliError(`workload ${slug} has no replicas yet: nothing to read`);
      const query = new URLSearchParams();
      if (values.tail) query.set('tail', String(intFlag('tail', values.tail, 1)));
      if (values.since) query.set('since', values.since);
      if (values.follow) query.set('follow', 'true');
      await streamHub(hub, `${path}/replicas/${encodeURIComponent(replica)}/logs?${query}`, (chunk) => process.stdout.write(chunk));
      return 0;
    }
    case 'rm':
    case 'delete': {
      await callHub(hub, 'DELETE', path);
      if (values.json) return (printJson({ slug, deleted: true }), 0);
      process.stdout.write(`workload ${slug} deleted\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command \`ik workloads ${sub}\`\n${WORKLOADS_USAGE}`);
  }
}
