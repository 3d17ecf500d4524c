// Agent configuration: environment first, flags override; validated once with zod, frozen.
import { hostname } from 'node:os';
import { z } from 'zod';
import { ConfigError, deepFreeze, envInt, envString, parseConfig } from '../shared/env.ts';

const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

const agentEnvSchema = z.object({
  IK_HUB_URL: envString.pipe(
    z.url({ protocol: /^(https?|wss?)$/, error: 'expected the hub URL, e.g. http://hub.example:8080' }).optional(),
  ),
  IK_TOKEN: envString.refine((v) => v === undefined || /^ik_(join|agent)_[A-Za-z0-9]+$/.test(v), {
    message: 'expected a join token (ik_join_…)',
  }),
  IK_AGENT_NAME: envString.refine((v) => v === undefined || NAME_RE.test(v), {
    message: 'a name is 1–63 letters, digits, ".", "_" or "-", starting with a letter or digit',
  }),
  IK_DATA_DIR: envString,
  IK_NVIDIA_SMI: envString,
  IK_NVIDIA_SMI_TIMEOUT_MS: envInt({ min: 100, max: 600_000 }),
  IK_RUNTIME: envString.pipe(z.enum(['docker', 'process']).optional()),
  IK_HUB_CA: envString,
  IK_LOG_LEVEL: envString.pipe(z.enum(levels).optional()),
});

export interface AgentFlags {
  hub?: string;
  token?: string;
  name?: string;
  dataDir?: string;
  logLevel?: string;
}

export interface AgentConfig {
  hubUrl: string;
  token: string | undefined;
  name: string;
  dataDir: string;
  nvidiaSmi: string;
  nvidiaSmiTimeoutMs: number;
  runtime: 'docker' | 'process' | undefined;
  hubCa: string | undefined;
  logLevel: (typeof levels)[number];
}

export function loadAgentConfig(env: NodeJS.ProcessEnv, flags: AgentFlags = {}): Readonly<AgentConfig> {
  const source: Record<string, string | undefined> = { ...env };
  const flagVars: Record<string, string | undefined> = {
    IK_HUB_URL: flags.hub,
    IK_TOKEN: flags.token,
    IK_AGENT_NAME: flags.name,
    IK_DATA_DIR: flags.dataDir,
    IK_LOG_LEVEL: flags.logLevel,
  };
  for (const [k, v] of Object.entries(flagVars)) if (v !== undefined) source[k] = v;
  const e = parseConfig(agentEnvSchema, source, 'agent');
  if (!e.IK_HUB_URL) throw new ConfigError('invalid agent configuration: the hub URL is missing: pass --hub http://HUB:8080 (or set IK_HUB_URL)');
  return deepFreeze({
    hubUrl: e.IK_HUB_URL.replace(/\/+$/, ''),
    token: e.IK_TOKEN,
    name: e.IK_AGENT_NAME ?? defaultName(),
    dataDir: e.IK_DATA_DIR ?? './.ik',
    nvidiaSmi: e.IK_NVIDIA_SMI ?? 'nvidia-smi',
    nvidiaSmiTimeoutMs: e.IK_NVIDIA_SMI_TIMEOUT_MS ?? 10_000,
    runtime: e.IK_RUNTIME,
    hubCa: e.IK_HUB_CA,
    logLevel: e.IK_LOG_LEVEL ?? 'info',
  });
}

/** The hostname, made into a valid worker name (a hostname may carry characters a name may not). */
function defaultName(): string {
  const cleaned = hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63);
  return cleaned || 'worker';
}
