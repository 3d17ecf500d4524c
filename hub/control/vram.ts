// The VRAM a workload's replica needs per GPU, from its model id and launch flags (DESIGN §7.2), and what its engine claims.
import { CommandLineError, parseCommandFlags, tokenizeCommand } from '../../shared/spec/command-line.ts';
import type { Backend } from '../../shared/spec/backends.ts';
import type { WorkloadSpec } from '../../shared/spec/workload-spec.ts';

/** What the engine takes on each GPU: a share of the GPU's total memory (vLLM, SGLang), or the estimate itself (Ollama). */
export type VramClaim = { kind: 'fraction'; fraction: number } | { kind: 'estimate' };

export interface VramEstimate {
  /** Parameters in billions, from the model id; null when the id carries no size. */
  params_b: number | null;
  bytes_per_param: number;
  /** Weights alone, in GiB; null when the size is unknown. */
  weights_gib: number | null;
  /** (weights × 1.2 + 2 GiB) ÷ (tensor-parallel × pipeline-parallel); null = unknown. */
  need_gib_per_gpu: number | null;
  /** GPUs one replica uses: tp × pp × dp. */
  gpus: number;
  claim: VramClaim;
  known: boolean;
  notes: string[];
}

/** The engine's default share of GPU memory, when the command does not set it. */
export const defaultVllmGpuMemoryUtilization = 0.9;

/**
 * SGLang's default --mem-fraction-static by tensor-parallel size (python/sglang/srt/server_args.py in sgl-project/sglang:
 * 0.88 at tp 1, 0.87 at tp ≥ 2, 0.85 at ≥ 4, 0.81 at ≥ 8, 0.79 at ≥ 16). Newer releases derive it from the GPU's memory
 * minus a reserve and fall back to 0.88 when that is unknown; the table is the documented, GPU-independent form.
 */
export function defaultSglangMemFraction(tp: number): number {
  if (tp >= 16) return 0.79;
  if (tp >= 8) return 0.81;
  if (tp >= 4) return 0.85;
  if (tp >= 2) return 0.87;
  return 0.88;
}

const overheadFactor = 1.2;
const overheadGib = 2;
const gib = 2 ** 30;

/** Launch flags by meaning, per engine family (the first one present wins). */
const flagNames = {
  vllm: {
    tp: ['--tensor-parallel-size', '-tp'],
    pp: ['--pipeline-parallel-size', '-pp'],
    dp: ['--data-parallel-size', '-dp'],
    fraction: ['--gpu-memory-utilization'],
    quantization: ['--quantization', '-q'],
  },
  sglang: {
    tp: ['--tp-size', '--tp', '--tensor-parallel-size'],
    pp: ['--pp-size', '--pp', '--pipeline-parallel-size'],
    dp: ['--dp-size', '--dp', '--data-parallel-size'],
    fraction: ['--mem-fraction-static'],
    quantization: ['--quantization'],
  },
} as const;

/** The last path segment of a model id (Hugging Face `org/name`, Ollama `namespace/name:tag`), lowercased. */
function modelName(model: string): string {
  return (model.split('/').pop() ?? model).toLowerCase();
}

/**
 * Parameters in billions from a model id: `8B`, `0.5B`, `82M`, `70b`, `8x7B` (MoE: 56), Ollama `llama3.1:8b`.
 * A number glued to letters (`Qwen2.5`, `v1.5`, `A3B`) or followed by anything but B/M (`3.1-`, `3.5-`) is not a size.
 */
const sizePattern = /(?:^|[^a-z0-9.])(?:(\d+)x)?(\d+(?:\.\d+)?)([bm])(?![a-z0-9])/;

export function parseModelSize(model: string): number | null {
  const m = sizePattern.exec(modelName(model));
  if (!m) return null;
  const experts = m[1] === undefined ? 1 : Number(m[1]);
  const value = Number(m[2]) * experts;
  return m[3] === 'm' ? value / 1000 : value;
}

