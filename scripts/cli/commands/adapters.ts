// `ik adapters list|put|delete`: the LoRA adapters a workload serves, selected by the request's `model`.
import { parseCommandArgs, UsageError } from '../../../shared/cli-args.ts';
import { adapterViewSchema, listOf } from '../../../shared/api.ts';
import { callHub, callHubWithStatus, resolveHub } from '../client.ts';
import { printJson, printTable } from '../output.ts';
import { projectOf, projectPath, splitSubcommand } from '../project.ts';

export const ADAPTERS_USAGE = `usage: ik adapters list WORKLOAD                      the workload's adapters
       ik adapters put WORKLOAD NAME --source S       deploy NAME (or point it at a new source); requests
                                                      with "model": "NAME" use it. S: a Hugging Face repo
                                                      id (org/sql-lora) or a path on the worker
       ik adapters delete WORKLOAD NAME               the replicas unload it
Options: --project P (default: IK_PROJECT or "default"), --json.`;

export async function runAdaptersCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, rest] = splitSubcommand(argv);
  const { values, positionals } = parseCommandArgs(`ik adapters ${sub}`, rest, {
    source: { type: 'string' },
    project: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, 2);
  if (values.help) return (process.stdout.write(`${ADAPTERS_USAGE}\n`), 0);
  const [slug, name] = positionals;
  if (!['ls', 'list', 'put', 'rm', 'delete'].includes(sub)) throw new UsageError(`unknown command \`ik adapters ${sub}\`\n${ADAPTERS_USAGE}`);
  if (!slug) throw new UsageError(`\`ik adapters ${sub}\` needs the workload slug, e.g. \`ik adapters ${sub} support-bot${sub === 'put' ? ' sql --source org/sql-lora' : ''}\``);
  const hub = resolveHub(env);
  const base = `${projectPath(projectOf(values.project, env))}/workloads/${encodeURIComponent(slug)}/adapters`;

  if (sub === 'ls' || sub === 'list') {
    if (name !== undefined) throw new UsageError(`unexpected argument "${name}" for \`ik adapters list\`; see \`ik adapters --help\``);
    const list = listOf(adapterViewSchema).parse(await callHub(hub, 'GET', base));
    if (values.json) return (printJson(list), 0);
    if (list.items.length === 0) {
      process.stdout.write(`no adapters on ${slug} yet: add one with \`ik adapters put ${slug} NAME --source SOURCE\`\n`);
      return 0;
    }
    printTable(['NAME', 'SOURCE', 'UPDATED'], list.items.map((a) => [a.name, a.source, a.updated_at]));
    return 0;
  }
  if (!name) throw new UsageError(`\`ik adapters ${sub}\` needs the adapter name, e.g. \`ik adapters ${sub} ${slug} sql${sub === 'put' ? ' --source org/sql-lora' : ''}\``);
  const path = `${base}/${encodeURIComponent(name)}`;

  if (sub === 'put') {
    if (values.source === undefined) throw new UsageError('`ik adapters put` needs --source: a Hugging Face repo id (org/sql-lora) or a path on the worker');
    const res = await callHubWithStatus(hub, 'PUT', path, { source: values.source });
    const adapter = adapterViewSchema.parse(res.body);
    if (values.json) return (printJson(adapter), 0);
    process.stdout.write(`adapter ${adapter.name} on ${adapter.workload} ${res.status === 201 ? 'created' : 'set'}: loads ${adapter.source}\n`);
    return 0;
  }
  await callHub(hub, 'DELETE', path);
  if (values.json) return (printJson({ workload: slug, name, deleted: true }), 0);
  process.stdout.write(`adapter ${name} removed from ${slug}\n`);
  return 0;
}
