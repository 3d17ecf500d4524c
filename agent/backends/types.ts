// What the agent needs to know about one backend engine: its launch command, its environment, and when it is ready.
import type { Backend } from '../../shared/spec/backends.ts';
import type { WorkloadSpec } from '../../shared/spec/workload-spec.ts';

export interface ReadinessProbe {
  ready: boolean;
  /** What is still missing, in words, for the failure reason when a replica never becomes ready. */
  detail: string;
}

export interface BackendDriver {
  readonly name: Backend;
  /** The command line to run, with host, port and the served model name injected; the program first. */
  argv(spec: WorkloadSpec, port: number): string[];
  /** How many leading words of argv form the program (what IK_PROCESS_MAP replaces), e.g. 3 for `python3 -m sglang.launch_server`. */
  programWords(argv: string[]): number;
  /** Extra environment for the backend (besides the spec's env and the GPU variables). */
  env(spec: WorkloadSpec, port: number): Record<string, string>;
  /** One readiness check against 127.0.0.1:port. */
  probe(spec: WorkloadSpec, port: number, signal: AbortSignal): Promise<ReadinessProbe>;
  /** Work after the server answers and before the replica is ready (Ollama pulls the model), with progress. */
  prepareModel?(spec: WorkloadSpec, port: number, onProgress: (status: string, percent: number | null) => void, signal: AbortSignal): Promise<void>;
  /** Prometheus metrics path of the engine, scraped for backend metrics. */
  readonly metricsPath: string;
}
