// The running simulator's shared state: configuration, knobs, engine, LoRA registry, readiness and failure injection.
import type { SimConfig } from './cli.ts';
import { Engine } from './engine.ts';
import type { Knobs } from './knobs.ts';
import { LoraRegistry } from './lora.ts';
import { seededRandom } from './text.ts';

export interface Sim {
  readonly config: SimConfig;
  readonly knobs: Knobs;
  readonly engine: Engine;
  readonly lora: LoraRegistry;
  /** True once the startup delay has passed (never with IK_SIM_FAIL=never-ready). */
  ready: boolean;
  /** The backend's version string (/version, /api/version). */
  readonly version: string;
  /** Whether the next inference request must fail with 500 (IK_SIM_FAIL=http500=RATE, seeded by request count). */
  nextRequestFails(): boolean;
  /** One line to stdout (request logs, startup lines). */
  log(line: string): void;
}

const DEFAULT_VERSIONS = { vllm: '0.9.2', 'vllm-omni': '0.9.2', sglang: '0.4.9', ollama: '0.9.6' } as const;

export function createSim(config: SimConfig, knobs: Knobs, write: (line: string) => void): Sim {
  const failDraw = seededRandom(knobs.seed);
  const engine = new Engine({
    maxNumSeqs: knobs.maxNumSeqs ?? config.maxNumSeqs,
    ttftMs: knobs.ttftMs,
    itlMs: knobs.itlMs,
    prefixCache: knobs.prefixCache,
    kvCapacityTokens: Math.max(config.maxModelLen, 4096) * 16,
  });
  return {
    config,
    knobs,
    engine,
    lora: new LoraRegistry(),
    ready: false,
    version: knobs.version ?? DEFAULT_VERSIONS[config.flavour],
    nextRequestFails: () => knobs.fail.http500Rate > 0 && failDraw() < knobs.fail.http500Rate,
    log: write,
  };
}
