// The backends and task types a workload can name, which backend serves which task type, and launch-command checks.
import { parseCommandFlags, scanCommandLine } from './command-line.ts';

export const backends = ['vllm', 'vllm-omni', 'sglang', 'ollama'] as const;
export type Backend = (typeof backends)[number];

/** The 12 task types, in the order of DESIGN §4.4's table. */
export const taskTypes = [
  'text2text',
  'image2text',
  'embedding',
  'text2image',
  'image2image',
  'text2audio',
  'audio2text',
  'text2video',
  'reranker',
  'classification',
  'reward',
  'score',
] as const;
export type TaskType = (typeof taskTypes)[number];

/** Task types with no sync OpenAI route: their requests go through the async jobs API only. */
export const asyncOnlyTaskTypes = ['text2video', 'reranker', 'classification', 'reward', 'score'] as const satisfies readonly TaskType[];

/**
 * Which task types each backend serves. vLLM: generation, vision chat, pooling models (embed, rerank/score,
 * classify, reward) and Whisper-style transcription. vLLM-Omni: the generative media types (diffusion, TTS, video)
 * plus chat and vision chat on its vLLM core, and transcription. SGLang: generation, vision chat and its pooling
 * models. Ollama: chat and embeddings.
 */
export const backendTaskTypes = {
  vllm: ['text2text', 'image2text', 'embedding', 'audio2text', 'reranker', 'classification', 'reward', 'score'],
  'vllm-omni': ['text2text', 'image2text', 'text2image', 'image2image', 'text2audio', 'audio2text', 'text2video'],
  sglang: ['text2text', 'image2text', 'embedding', 'reranker', 'classification', 'reward', 'score'],
  ollama: ['text2text', 'embedding'],
} as const satisfies Record<Backend, readonly TaskType[]>;

export function backendServes(backend: Backend, taskType: TaskType): boolean {
  return (backendTaskTypes[backend] as readonly TaskType[]).includes(taskType);
}

/** The backends that serve `taskType`, in the order of `backends`. */
export function backendsFor(taskType: TaskType): Backend[] {
  return backends.filter((b) => backendServes(b, taskType));
}

/** Flags the agent adds to every launch line (DESIGN §8); a command that sets them would fight with it. */
export const injectedFlags = ['--host', '--port', '--served-model-name'] as const;

const commandExamples: Record<Exclude<Backend, 'ollama'>, (model: string) => string> = {
  vllm: (m) => `vllm serve ${m}`,
  'vllm-omni': (m) => `vllm-omni serve ${m}`,
  sglang: (m) => `python3 -m sglang.launch_server --model-path ${m}`,
};

export function exampleCommand(backend: Exclude<Backend, 'ollama'>, model: string): string {
  return commandExamples[backend](model);
}

/**
 * The problems with `command` as the launch line of `backend` serving `model`, each a sentence (empty: fine).
 * `model` is undefined when the spec's model is itself invalid; the model checks are then skipped.
 */
export function checkLaunchCommand(backend: Exclude<Backend, 'ollama'>, command: string, model: string | undefined): string[] {
  const { tokens, problems } = scanCommandLine(command);
  if (problems.length > 0) return problems;
  if (tokens.length === 0) return [`command is empty: start it with "${exampleCommand(backend, model ?? '<model>')}"`];
  const out: string[] = [];
  const { flags } = parseCommandFlags(tokens);
  const served = (what: string, given: string | undefined) => {
    if (given === undefined || given.startsWith('-'))
      out.push(`${what} must be followed by the model, e.g. "${exampleCommand(backend, model ?? '<model>')}"`);
    else if (model !== undefined && given !== model)
      out.push(`the command serves "${given}" but model is "${model}": the command must serve the spec's model`);
  };
  const [program, sub] = tokens;
  const omni = flags.has('--omni');

  if (backend === 'vllm') {
    if (program !== 'vllm' || sub !== 'serve') out.push(`a vllm command starts with "vllm serve <model>", got "${tokens.slice(0, 2).join(' ')}"`);
    else served('"vllm serve"', tokens[2]);
    if (omni) out.push('--omni is the vllm-omni backend: set backend to "vllm-omni"');
  } else if (backend === 'vllm-omni') {
    if (program === 'vllm-omni' && sub === 'serve') served('"vllm-omni serve"', tokens[2]);
    else if (program === 'vllm' && sub === 'serve') {
      served('"vllm serve"', tokens[2]);
      if (!omni) out.push('"vllm serve" runs vLLM-Omni only with --omni: add --omni, or start with "vllm-omni serve <model>"');
    } else out.push(`a vllm-omni command starts with "vllm-omni serve <model>" (or "vllm serve <model> … --omni"), got "${tokens.slice(0, 2).join(' ')}"`);
  } else {
    if (!(program === 'python3' || program === 'python') || tokens[1] !== '-m' || tokens[2] !== 'sglang.launch_server')
      out.push(`an sglang command starts with "python3 -m sglang.launch_server", got "${tokens.slice(0, 3).join(' ')}"`);
    else {
      const modelPath = flags.get('--model-path') ?? flags.get('--model'); // recent SGLang takes --model as an alias
      if (modelPath === undefined) out.push(`an sglang command needs --model-path, e.g. "${exampleCommand('sglang', model ?? '<model>')}"`);
      else served('--model-path', modelPath === true ? undefined : modelPath);
    }
  }
  for (const flag of injectedFlags) {
    if (flags.has(flag)) out.push(`${flag} is set by ikhub (the agent picks the address and names the model after the spec): remove it from the command`);
  }
  return out;
}
