// `ik projects ls|create`: the tenants of a hub.
import { parseCommandArgs, UsageError } from '../../../shared/cli-args.ts';
import { listOf, projectViewSchema } from '../../../shared/api.ts';
import { callHub, resolveHub } from '../client.ts';
import { printJson, printTable } from '../output.ts';
import { splitSubcommand } from '../project.ts';

export const PROJECTS_USAGE = `usage: ik projects [ls]
       ik projects create SLUG [--name NAME]     (admin token)
Every command takes --json.`;

export async function runProjectsCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, rest] = splitSubcommand(argv);
  const { values, positionals } = parseCommandArgs(`ik projects ${sub}`, rest, {
    name: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, 1);
  if (values.help) return (process.stdout.write(`${PROJECTS_USAGE}\n`), 0);
  const hub = resolveHub(env);
  switch (sub) {
    case 'ls':
    case 'list': {
      const list = listOf(projectViewSchema).parse(await callHub(hub, 'GET', '/api/v1/projects'));
      if (values.json) return (printJson(list), 0);
      printTable(['SLUG', 'NAME', 'CREATED'], list.items.map((p) => [p.slug, p.name, p.created_at]));
      return 0;
    }
    case 'create': {
      const slug = positionals[0];
      if (!slug) throw new UsageError('`ik projects create` needs a slug, e.g. `ik projects create acme`');
      const project = projectViewSchema.parse(await callHub(hub, 'POST', '/api/v1/projects', { slug, ...(values.name ? { name: values.name } : {}) }));
      if (values.json) return (printJson(project), 0);
      process.stdout.write(`project ${project.slug} created; give it a token with \`ik tokens create --project ${project.slug}\`\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command \`ik projects ${sub}\`\n${PROJECTS_USAGE}`);
  }
}
