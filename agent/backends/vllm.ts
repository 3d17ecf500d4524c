// vLLM: the spec's `vllm serve MODEL …`, ready when /health is 200 and /v1/models lists the model.
import type { BackendDriver } from './types.ts';
import { probeOpenAiServer, withInjectedFlags } from './openai-server.ts';

export const vllm: BackendDriver = {
  name: 'vllm',
  argv: (spec, port) => withInjectedFlags(spec.command ?? `vllm serve ${spec.model}`, port, spec.model),
  programWords: () => 1,
  env: () => ({}),
  probe: (spec, port, signal) => probeOpenAiServer(spec, port, signal, true),
  metricsPath: '/metrics',
};
