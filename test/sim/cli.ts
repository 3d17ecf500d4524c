// Parses the launch command of each backend flavour (vllm / vllm-omni / sglang / ollama) the way the real tools accept it.

export type Flavour = 'vllm' | 'vllm-omni' | 'sglang' | 'ollama';

export interface SimConfig {
  flavour: Flavour;
  /** The model path or id as given on the command line. */
  model: string;
  /** Names the base model answers to; the first is the primary (listed first, used when a request names none). */
  servedNames: string[];
  host: string;
  port: number;
  enableLora: boolean;
  maxLoras: number;
  tensorParallelSize: number;
  gpuMemoryUtilization: number;
  maxModelLen: number;
  /** From --max-num-seqs (vLLM) or --max-running-requests (SGLang); IK_SIM_MAX_NUM_SEQS overrides it. */
  maxNumSeqs: number;
  task: string | null;
  dtype: string | null;
  quantization: string | null;
  /** SGLang serves /metrics only with --enable-metrics; vLLM always does. */
  enableMetrics: boolean;
}

/** A malformed command: the message goes to stderr and the process exits with `exitCode` (argparse uses 2). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

type Env = Record<string, string | undefined>;

interface ParsedFlags {
  positionals: string[];
  values: Map<string, string[]>;
}

// Flags that never take a value. Any `--enable-*`, `--disable-*`, `--no-*`, `--skip-*` flag is also treated as one,
// and any flag followed by another flag (or by nothing) is a switch.
const SWITCHES = new Set([
  'omni', 'trust-remote-code', 'enforce-eager', 'headless', 'async-scheduling', 'log-requests', 'fully-sharded-loras',
  'show-time-cost', 'help', 'h', 'version', 'v',
]);
// Flags that take one or more values (argparse nargs="+").
const MULTI = new Set(['served-model-name']);

export function parseCommand(argv: string[], env: Env): SimConfig {
  const [program, ...rest] = argv;
  switch (program) {
    case 'vllm':
      return parseVllm(rest, 'vllm');
    case 'vllm-omni':
      return parseVllm(rest, 'vllm-omni');
    case 'sglang':
      return parseSglang(rest);
    case 'python3':
    case 'python':
      return parsePython(program, rest);
    case 'ollama':
      return parseOllama(rest, env);
    default:
      throw new UsageError(
        'usage: ik-sim {vllm serve MODEL | vllm-omni serve MODEL | sglang --model-path MODEL | ' +
          'python3 -m sglang.launch_server --model-path MODEL | ollama serve} [flags]',
      );
  }
}

function parsePython(program: string, rest: string[]): SimConfig {
  if (rest[0] === '-m' && rest[1] === 'sglang.launch_server') return parseSglang(rest.slice(2));
  if (rest[0] === '-m' && rest[1] === 'vllm.entrypoints.openai.api_server') return parseVllmFlags(rest.slice(2), 'vllm', 'api_server.py');
  throw new UsageError(
    `${program}: this image only runs '-m sglang.launch_server' or '-m vllm.entrypoints.openai.api_server' (got: ${rest.join(' ') || 'nothing'})`,
  );
}

function parseVllm(rest: string[], program: 'vllm' | 'vllm-omni'): SimConfig {
  if (rest[0] !== 'serve') {
    throw new UsageError(
      `usage: ${program} [-h] [-v] {chat,complete,serve,bench,collect-env,run-batch} ...\n` +
        `${program}: error: ${rest[0] === undefined ? 'a subcommand is required' : `argument subparser: invalid choice: '${rest[0]}' (this simulator runs 'serve')`}`,
    );
  }
  return parseVllmFlags(rest.slice(1), program, `${program} serve`);
}

function parseVllmFlags(args: string[], program: 'vllm' | 'vllm-omni', prog: string): SimConfig {
  const flags = scanFlags(args, prog);
  const model = flags.positionals[0] ?? last(flags, 'model');
  if (!model) {
    throw new UsageError(`usage: ${prog} [model_tag] [options]\n${prog}: error: the following arguments are required: model_tag`);
  }
  const omni = program === 'vllm-omni' || flags.values.has('omni');
  const served = flags.values.get('served-model-name') ?? [];
  return {
    flavour: omni ? 'vllm-omni' : 'vllm',
    model,
    servedNames: served.length ? served : [model],
    host: last(flags, 'host') || '127.0.0.1',
    port: intFlag(flags, prog, 'port', 8000, 0, 65535),
    enableLora: switchFlag(flags, 'enable-lora'),
    maxLoras: intFlag(flags, prog, 'max-loras', 1, 1),
    tensorParallelSize: intFlag(flags, prog, ['tensor-parallel-size', 'tp'], 1, 1),
    gpuMemoryUtilization: floatFlag(flags, prog, 'gpu-memory-utilization', 0.9),
    maxModelLen: intFlag(flags, prog, 'max-model-len', 4096, 1),
    maxNumSeqs: intFlag(flags, prog, 'max-num-seqs', 256, 1),
    task: last(flags, 'task') ?? null,
    dtype: last(flags, 'dtype') ?? null,
    quantization: last(flags, ['quantization', 'q']) ?? null,
    enableMetrics: true,
  };
}

function parseSglang(args: string[]): SimConfig {
  const prog = 'launch_server.py';
  const flags = scanFlags(args, prog);
  const model = last(flags, ['model-path', 'model']);
  if (!model) {
    throw new UsageError(
      `usage: ${prog} [-h] --model-path MODEL_PATH [options]\n${prog}: error: the following arguments are required: --model-path/--model`,
    );
  }
  const served = last(flags, 'served-model-name');
  return {
    flavour: 'sglang',
    model,
    servedNames: [served || model],
    host: last(flags, 'host') || '127.0.0.1',
    port: intFlag(flags, prog, 'port', 30000, 0, 65535),
    enableLora: switchFlag(flags, 'enable-lora') || flags.values.has('lora-paths'),
    maxLoras: intFlag(flags, prog, 'max-loras-per-batch', 8, 1),
    tensorParallelSize: intFlag(flags, prog, ['tp-size', 'tp'], 1, 1),
    gpuMemoryUtilization: floatFlag(flags, prog, 'mem-fraction-static', 0.88),
    maxModelLen: intFlag(flags, prog, 'context-length', 4096, 1),
    maxNumSeqs: intFlag(flags, prog, 'max-running-requests', 256, 1),
    task: null,
    dtype: last(flags, 'dtype') ?? null,
    quantization: last(flags, 'quantization') ?? null,
    enableMetrics: switchFlag(flags, 'enable-metrics'),
  };
}

function parseOllama(rest: string[], env: Env): SimConfig {
  if (rest[0] !== 'serve') {
    throw new UsageError(`Error: this simulator only runs 'ollama serve' (got: ollama ${rest.join(' ')})`.trimEnd(), 1);
  }
  const { host, port } = parseOllamaHost(env.OLLAMA_HOST);
  return {
    flavour: 'ollama',
    model: '',
    servedNames: [],
    host,
    port,
    enableLora: false,
    maxLoras: 0,
    tensorParallelSize: 1,
    gpuMemoryUtilization: 0.9,
    maxModelLen: 4096,
    maxNumSeqs: env.OLLAMA_NUM_PARALLEL && /^\d+$/.test(env.OLLAMA_NUM_PARALLEL) ? Math.max(1, Number(env.OLLAMA_NUM_PARALLEL)) : 256,
    task: null,
    dtype: null,
    quantization: null,
    enableMetrics: false,
  };
}

/** OLLAMA_HOST as Ollama reads it: `host:port`, `host`, `:port`, `[v6]:port` or a URL; default 127.0.0.1:11434. */
export function parseOllamaHost(raw: string | undefined): { host: string; port: number } {
  const value = (raw ?? '').trim().replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  const m = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(value);
  if (!m) throw new UsageError(`Error: invalid OLLAMA_HOST '${raw}'`, 1);
  const host = m[1]!.replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = m[2] === undefined ? 11434 : Number(m[2]);
  if (port > 65535) throw new UsageError(`Error: invalid port in OLLAMA_HOST '${raw}'`, 1);
  return { host, port };
}

