// vLLM: the spec's `vllm serve MODEL …`, ready when /health is 200 and /v1/models lists the model. Task types that
// take LoRA adapters start with LoRA on and the runtime load/unload routes open, so adapters need no restart.
import { parseCommandFlags } from '../../shared/spec/command-line.ts';
import { taskTakesAdapters } from '../../shared/spec/adapters.ts';
import type { BackendDriver } from './types.ts';
import { probeOpenAiServer, withInjectedFlags } from './openai-server.ts';

export const vllm: BackendDriver = {
  name: 'vllm',
  argv(spec, port) {
    const argv = withInjectedFlags(spec.command ?? `vllm serve ${spec.model}`, port, spec.model);
    if (!taskTakesAdapters(spec.task_type)) return argv;
    // The command decides when it names the flag either way (`--no-enable-lora` opts a model without LoRA support out).
    const { flags } = parseCommandFlags(argv);
    return flags.has('--enable-lora') || flags.has('--no-enable-lora') ? argv : [...argv, '--enable-lora'];
  },
  programWords: () => 1,
  env: (spec): Record<string, string> => (taskTakesAdapters(spec.task_type) ? { VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True' } : {}),
  probe: (spec, port, signal) => probeOpenAiServer(spec, port, signal, true),
  metricsPath: '/metrics',
};
