// `ik keys create SLUG|ls [SLUG]|revoke ID`: data keys (ik_live_…), each for one workload's endpoint.
import { z } from 'zod';
import { parseCommandArgs, intFlag, UsageError } from '../../../shared/cli-args.ts';
import { dataKeyCreatedSchema, dataKeyViewSchema, listOf, type DataKeyView } from '../../../shared/api.ts';
import { callHub, CliError, resolveHub, type HubTarget } from '../client.ts';
import { ago, printJson, printTable } from '../output.ts';
import { projectOf, projectPath, splitSubcommand } from '../project.ts';

export const KEYS_USAGE = `usage: ik keys create SLUG [--name NAME] [--rate-limit PER_MINUTE] [--expires-in SECONDS]
       ik keys ls [SLUG]             the keys of one workload, or of every workload in the project
       ik keys revoke ID
Options: --project P (default: IK_PROJECT or "default"), --json.`;

export function credentialStatus(c: { revoked_at: string | null; expires_at: string | null }): string {
  if (c.revoked_at) return 'revoked';
  if (c.expires_at && Date.parse(c.expires_at) <= Date.now()) return 'expired';
  return 'active';
}

const slugsSchema = z.object({ items: z.array(z.looseObject({ slug: z.string() })) });

export async function runKeysCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, rest] = splitSubcommand(argv);
  const { values, positionals } = parseCommandArgs(`ik keys ${sub}`, rest, {
    name: { type: 'string' },
    'rate-limit': { type: 'string' },
    'expires-in': { type: 'string' },
    project: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, 1);
  if (values.help) return (process.stdout.write(`${KEYS_USAGE}\n`), 0);
  const hub = resolveHub(env);
  const base = `${projectPath(projectOf(values.project, env))}/workloads`;
  const keysOf = (slug: string) => `${base}/${encodeURIComponent(slug)}/keys`;

  switch (sub) {
    case 'create': {
      const slug = positionals[0];
      if (!slug) throw new UsageError('`ik keys create` needs the workload slug, e.g. `ik keys create support-bot`');
      const body = {
        ...(values.name ? { name: values.name } : {}),
        ...(values['rate-limit'] ? { rate_limit_per_minute: intFlag('rate-limit', values['rate-limit'], 1) } : {}),
        ...(values['expires-in'] ? { expires_in_s: intFlag('expires-in', values['expires-in'], 1) } : {}),
      };
      const key = dataKeyCreatedSchema.parse(await callHub(hub, 'POST', keysOf(slug), body));
      if (values.json) return (printJson(key), 0);
      process.stdout.write(`data key ${key.id} for ${key.project}/${key.workload} (shown once):\n  ${key.secret}\n`);
      return 0;
    }
    case 'ls':
    case 'list': {
      const keys = await listKeys(hub, base, positionals[0]);
      if (values.json) return (printJson({ items: keys, next: null }), 0);
      printTable(
        ['ID', 'PREFIX', 'WORKLOAD', 'NAME', 'RATE LIMIT', 'LAST USED', 'STATUS'],
        keys.map((k) => [k.id, `${k.prefix}…`, k.workload, k.name, k.rate_limit_per_minute ? `${k.rate_limit_per_minute}/min` : '-', ago(k.last_used_at), credentialStatus(k)]),
      );
      return 0;
    }
    case 'revoke':
    case 'rm': {
      const id = positionals[0];
      if (!id) throw new UsageError('`ik keys revoke` needs a key id (see `ik keys ls`)');
      const key = (await listKeys(hub, base)).find((k) => k.id === id);
      if (!key) throw new CliError(`no key ${id} in this project: see \`ik keys ls\``);
      const revoked = dataKeyViewSchema.parse(await callHub(hub, 'DELETE', `${keysOf(key.workload)}/${encodeURIComponent(id)}`));
      if (values.json) return (printJson(revoked), 0);
      process.stdout.write(`data key ${revoked.id} (${revoked.prefix}…) revoked\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command \`ik keys ${sub}\`\n${KEYS_USAGE}`);
  }
}

async function listKeys(hub: HubTarget, base: string, slug?: string): Promise<DataKeyView[]> {
  const slugs = slug ? [slug] : slugsSchema.parse(await callHub(hub, 'GET', base)).items.map((w) => w.slug);
  const lists = await Promise.all(slugs.map(async (s) => listOf(dataKeyViewSchema).parse(await callHub(hub, 'GET', `${base}/${encodeURIComponent(s)}/keys`)).items));
  return lists.flat();
}
