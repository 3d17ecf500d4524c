// How the CLI reaches the hub: IK_HUB_URL / IK_TOKEN win, else $IK_DATA_DIR/cli.json written by `ik up` / `ik hub`.
import { join } from 'node:path';
import { z } from 'zod';
import { readFileIfExists } from '../../shared/files.ts';

export class CliError extends Error {
  constructor(
    message: string,
    readonly details: Array<{ path: string; message: string }> = [],
  ) {
    super(message);
    this.name = 'CliError';
  }
}

const cliFileSchema = z.object({ hub_url: z.string(), token: z.string() });

export interface HubTarget {
  url: string;
  token: string;
}

export function resolveHub(env: NodeJS.ProcessEnv): HubTarget {
  const file = join(env.IK_DATA_DIR || './.ik', 'cli.json');
  let fromFile: z.infer<typeof cliFileSchema> | undefined;
  const text = readFileIfExists(file);
  if (text !== undefined) {
    try {
      fromFile = cliFileSchema.parse(JSON.parse(text));
    } catch {
      throw new CliError(`${file} is damaged: delete it and restart the hub, or set IK_HUB_URL and IK_TOKEN`);
    }
  }
  const url = env.IK_HUB_URL || fromFile?.hub_url;
  const token = env.IK_TOKEN || fromFile?.token;
  if (!url) throw new CliError(`no hub to talk to: set IK_HUB_URL (and IK_TOKEN), or run this where \`ik up\` wrote ${file}`);
  if (!token) throw new CliError('no token: set IK_TOKEN to a control token (ik_sdk_…)');
  return { url: url.replace(/\/+$/, ''), token };
}

const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.array(z.object({ path: z.string(), message: z.string() })).optional() }),
});

/** One admin API call; a hub error becomes a CliError carrying its message and details. */
export async function callHub(target: HubTarget, method: string, path: string, body?: unknown): Promise<unknown> {
  return (await callHubWithStatus(target, method, path, body)).body;
}

export async function callHubWithStatus(target: HubTarget, method: string, path: string, body?: unknown): Promise<{ status: number; headers: Headers; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(`${target.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${target.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
    throw new CliError(`cannot reach the hub at ${target.url}: ${cause}`);
  }
  const text = await res.text();
  let json: unknown = undefined;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      throw new CliError(`the hub answered ${res.status} with something that is not JSON`);
    }
  }
  if (!res.ok) {
    const parsed = errorSchema.safeParse(json);
    if (parsed.success) throw new CliError(parsed.data.error.message, parsed.data.error.details ?? []);
    throw new CliError(`the hub answered ${res.status} ${res.statusText}`);
  }
  return { status: res.status, headers: res.headers, body: json };
}

/** A streamed GET (logs with --follow): chunks go to `onChunk` as they arrive, until the hub ends the answer. */
export async function streamHub(target: HubTarget, path: string, onChunk: (text: string) => void): Promise<void> {
  let res: Response;
  try {
    res = await fetch(`${target.url}${path}`, { headers: { authorization: `Bearer ${target.token}` } });
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
    throw new CliError(`cannot reach the hub at ${target.url}: ${cause}`);
  }
  if (!res.ok || !res.body) {
    const parsed = errorSchema.safeParse(await res.json().catch(() => null));
    throw new CliError(parsed.success ? parsed.data.error.message : `the hub answered ${res.status} ${res.statusText}`);
  }
  const decoder = new TextDecoder();
  for await (const chunk of res.body) onChunk(decoder.decode(chunk, { stream: true }));
}
