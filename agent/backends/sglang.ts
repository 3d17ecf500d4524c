// SGLang: `python3 -m sglang.launch_server --model-path MODEL …` with metrics on; ready when /health is 200. Task
// types that take LoRA adapters start with LoRA on, so adapters load at runtime without a restart.
import { parseCommandFlags } from '../../shared/spec/command-line.ts';
import { taskTakesAdapters } from '../../shared/spec/adapters.ts';
import type { BackendDriver } from './types.ts';
import { probeOpenAiServer, withInjectedFlags } from './openai-server.ts';

export const sglang: BackendDriver = {
  name: 'sglang',
  argv(spec, port) {
    const command = spec.command ?? `python3 -m sglang.launch_server --model-path ${spec.model}`;
    const argv = withInjectedFlags(command, port, spec.model);
    const { flags } = parseCommandFlags(argv);
    const extra = [
      ...(flags.has('--enable-metrics') ? [] : ['--enable-metrics']),
      ...(taskTakesAdapters(spec.task_type) && !flags.has('--enable-lora') ? ['--enable-lora'] : []),
    ];
    return [...argv, ...extra];
  },
  // `python3 -m sglang.launch_server` is the program; a bare `sglang.launch_server`-less form would be one word.
  programWords: (argv) => (argv[1] === '-m' ? 3 : 1),
  env: () => ({}),
  probe: (spec, port, signal) => probeOpenAiServer(spec, port, signal, false),
  metricsPath: '/metrics',
};
