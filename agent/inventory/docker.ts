// Detects the Docker engine: its version, an NVIDIA runtime, and NVIDIA CDI devices (for GPU containers).
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { z } from 'zod';

export interface DockerEngineInfo {
  version: string;
  nvidiaRuntime: boolean;
  cdi: boolean;
  /** Tagged images present on the engine (e.g. `vllm/vllm-openai:v0.6.3`). */
  images: string[];
}

const infoSchema = z.object({
  Runtimes: z.record(z.string(), z.unknown()).optional(),
  CDISpecDirs: z.array(z.string()).nullish(),
});

/** The engine's facts, or null when no engine answers within the timeout. */
export async function detectDockerEngine(opts: { docker?: Docker; timeoutMs?: number } = {}): Promise<DockerEngineInfo | null> {
  const docker = opts.docker ?? new Docker();
  const timeoutMs = opts.timeoutMs ?? 3000;
  try {
    const [version, info, images] = await withTimeout(Promise.all([docker.version(), docker.info(), docker.listImages()]), timeoutMs);
    const parsed = infoSchema.safeParse(info);
    const runtimes = parsed.success ? Object.keys(parsed.data.Runtimes ?? {}) : [];
    const specDirs = parsed.success ? (parsed.data.CDISpecDirs ?? []) : [];
    return {
      version: typeof version.Version === 'string' ? version.Version : 'unknown',
      nvidiaRuntime: runtimes.includes('nvidia'),
      cdi: await hasNvidiaCdiSpecs(specDirs),
      images: images.flatMap((i) => i.RepoTags ?? []).filter((t) => t !== '<none>:<none>').slice(0, 1000),
    };
  } catch {
    return null;
  }
}

/** CDI is usable for GPUs when one of the engine's spec dirs holds a spec of kind nvidia.com/gpu. */
async function hasNvidiaCdiSpecs(dirs: string[]): Promise<boolean> {
  for (const dir of dirs) {
    const files = await readdir(dir).catch(() => [] as string[]);
    for (const f of files) {
      if (!/\.(ya?ml|json)$/.test(f)) continue;
      const text = await readFile(join(dir, f), 'utf8').catch(() => '');
      if (text.includes('nvidia.com/gpu')) return true;
    }
  }
  return false;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });
}
