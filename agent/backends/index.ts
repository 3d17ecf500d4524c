// The backend drivers by name: adding a backend means one new module and one line here.
import type { Backend } from '../../shared/spec/backends.ts';
import type { BackendDriver } from './types.ts';
import { vllm } from './vllm.ts';
import { vllmOmni } from './vllm-omni.ts';
import { sglang } from './sglang.ts';
import { ollama } from './ollama.ts';

const drivers: Record<Backend, BackendDriver> = { vllm, 'vllm-omni': vllmOmni, sglang, ollama };

export function backendDriver(name: Backend): BackendDriver {
  return drivers[name];
}

/** Applies IK_PROCESS_MAP: the program words of argv are replaced by the mapped command prefix. */
export function mapProgram(driver: BackendDriver, argv: string[], prefix: string | undefined): string[] {
  if (!prefix) return argv;
  const words = prefix.trim().split(/\s+/);
  return [...words, ...argv.slice(driver.programWords(argv))];
}

export type { BackendDriver } from './types.ts';
