// Agent configuration: environment first, flags override; validated once with zod, frozen.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, deepFreeze, envInt, envString, parseConfig } from '../shared/env.ts';
import { gpuModes, type GpuMode } from '../shared/inventory.ts';
import { backends, type Backend } from '../shared/spec/backends.ts';

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
  IK_DOCKER_GPU_MODE: envString.pipe(z.enum(gpuModes).optional()),
  IK_IMAGE_MAP: jsonMap('IK_IMAGE_MAP', '{"vllm":"mirror.example/vllm-openai:{version}"}'),
  IK_PROCESS_MAP: jsonMap('IK_PROCESS_MAP', '{"vllm":"/opt/venv/bin/vllm"}'),
  IK_REPLICA_START_TIMEOUT_S: envInt({ min: 1, max: 86_400 }),
  IK_HF_CACHE_DIR: envString,
});

/** A JSON object mapping backend names to strings (IK_IMAGE_MAP, IK_PROCESS_MAP). */
function jsonMap(name: string, example: string) {
  return envString.transform((v, ctx) => {
    if (v === undefined) return {};
    let raw: unknown;
    try {
      raw = JSON.parse(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: `${name} is not valid JSON; expected e.g. ${example}` });
      return z.NEVER;
    }
    const parsed = z.partialRecord(z.enum(backends), z.string().min(1).max(512)).safeParse(raw);
    if (!parsed.success) {
      ctx.addIssue({ code: 'custom', message: `${name} maps backend names (${backends.join(', ')}) to strings, e.g. ${example}` });
      return z.NEVER;
    }
    return parsed.data as Partial<Record<Backend, string>>;
  });
}

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
  /** IK_DOCKER_GPU_MODE; undefined: detected from the engine. */
  dockerGpuMode: GpuMode | undefined;
  imageMap: Partial<Record<Backend, string>>;
  processMap: Partial<Record<Backend, string>>;
  /** How long a replica may take to become ready before it counts as failed. */
  replicaStartTimeoutS: number;
  /** The Hugging Face cache shared by replicas on this box (a volume for containers). */
  hfCacheDir: string;
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
    dockerGpuMode: e.IK_DOCKER_GPU_MODE,
    imageMap: e.IK_IMAGE_MAP,
    processMap: e.IK_PROCESS_MAP,
    replicaStartTimeoutS: e.IK_REPLICA_START_TIMEOUT_S ?? 1800,
    hfCacheDir: e.IK_HF_CACHE_DIR ?? join(e.IK_DATA_DIR ?? './.ik', 'hf-cache'),
  });
}

/** The hostname, made into a valid worker name (a hostname may carry characters a name may not). */
function defaultName(): string {
  const cleaned = hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63);
  return cleaned || 'worker';
}
