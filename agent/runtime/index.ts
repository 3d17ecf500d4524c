// Chooses the agent's runtime: Docker when the engine answers (or IK_RUNTIME says so), else plain processes.
import type { Logger } from '../../shared/logger.ts';
import type { AgentConfig } from '../config.ts';
import { ProcessRuntime } from './process.ts';
import { DockerRuntime } from './docker.ts';
import type { Runtime } from './types.ts';

export function createRuntime(kind: 'docker' | 'process', config: AgentConfig, log: Logger, gpuMode: 'nvidia' | 'cdi' | 'none' | null): Runtime {
  if (kind === 'docker') return new DockerRuntime({ log, gpuMode, hfCacheDir: config.hfCacheDir });
  return new ProcessRuntime(config.dataDir);
}

export type { Runtime } from './types.ts';
