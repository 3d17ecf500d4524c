// The WorkloadSpec: one zod schema from the wire form (snake_case) to the normalized spec, its parser and its drift diff.
import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { detailsFromIssues, type ErrorDetail } from '../errors.ts';
import { backends, backendServes, backendsFor, backendTaskTypes, checkLaunchCommand, exampleCommand, taskTypes } from './backends.ts';
import {
  autoscalingConfigOutputSchema,
  autoscalingConfigSchema,
  executionPolicies,
  fixedConfigOutputSchema,
  fixedConfigSchema,
  isRecord,
  normalizeAutoscalingConfig,
  normalizeScheduledConfig,
  omittedAutoscalingConfig,
  policyConfigKeys,
  scheduledConfigOutputSchema,
  scheduledConfigSchema,
  workerIdSchema,
  workersKeys,
} from './policies.ts';
import { describeValue, unknownKeyMessage, wireErrorMap } from './wire-errors.ts';

export { asyncOnlyTaskTypes, backends, backendTaskTypes, taskTypes, type Backend, type TaskType } from './backends.ts';
export { executionPolicies, type ExecutionPolicy } from './policies.ts';

/** `value` when it is one of `list`, else undefined (a type guard without a cast). */
function oneOf<T extends string>(list: readonly T[], value: unknown): T | undefined {
  return list.find((item) => item === value);
}

export const slugPattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const slugRule = 'a slug is 1 to 63 lowercase letters a-z, digits and "-", starting and ending with a letter or digit';

function slugProblem(input: unknown): string {
  if (typeof input !== 'string') return slugRule;
  if (input.length > 63) return `is ${input.length} characters long, at most 63: ${slugRule}`;
  if (/[^\x20-\x7e]/.test(input)) return `${JSON.stringify(input)} has characters outside a-z, 0-9 and "-": ${slugRule}`;
  if (slugPattern.test(input.toLowerCase())) return `must be lowercase: use "${input.toLowerCase()}"`;
  if (/^-|-$/.test(input)) return `${JSON.stringify(input)} must not start or end with "-": ${slugRule}`;
  return `${JSON.stringify(input)} is not a slug: ${slugRule}`;
}

export const slugSchema = z.string().min(1).regex(slugPattern, { error: (iss) => slugProblem(iss.input) });

/** Set by the agent from the replica's placement; a spec that sets them would run on GPUs it was not given. */
export const reservedEnvNames = ['CUDA_VISIBLE_DEVICES', 'NVIDIA_VISIBLE_DEVICES'] as const;
const envLimits = { names: 128, nameLength: 128, valueLength: 32 * 1024, totalBytes: 64 * 1024 };

const envSchema = z
  .record(
    z
      .string()
      .max(envLimits.nameLength)
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
        error: (iss) => `${describeValue(iss.input)} is not an environment variable name: letters, digits and _, not starting with a digit`,
      }),
    z.string().max(envLimits.valueLength),
  )
  .superRefine((env, ctx) => {
    if (!isRecord(env)) return;
    const names = Object.keys(env);
    if (names.length > envLimits.names) ctx.addIssue({ code: 'custom', message: `has ${names.length} variables, at most ${envLimits.names}` });
    let total = 0;
    for (const name of names) {
      if ((reservedEnvNames as readonly string[]).includes(name))
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: `${name} is set by the agent from the GPUs the replica is placed on: remove it (pin GPUs with gpu_pool or a worker with worker_id)`,
        });
      const value = env[name];
      total += name.length + (typeof value === 'string' ? Buffer.byteLength(value) : 0);
    }
    if (total > envLimits.totalBytes) ctx.addIssue({ code: 'custom', message: `holds ${total} bytes, at most ${envLimits.totalBytes}` });
  }, { when: () => true })
  .describe('variables set on the backend; never echoed back in clear');

