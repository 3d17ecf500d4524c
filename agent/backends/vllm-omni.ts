// vLLM-omni: launched as `vllm serve MODEL … --omni` (the form the vllm-omni images take); HF_HOME set for its
// pipelines; ready like vLLM.
import { tokenizeCommand } from '../../shared/spec/command-line.ts';
import type { BackendDriver } from './types.ts';
import { probeOpenAiServer, withInjectedFlags } from './openai-server.ts';

/** `vllm-omni serve M …` and `vllm serve M … --omni` are the same request; the agent runs the second form. */
function canonicalArgv(command: string): string[] {
  const [program, ...rest] = tokenizeCommand(command);
  if (program !== 'vllm-omni') return [program!, ...rest];
  return ['vllm', ...rest, ...(rest.includes('--omni') ? [] : ['--omni'])];
}

export const vllmOmni: BackendDriver = {
  name: 'vllm-omni',
  argv: (spec, port) => withInjectedFlags(canonicalArgv(spec.command ?? `vllm serve ${spec.model} --omni`), port, spec.model),
  programWords: () => 1,
  env: () => ({ HF_HOME: '/root/.cache/huggingface' }),
  probe: (spec, port, signal) => probeOpenAiServer(spec, port, signal, true),
  metricsPath: '/metrics',
};