/** A word matching `pattern`, bounded by non-alphanumerics (so `q4` matches in `8b-q4_k_m`, not in `qwen`). */
function word(pattern: string): RegExp {
  return new RegExp(`(?:^|[^a-z0-9])(?:${pattern})(?=[^a-z0-9]|$)`);
}

/** Quantization and precision hints, most specific first: an explicit bit width beats a method name (GPTQ-Int8 is 8-bit). */
const quantizationRules: ReadonlyArray<[RegExp, number | ((m: RegExpExecArray) => number)]> = [
  [word('int8|8bit|8-bit|w8a8|w8a16|q8(?:_[a-z0-9_]+)?'), 1],
  [word('int4|4bit|4-bit|w4a16|w4a4|nf4|fp4|nvfp4|mxfp4'), 0.5],
  [word('i?q([2-6])(?:_[a-z0-9_]+)?'), (m) => Number(m[1]) / 8],
  [word('fp8|float8|f8'), 1],
  [word('awq|gptq|marlin|awq_marlin|gptq_marlin|bitsandbytes|bnb'), 0.5],
  [word('fp16|f16|bf16|float16|bfloat16'), 2],
  [word('fp32|f32|float32'), 4],
];

/** Bytes per parameter that a quantization or precision hint in `text` implies, with the hint; null: none found. */
export function quantizationHint(text: string): { bytes: number; hint: string } | null {
  const t = text.toLowerCase();
  for (const [pattern, bytes] of quantizationRules) {
    const m = pattern.exec(t);
    if (m) return { bytes: typeof bytes === 'number' ? bytes : bytes(m), hint: m[0].replace(/^[^a-z0-9]/, '') };
  }
  return null;
}

const dtypeBytes: Record<string, number> = { auto: 2, half: 2, float16: 2, fp16: 2, bfloat16: 2, bf16: 2, float: 4, float32: 4, fp32: 4 };

function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

interface ParsedCommand {
  flags: Map<string, string | true>;
  problem: string | null;
}

function readCommand(command: string | undefined): ParsedCommand {
  if (command === undefined) return { flags: new Map(), problem: null };
  try {
    return { flags: parseCommandFlags(tokenizeCommand(command)).flags, problem: null };
  } catch (err) {
    if (!(err instanceof CommandLineError)) throw err;
    return { flags: new Map(), problem: `the command could not be read (${err.message}); its flags were ignored` };
  }
}

function flagValue(flags: Map<string, string | true>, names: readonly string[]): string | undefined {
  for (const name of names) {
    const v = flags.get(name);
    if (typeof v === 'string') return v;
  }
  return undefined;
}

function positiveInt(flags: Map<string, string | true>, names: readonly string[], notes: string[]): number {
  const raw = flagValue(flags, names);
  if (raw === undefined) return 1;
  const n = Number(raw);
  if (Number.isInteger(n) && n >= 1 && n <= 1024) return n;
  notes.push(`${names[0]} ${raw} is not a whole number ≥ 1; counted as 1`);
  return 1;
}

function fractionFlag(flags: Map<string, string | true>, names: readonly string[], fallback: number, notes: string[]): number {
  const raw = flagValue(flags, names);
  if (raw === undefined) return fallback;
  const f = Number(raw);
  if (Number.isFinite(f) && f > 0 && f <= 1) return f;
  notes.push(`${names[0]} ${raw} is not a fraction in (0, 1]; counted as ${fallback}`);
  return fallback;
}

function engineFamily(backend: Backend): 'vllm' | 'sglang' | 'ollama' {
  return backend === 'vllm-omni' ? 'vllm' : backend;
}

