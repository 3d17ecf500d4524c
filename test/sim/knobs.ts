// The simulator's environment knobs (IK_SIM_*, see main.ts), parsed and checked once at start, then frozen.

export class KnobError extends Error {}

export interface FailSpec {
  /** Exit 1 this many seconds after start. */
  crashAfterS: number | null;
  /** Fraction of inference requests answered 500, chosen by a seeded sequence over the request count. */
  http500Rate: number;
  /** Accept connections and never answer. */
  hang: boolean;
  /** Exit 1 at once with a message. */
  exitAtStart: boolean;
  /** Never report healthy. */
  neverReady: boolean;
}

export interface Knobs {
  startupMs: number;
  ttftMs: number;
  itlMs: number;
  /** null: the CLI flag or the backend's default decides. */
  maxNumSeqs: number | null;
  prefixCache: boolean;
  fail: FailSpec;
  ollamaPullMs: number;
  ollamaModels: string[];
  replicaId: string;
  accessLog: boolean;
  seed: number;
  version: string | null;
  /** vLLM's own switch for /v1/load_lora_adapter and /v1/unload_lora_adapter (VLLM_ALLOW_RUNTIME_LORA_UPDATING). */
  vllmRuntimeLora: boolean;
}

type Env = Record<string, string | undefined>;

export function parseKnobs(env: Env): Knobs {
  return Object.freeze({
    startupMs: num(env, 'IK_SIM_STARTUP_MS', 0),
    ttftMs: num(env, 'IK_SIM_TTFT_MS', 0),
    itlMs: num(env, 'IK_SIM_ITL_MS', 0),
    maxNumSeqs: env.IK_SIM_MAX_NUM_SEQS ? int(env, 'IK_SIM_MAX_NUM_SEQS', 1) : null,
    prefixCache: bool(env, 'IK_SIM_PREFIX_CACHE', true),
    fail: Object.freeze(parseFail(env.IK_SIM_FAIL ?? '')),
    ollamaPullMs: num(env, 'IK_SIM_OLLAMA_PULL_MS', 300),
    ollamaModels: (env.IK_SIM_OLLAMA_MODELS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    replicaId: env.IK_REPLICA_ID || 'sim',
    accessLog: bool(env, 'IK_SIM_ACCESS_LOG', true),
    seed: env.IK_SIM_SEED ? int(env, 'IK_SIM_SEED', 0) : 42,
    version: env.IK_SIM_VERSION || null,
    // vLLM reads it as: strip().lower() in ("1", "true").
    vllmRuntimeLora: ['1', 'true'].includes((env.VLLM_ALLOW_RUNTIME_LORA_UPDATING ?? '').trim().toLowerCase()),
  });
}

/** `crash-after=N,http500=0.2,hang,exit-at-start,never-ready` (any subset, comma separated). */
export function parseFail(spec: string): FailSpec {
  const fail: FailSpec = { crashAfterS: null, http500Rate: 0, hang: false, exitAtStart: false, neverReady: false };
  for (const raw of spec.split(',')) {
    const item = raw.trim();
    if (!item) continue;
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? null : item.slice(eq + 1);
    switch (key) {
      case 'crash-after':
        fail.crashAfterS = numberIn(value, 0, Infinity, item);
        break;
      case 'http500':
        fail.http500Rate = numberIn(value, 0, 1, item);
        break;
      case 'hang':
        fail.hang = true;
        break;
      case 'exit-at-start':
        fail.exitAtStart = true;
        break;
      case 'never-ready':
        fail.neverReady = true;
        break;
      default:
        throw new KnobError(
          `IK_SIM_FAIL: unknown item '${item}' (known: crash-after=SECONDS, http500=RATE, hang, exit-at-start, never-ready)`,
        );
    }
  }
  return fail;
}

function numberIn(value: string | null, min: number, max: number, item: string): number {
  const n = value === null || value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new KnobError(`IK_SIM_FAIL: '${item}' needs a number between ${min} and ${max}`);
  }
  return n;
}

function num(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new KnobError(`${name} must be a number of milliseconds ≥ 0, got '${raw}'`);
  return n;
}

function int(env: Env, name: string, min: number): number {
  const raw = env[name] ?? '';
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new KnobError(`${name} must be an integer ≥ ${min}, got '${raw}'`);
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new KnobError(`${name} must be true or false (1/0, on/off), got '${raw}'`);
}
