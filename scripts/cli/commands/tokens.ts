// `ik tokens create|ls|revoke`: control tokens (ik_sdk_…) scoped to one project.
import { parseCommandArgs, intFlag, UsageError } from '../../../shared/cli-args.ts';
import { controlTokenCreatedSchema, controlTokenViewSchema, listOf, type ControlTokenView } from '../../../shared/api.ts';
import { callHub, resolveHub } from '../client.ts';
import { ago, printJson, printTable } from '../output.ts';
import { projectOf, projectPath, splitSubcommand } from '../project.ts';
import { credentialStatus } from './keys.ts';

export const TOKENS_USAGE = `usage: ik tokens create [--name NAME] [--expires-in SECONDS]
       ik tokens ls
       ik tokens revoke ID
Options: --project P (default: IK_PROJECT or "default"), --json. A token sees and changes only its project.`;

export async function runTokensCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, rest] = splitSubcommand(argv);
  const { values, positionals } = parseCommandArgs(`ik tokens ${sub}`, rest, {
    name: { type: 'string' },
    'expires-in': { type: 'string' },
    project: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, 1);
  if (values.help) return (process.stdout.write(`${TOKENS_USAGE}\n`), 0);
  const hub = resolveHub(env);
  const project = projectOf(values.project, env);
  const base = `${projectPath(project)}/tokens`;
  switch (sub) {
    case 'create': {
      const body = {
        ...(values.name ? { name: values.name } : {}),
        ...(values['expires-in'] ? { expires_in_s: intFlag('expires-in', values['expires-in'], 1) } : {}),
      };
      const token = controlTokenCreatedSchema.parse(await callHub(hub, 'POST', base, body));
      if (values.json) return (printJson(token), 0);
      process.stdout.write(`control token ${token.id} for project ${token.project} (shown once):\n  ${token.secret}\nuse it with: IK_TOKEN=${token.secret} IK_PROJECT=${token.project} ik workloads\n`);
      return 0;
    }
    case 'ls':
    case 'list': {
      const list = listOf(controlTokenViewSchema).parse(await callHub(hub, 'GET', base));
      if (values.json) return (printJson(list), 0);
      printCredentials(list.items);
      return 0;
    }
    case 'revoke':
    case 'rm': {
      const id = positionals[0];
      if (!id) throw new UsageError('`ik tokens revoke` needs a token id (see `ik tokens ls`)');
      const token = controlTokenViewSchema.parse(await callHub(hub, 'DELETE', `${base}/${encodeURIComponent(id)}`));
      if (values.json) return (printJson(token), 0);
      process.stdout.write(`control token ${token.id} (${token.prefix}…) revoked\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command \`ik tokens ${sub}\`\n${TOKENS_USAGE}`);
  }
}

function printCredentials(items: ControlTokenView[]): void {
  printTable(
    ['ID', 'PREFIX', 'NAME', 'LAST USED', 'STATUS'],
    items.map((t) => [t.id, `${t.prefix}…`, t.name, ago(t.last_used_at), credentialStatus(t)]),
  );
}
