// `ik join-token create|ls|revoke`: tokens that let GPU boxes join the shared pool or a project's private workers.
import { parseCommandArgs, intFlag, UsageError } from '../../../shared/cli-args.ts';
import { joinTokenCreatedSchema, joinTokenViewSchema, listOf } from '../../../shared/api.ts';
import { callHub, resolveHub } from '../client.ts';
import { splitSubcommand } from '../project.ts';
import { ago, printJson, printTable } from '../output.ts';

export const JOIN_TOKEN_USAGE = `usage: ik join-token create [--project P] [--label KEY=VALUE]... [--expires-in SECONDS] [--name NAME]
       ik join-token ls
       ik join-token revoke ID
Every command takes --json.`;

export async function runJoinTokenCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, rest] = splitSubcommand(argv);
  const { values, positionals } = parseCommandArgs(`ik join-token ${sub}`, rest, {
    json: { type: 'boolean' },
    project: { type: 'string' },
    label: { type: 'string', multiple: true },
    'expires-in': { type: 'string' },
    name: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, 1);
  if (values.help) return (process.stdout.write(`${JOIN_TOKEN_USAGE}\n`), 0);
  const hub = resolveHub(env);
  const json = Boolean(values.json);

  switch (sub) {
    case 'create': {
      const labels: Record<string, string> = {};
      for (const l of values.label ?? []) {
        const eq = l.indexOf('=');
        if (eq <= 0) throw new UsageError(`--label expects KEY=VALUE, got "${l}"`);
        labels[l.slice(0, eq)] = l.slice(eq + 1);
      }
      const body = {
        ...(values.project ? { project: values.project } : {}),
        ...(values.name ? { name: values.name } : {}),
        ...(Object.keys(labels).length ? { labels } : {}),
        ...(values['expires-in'] ? { expires_in_s: intFlag('expires-in', values['expires-in'], 1) } : {}),
      };
      const created = joinTokenCreatedSchema.parse(await callHub(hub, 'POST', '/api/v1/join-tokens', body));
      if (json) return (printJson(created), 0);
      process.stdout.write(
        `join token ${created.id} for ${created.project ? `project ${created.project}` : 'the shared pool'} (shown once):\n  ${created.secret}\n` +
          `install an agent on a GPU box (as root):\n  ${created.install_command}\n`,
      );
      return 0;
    }
    case 'ls':
    case 'list': {
      const list = listOf(joinTokenViewSchema).parse(await callHub(hub, 'GET', '/api/v1/join-tokens'));
      if (json) return (printJson(list), 0);
      printTable(
        ['ID', 'PREFIX', 'NAME', 'PROJECT', 'USES', 'LAST USED', 'STATUS'],
        list.items.map((t) => [
          t.id,
          `${t.prefix}…`,
          t.name,
          t.project ?? '(shared pool)',
          String(t.uses),
          ago(t.last_used_at),
          t.revoked_at ? 'revoked' : t.expires_at && Date.parse(t.expires_at) <= Date.now() ? 'expired' : 'active',
        ]),
      );
      return 0;
    }
    case 'revoke':
    case 'rm': {
      const id = positionals[0];
      if (!id) throw new UsageError('`ik join-token revoke` needs a token id (see `ik join-token ls`)');
      const revoked = joinTokenViewSchema.parse(await callHub(hub, 'DELETE', `/api/v1/join-tokens/${encodeURIComponent(id)}`));
      if (json) return (printJson(revoked), 0);
      process.stdout.write(`join token ${revoked.id} (${revoked.prefix}…) revoked\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command \`ik join-token ${sub}\`\n${JOIN_TOKEN_USAGE}`);
  }
}
