// LoRA adapters loaded at runtime: the registry, and the load/unload routes as vLLM and SGLang answer them.
import { HttpError, openaiError, type Ctx, type Route } from './server.ts';
import type { Sim } from './state.ts';

export interface LoraAdapter {
  name: string;
  path: string;
  base: string;
  createdAt: number;
}

export class LoraRegistry {
  private readonly adapters = new Map<string, LoraAdapter>();

  get(name: string): LoraAdapter | undefined {
    return this.adapters.get(name);
  }

  list(): LoraAdapter[] {
    return [...this.adapters.values()];
  }

  add(name: string, path: string, base: string): void {
    this.adapters.set(name, { name, path, base, createdAt: Math.floor(Date.now() / 1000) });
  }

  remove(name: string): boolean {
    return this.adapters.delete(name);
  }
}

/**
 * vLLM registers /v1/load_lora_adapter and /v1/unload_lora_adapter only when VLLM_ALLOW_RUNTIME_LORA_UPDATING is
 * true (otherwise they are plain 404s); without --enable-lora the engine refuses the load with a 400.
 * SGLang always has /load_lora_adapter and /unload_lora_adapter and answers {success, error_message, loaded_adapters}.
 */
export function loraRoutes(sim: Sim): Route[] {
  if (sim.config.flavour === 'sglang') {
    return [
      { method: 'POST', path: '/load_lora_adapter', handler: sglangLoad, inference: true },
      { method: 'POST', path: '/unload_lora_adapter', handler: sglangUnload, inference: true },
    ];
  }
  if (!sim.knobs.vllmRuntimeLora) return [];
  return [
    { method: 'POST', path: '/v1/load_lora_adapter', handler: vllmLoad, inference: true },
    { method: 'POST', path: '/v1/unload_lora_adapter', handler: vllmUnload, inference: true },
  ];
}

async function vllmLoad(ctx: Ctx): Promise<void> {
  const body = await ctx.json();
  const name = str(body.lora_name);
  const path = str(body.lora_path);
  const { sim } = ctx;
  if (!name || !path) throw openaiError(400, "Both 'lora_name' and 'lora_path' must be provided.", 'InvalidUserInput');
  if (sim.lora.get(name)) throw openaiError(400, `The lora adapter '${name}' has already been loaded.`, 'InvalidUserInput');
  if (!sim.config.enableLora) throw openaiError(400, 'LoRA is not enabled. Use --enable-lora to enable LoRA.');
  if (isUnknownAdapterPath(path)) throw openaiError(404, `No adapter found for ${path}`, 'NotFoundError');
  sim.lora.add(name, path, sim.config.servedNames[0]!);
  sim.log(`INFO ${stamp()} [serving_models.py] Loaded new LoRA adapter: name '${name}', path '${path}'`);
  ctx.send(200, `Success: LoRA adapter '${name}' added successfully.`, 'text/plain; charset=utf-8');
}

async function vllmUnload(ctx: Ctx): Promise<void> {
  const body = await ctx.json();
  const name = str(body.lora_name);
  const { sim } = ctx;
  if (!name) throw openaiError(400, "either 'lora_name' and 'lora_int_id' needs to be provided.", 'InvalidUserInput');
  if (!sim.lora.remove(name)) throw openaiError(404, `The lora adapter '${name}' cannot be found.`, 'NotFoundError');
  sim.log(`INFO ${stamp()} [serving_models.py] Removed LoRA adapter: name '${name}'`);
  ctx.send(200, `Success: LoRA adapter '${name}' removed successfully.`, 'text/plain; charset=utf-8');
}

async function sglangLoad(ctx: Ctx): Promise<void> {
  const body = await ctx.json();
  const name = str(body.lora_name);
  const path = str(body.lora_path);
  const { sim } = ctx;
  const fail = (message: string) => new HttpError(400, { success: false, error_message: message, loaded_adapters: null });
  if (!sim.config.enableLora) throw fail('LoRA is not enabled. Please set `--enable-lora` to enable LoRA.');
  if (!name || !path) throw fail('LoRARef must have both lora_name and lora_path set for loading.');
  if (sim.lora.get(name)) throw fail(`Failed to load LoRA adapter ${name} because it is already loaded`);
  if (isUnknownAdapterPath(path)) throw fail(`Can't find adapter_config.json at '${path}'`);
  sim.lora.add(name, path, sim.config.servedNames[0]!);
  sim.log(`[${isoStamp()}] Start load Lora adapter. Lora name=${name}, path=${path}`);
  ctx.sendJson(200, { success: true, error_message: null, loaded_adapters: loadedAdapters(sim) });
}

async function sglangUnload(ctx: Ctx): Promise<void> {
  const body = await ctx.json();
  const name = str(body.lora_name);
  const { sim } = ctx;
  if (!sim.lora.remove(name)) {
    const loaded = sim.lora.list().map((a) => a.name);
    throw new HttpError(400, {
      success: false,
      error_message: `LoRA with name ${name} does not exist. Loaded LoRAs: ${JSON.stringify(loaded)}`,
      loaded_adapters: null,
    });
  }
  ctx.sendJson(200, { success: true, error_message: null, loaded_adapters: loadedAdapters(sim) });
}

function loadedAdapters(sim: Sim): Record<string, string> {
  return Object.fromEntries(sim.lora.list().map((a) => [a.name, a.path]));
}

/** A path that names a missing adapter, so tests can exercise the backend's refusal: anything under /nonexistent. */
function isUnknownAdapterPath(path: string): boolean {
  return path.startsWith('/nonexistent');
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function stamp(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function isoStamp(): string {
  return new Date().toISOString().replace('T', ' ').slice(0, 19);
}