/** argparse-like scan: `--flag value`, `--flag=value`, switches, `nargs=+` lists; positionals kept in order. */
function scanFlags(args: string[], prog: string): ParsedFlags {
  const positionals: string[] = [];
  const values = new Map<string, string[]>();
  const add = (name: string, v: string) => values.set(name, [...(values.get(name) ?? []), v]);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-' || /^-\d/.test(arg)) {
      positionals.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = (eq < 0 ? body : body.slice(0, eq)).replace(/_/g, '-');
    if (name === 'help' || name === 'h') throw new UsageError(`usage: ${prog} [options]  (ik-sim: flags are accepted and mostly ignored)`, 0);
    if (eq >= 0) {
      add(name, body.slice(eq + 1));
      continue;
    }
    const next = args[i + 1];
    const nextIsValue = next !== undefined && (!next.startsWith('-') || /^-\d/.test(next));
    if (isSwitch(name)) {
      // `--enable-chunked-prefill True` (older optional-argument form) still reads as a switch with a value.
      if (next !== undefined && /^(true|false)$/i.test(next)) add(name, args[++i]!);
      else add(name, 'true');
      continue;
    }
    if (MULTI.has(name)) {
      while (args[i + 1] !== undefined && !args[i + 1]!.startsWith('-')) add(name, args[++i]!);
      if (!values.has(name)) throw new UsageError(`${prog}: error: argument --${name}: expected at least one argument`);
      continue;
    }
    if (nextIsValue) add(name, args[++i]!);
    else add(name, 'true');
  }
  return { positionals, values };
}

function isSwitch(name: string): boolean {
  return SWITCHES.has(name) || /^(enable|disable|no|skip)-/.test(name);
}

function last(flags: ParsedFlags, names: string | string[]): string | undefined {
  for (const n of Array.isArray(names) ? names : [names]) {
    const v = flags.values.get(n);
    if (v?.length) return v[v.length - 1];
  }
  return undefined;
}

function switchFlag(flags: ParsedFlags, name: string): boolean {
  const v = last(flags, name);
  return v !== undefined && !/^false$/i.test(v);
}

function intFlag(flags: ParsedFlags, prog: string, names: string | string[], fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = last(flags, names);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  const flag = `--${Array.isArray(names) ? names[0] : names}`;
  if (!/^-?\d+$/.test(raw)) throw new UsageError(`${prog}: error: argument ${flag}: invalid int value: '${raw}'`);
  if (n < min || n > max) throw new UsageError(`${prog}: error: argument ${flag}: ${raw} is out of range (${min}..${max})`);
  return n;
}

function floatFlag(flags: ParsedFlags, prog: string, name: string, fallback: number): number {
  const raw = last(flags, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new UsageError(`${prog}: error: argument --${name}: invalid float value: '${raw}'`);
  return n;
}