function cidrProblem(input: unknown): string | null {
  if (typeof input !== 'string') return null;
  const [address = '', prefix, extra] = input.split('/');
  const v4 = isIPv4(address);
  const v6 = !v4 && !address.includes('%') && isIPv6(address);
  if (!v4 && !v6) return `${describeValue(input)} is not a CIDR: an IPv4 or IPv6 address, "/", and a prefix length (10.0.0.0/8, fd00::/8)`;
  if (prefix === undefined) return `${describeValue(input)} needs a prefix length, e.g. "${address}/${v4 ? 32 : 128}"`;
  const bits = v4 ? 32 : 128;
  if (extra !== undefined || !/^\d{1,3}$/.test(prefix) || Number(prefix) > bits) return `${describeValue(input)} has a bad prefix length: 0 to ${bits}`;
  return null;
}

const cidrSchema = z.string().superRefine((cidr, ctx) => {
  const problem = cidrProblem(cidr);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const commonShape = {
  name: z.string().trim().min(1).max(200).optional().describe('display name (default: the slug)'),
  slug: slugSchema.describe('unique in the project; names the endpoint'),
  model: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[^\s\x00-\x1f]+$/, { error: () => 'must not contain spaces or control characters' })
    .describe('the model: a Hugging Face id or an Ollama name'),
  backend: z.enum(backends),
  task_type: z.enum(taskTypes).default('text2text'),
  command: z.string().max(8192).optional().describe('the launch line; vllm, vllm-omni: required; sglang: optional; ollama: none'),
  vllm_version: z
    .string()
    .regex(/^\d+\.\d+(\.\d+){0,2}([.-]?[a-z]+\d*)*$/, {
      error: (iss) =>
        typeof iss.input === 'string' && /^v\d/.test(iss.input)
          ? `write "${iss.input.slice(1)}", without the "v" (the image tag adds it)`
          : `${describeValue(iss.input)} is not a vLLM version such as "0.6.3"`,
    })
    .optional()
    .describe('pins the vLLM image (vllm, vllm-omni); default latest'),
  worker_id: workerIdSchema.optional().describe('pins every replica to this worker'),
  env: envSchema.optional(),
  allowed_cidrs: z.array(cidrSchema).min(1).max(256).optional().describe('client addresses allowed on the data plane; omitted: all'),
};

const fixedSpecSchema = z.strictObject({
  ...commonShape,
  execution_policy: z.literal('fixed').default('fixed'),
  execution_policy_config: fixedConfigSchema.prefault({}),
});
const scheduledSpecSchema = z.strictObject({
  ...commonShape,
  execution_policy: z.literal('scheduled'),
  execution_policy_config: scheduledConfigSchema,
});
const autoscalingSpecSchema = z.strictObject({
  ...commonShape,
  execution_policy: z.literal('autoscaling'),
  execution_policy_config: autoscalingConfigSchema.prefault(omittedAutoscalingConfig),
});
/** The common fields alone, to report their problems when execution_policy itself is wrong. */
const commonFieldsSchema = z.strictObject({ ...commonShape, execution_policy: z.unknown().optional(), execution_policy_config: z.unknown().optional() });
const topLevelKeys = Object.keys(commonFieldsSchema.shape);

/** Rules across fields: backend × task type, the command, the version pin, a pinned worker. Runs on partly invalid specs too. */
function checkAcrossFields(spec: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  const backend = oneOf(backends, spec.backend);
  const taskType = oneOf(taskTypes, spec.task_type ?? 'text2text');
  const model = commonShape.model.safeParse(spec.model).data;
  if (backend && taskType && !backendServes(backend, taskType)) {
    const serves = backendTaskTypes[backend].join(', ');
    issue('task_type', `backend ${backend} does not serve ${taskType} (it serves ${serves}); ${taskType} needs ${backendsFor(taskType).join(' or ')}`);
  }
  if (backend === 'ollama') {
    if (spec.command !== undefined) issue('command', 'ollama takes no command: the agent starts the server and pulls the model by name');
  } else if (backend) {
    if (spec.command === undefined) {
      const example = `${exampleCommand(backend, model ?? '<model>')} --max-model-len 8192`;
      if (backend !== 'sglang') issue('command', `is required for backend ${backend}: the launch line, e.g. "${example}"`);
    } else if (typeof spec.command === 'string') {
      for (const problem of checkLaunchCommand(backend, spec.command, model)) issue('command', problem);
    }
  }
  if (spec.vllm_version !== undefined && backend && backend !== 'vllm' && backend !== 'vllm-omni')
    issue('vllm_version', `pins the vLLM image, so it applies to backends vllm and vllm-omni only (backend is ${backend})`);
  const config = spec.execution_policy === 'autoscaling' && isRecord(spec.execution_policy_config) ? spec.execution_policy_config : undefined;
  const ids = isRecord(config?.workers) && config.workers.source === 'private' ? config.workers.private_worker_ids : undefined;
  if (typeof spec.worker_id === 'string' && Array.isArray(ids) && !ids.includes(spec.worker_id))
    issue('worker_id', `${spec.worker_id} is not in execution_policy_config.workers.private_worker_ids: a pinned worker must be one of them`);
}

const workloadSpecInputSchema = z
  .discriminatedUnion('execution_policy', [fixedSpecSchema, scheduledSpecSchema, autoscalingSpecSchema], {
    // Its issues: no object at all (invalid_type), or no branch for execution_policy (invalid_union).
    error: (iss) =>
      isRecord(iss.input)
        ? `must be one of ${executionPolicies.map((p) => `"${p}"`).join(', ')} (default "fixed"), got ${describeValue(iss.input.execution_policy)}`
        : `a workload spec is a JSON object, not ${describeValue(iss.input)}`,
  })
  .superRefine((spec, ctx) => {
    if (!isRecord(spec)) return;
    if (spec.execution_policy !== undefined && !oneOf(executionPolicies, spec.execution_policy)) {
      // No branch parsed the spec: validate what does not depend on the policy, so every problem shows at once.
      for (const iss of commonFieldsSchema.safeParse(spec, { error: wireErrorMap }).error?.issues ?? []) ctx.addIssue({ ...iss });
    }
    checkAcrossFields(spec, ctx);
  }, { when: () => true });

const commonOutputShape = {
  name: z.string(),
  slug: z.string(),
  model: z.string(),
  backend: z.enum(backends),
  task_type: z.enum(taskTypes),
  command: z.string().optional(),
  vllm_version: z.string().optional(),
  worker_id: z.string().optional(),
  env: z.record(z.string(), z.string()).optional(),
  allowed_cidrs: z.array(z.string()).optional(),
};

/** The normalized spec: every default applied (what the hub stores and shows back, env masked by the API). */
export const normalizedWorkloadSpecSchema = z.discriminatedUnion('execution_policy', [
  z.object({ ...commonOutputShape, execution_policy: z.literal('fixed'), execution_policy_config: fixedConfigOutputSchema }),
  z.object({ ...commonOutputShape, execution_policy: z.literal('scheduled'), execution_policy_config: scheduledConfigOutputSchema }),
  z.object({ ...commonOutputShape, execution_policy: z.literal('autoscaling'), execution_policy_config: autoscalingConfigOutputSchema }),
]);

type ParsedInput = z.output<typeof workloadSpecInputSchema>;

function normalizeSpec(spec: ParsedInput): z.input<typeof normalizedWorkloadSpecSchema> {
  const name = spec.name ?? spec.slug;
  switch (spec.execution_policy) {
    case 'fixed':
      return { ...spec, name };
    case 'scheduled':
      return { ...spec, name, execution_policy_config: normalizeScheduledConfig(spec.execution_policy_config) };
    case 'autoscaling':
      return { ...spec, name, execution_policy_config: normalizeAutoscalingConfig(spec.execution_policy_config) };
  }
}

/** Input: the wire JSON. Output: the normalized spec. Use `parseWorkloadSpec` for error details in the wire's terms. */
export const workloadSpecSchema = workloadSpecInputSchema.transform(normalizeSpec).pipe(normalizedWorkloadSpecSchema);

export type WorkloadSpec = z.output<typeof workloadSpecSchema>;
export type WorkloadSpecInput = z.input<typeof workloadSpecSchema>;

/** Keys known in the object at `path` (dotted), and where misplaced keys belong, for unknown-key messages. */
function keysAt(path: string, input: unknown): { known: readonly string[]; elsewhere: Record<string, string> } {
  const root = isRecord(input) ? input : {};
  const policy = oneOf(executionPolicies, root.execution_policy) ?? 'fixed';
  if (path === '') {
    const elsewhere: Record<string, string> = {};
    for (const p of executionPolicies)
      for (const key of policyConfigKeys(p).known) elsewhere[key] ??= `${key} goes in execution_policy_config (of the ${p} policy)`;
    return { known: topLevelKeys, elsewhere };
  }
  if (path === 'execution_policy_config') return policyConfigKeys(policy);
  if (path.endsWith('workers.cloud_pool')) return { known: workersKeys.cloud_pool, elsewhere: {} };
  if (path.endsWith('workers')) {
    const config = isRecord(root.execution_policy_config) ? root.execution_policy_config : {};
    const known = isRecord(config.workers) && config.workers.source === 'private' ? workersKeys.private : workersKeys.cloud;
    const elsewhere: Record<string, string> = {
      private_worker_ids: 'it goes with source "private"',
      cloud_pool: 'it goes with source "cloud"',
    };
    for (const key of workersKeys.cloud_pool) elsewhere[key] ??= 'it goes in cloud_pool';
    return { known, elsewhere };
  }
  return { known: [], elsewhere: {} };
}

export type ParseWorkloadSpecResult = { ok: true; spec: WorkloadSpec } | { ok: false; details: ErrorDetail[] };

/** Validates and normalizes a spec; on failure, every problem at once, each with its dotted path and the rule in words. */
export function parseWorkloadSpec(input: unknown): ParseWorkloadSpecResult {
  const result = workloadSpecSchema.safeParse(input, { error: wireErrorMap });
  if (result.success) return { ok: true, spec: result.data };
  const details: ErrorDetail[] = [];
  const seen = new Set<string>();
  for (const iss of result.error.issues) {
    const [detail] = detailsFromIssues([iss]);
    if (!detail) continue;
    const expanded =
      iss.code === 'unrecognized_keys'
        ? iss.keys.map((key) => {
            const { known, elsewhere } = keysAt(detail.path, input);
            return { path: detail.path ? `${detail.path}.${key}` : key, message: unknownKeyMessage(key, known, elsewhere) };
          })
        : [detail];
    for (const d of expanded) {
      const id = `${d.path}\u0000${d.message}`;
      if (!seen.has(id)) {
        seen.add(id);
        details.push(d);
      }
    }
  }
  return { ok: false, details };
}

export interface SpecDifference {
  path: string;
  stored: unknown;
  given: unknown;
}

const masked = '********';

function flatten(value: unknown, path: string, out: Map<string, unknown>): void {
  if (Array.isArray(value)) value.forEach((item, i) => flatten(item, `${path}[${i}]`, out));
  else if (isRecord(value)) for (const [key, item] of Object.entries(value)) flatten(item, path ? `${path}.${key}` : key, out);
  else out.set(path, value);
}

/** The leaf-level differences between two normalized specs, dotted paths in order; env values are masked, never shown. */
export function diffWorkloadSpecs(stored: WorkloadSpec, given: WorkloadSpec): SpecDifference[] {
  const a = new Map<string, unknown>();
  const b = new Map<string, unknown>();
  flatten(stored, '', a);
  flatten(given, '', b);
  const out: SpecDifference[] = [];
  for (const path of new Set([...a.keys(), ...b.keys()])) {
    const [x, y] = [a.get(path), b.get(path)];
    if (Object.is(x, y)) continue;
    const secret = path.startsWith('env.');
    out.push({ path, stored: secret && x !== undefined ? masked : x, given: secret && y !== undefined ? masked : y });
  }
  return out;
}