/** The estimate of DESIGN §7.2 for one replica of `spec`. Pure: reads only the model id, backend and command. */
export function estimateVram(spec: Pick<WorkloadSpec, 'model' | 'backend' | 'command'>): VramEstimate {
  const notes: string[] = [];
  const family = engineFamily(spec.backend);
  const { flags, problem } = family === 'ollama' ? { flags: new Map<string, string | true>(), problem: null } : readCommand(spec.command);
  if (problem) notes.push(problem);

  let tp = 1;
  let pp = 1;
  let dp = 1;
  let claim: VramClaim = { kind: 'estimate' };
  if (family !== 'ollama') {
    const names = flagNames[family];
    tp = positiveInt(flags, names.tp, notes);
    pp = positiveInt(flags, names.pp, notes);
    dp = positiveInt(flags, names.dp, notes);
    const fallback = family === 'vllm' ? defaultVllmGpuMemoryUtilization : defaultSglangMemFraction(tp);
    claim = { kind: 'fraction', fraction: fractionFlag(flags, names.fraction, fallback, notes) };
    if (flagValue(flags, names.fraction) === undefined)
      notes.push(`${spec.backend} claims ${fallback} of each GPU's memory (${names.fraction[0]} default${family === 'sglang' ? ` at tp ${tp}` : ''})`);
  }

  const name = modelName(spec.model);
  let bytes: number;
  const quantFlag = family === 'ollama' ? undefined : flagValue(flags, flagNames[family].quantization);
  const fromFlag = quantFlag === undefined ? null : quantizationHint(quantFlag);
  const fromModel = quantizationHint(name);
  const dtype = family === 'ollama' ? undefined : flagValue(flags, ['--dtype'])?.toLowerCase();
  if (fromFlag) {
    bytes = fromFlag.bytes;
    notes.push(`${bytes} bytes per parameter (--quantization ${quantFlag})`);
  } else if (fromModel) {
    bytes = fromModel.bytes;
    notes.push(`${bytes} bytes per parameter ("${fromModel.hint}" in the model id)`);
  } else if (family === 'ollama') {
    bytes = 0.5;
    notes.push('0.5 bytes per parameter: Ollama models are 4-bit quantized unless the tag says otherwise (:fp16, :q8_0)');
  } else if (dtype !== undefined && Object.hasOwn(dtypeBytes, dtype)) {
    bytes = dtypeBytes[dtype]!;
    notes.push(`${bytes} bytes per parameter (--dtype ${dtype})`);
  } else {
    bytes = 2;
    if (dtype === undefined && quantFlag === undefined) notes.push('2 bytes per parameter (16-bit weights, the default)');
    if (dtype !== undefined) notes.push(`--dtype ${dtype} is not one the estimate knows; counted as 2 bytes per parameter`);
    if (quantFlag !== undefined) notes.push(`--quantization ${quantFlag} does not say its bit width; counted as 2 bytes per parameter`);
  }

  const params = parseModelSize(spec.model);
  const shards = tp * pp;
  const gpus = tp * pp * dp;
  if (params === null) {
    const claimText =
      claim.kind === 'fraction'
        ? `${spec.backend}'s claim of ${Math.round(claim.fraction * 100)}% of each GPU alone decides`
        : `Ollama is counted as claiming ${Math.round(defaultVllmGpuMemoryUtilization * 100)}% of the GPU (name a tag with a size, such as llama3.1:8b, for a tighter fit)`;
    notes.push(`the model id "${spec.model}" carries no size (such as 8B or 0.5B): ${claimText}`);
    // Unknown Ollama models reserve what vLLM would, so an unknown size never overcommits a GPU.
    if (claim.kind === 'estimate') claim = { kind: 'fraction', fraction: defaultVllmGpuMemoryUtilization };
    return { params_b: null, bytes_per_param: bytes, weights_gib: null, need_gib_per_gpu: null, gpus, claim, known: false, notes };
  }
  const weights = (params * 1e9 * bytes) / gib;
  const need = (weights * overheadFactor + overheadGib) / shards;
  return {
    params_b: params,
    bytes_per_param: bytes,
    weights_gib: round(weights),
    need_gib_per_gpu: round(need),
    gpus,
    claim,
    known: true,
    notes,
  };
}
