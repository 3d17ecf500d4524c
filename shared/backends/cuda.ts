// The driver CUDA each backend image needs, and how a worker's driver CUDA is compared with a requirement.
import type { Backend } from '../spec/backends.ts';

/** `12.4` → [12, 4]; `12.10` → [12, 10]; `13` → [13, 0]; anything else → null. */
export function parseCudaVersion(version: string): [number, number] | null {
  const m = /^\s*(\d{1,3})(?:\.(\d{1,3}))?(?:\.\d+)*\s*$/.exec(version);
  if (!m) return null;
  return [Number(m[1]), Number(m[2] ?? 0)];
}

/** Negative, zero or positive as `a` is older than, equal to or newer than `b`; numeric per part (12.10 > 12.4). */
export function compareCuda(a: [number, number], b: [number, number]): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1];
}

/**
 * Whether a driver that reports `workerCuda` (nvidia-smi's "CUDA Version") runs code built for `required`:
 * the driver's CUDA must be at least the required one (a newer major runs older images too).
 * An unknown or unreadable driver CUDA satisfies nothing.
 */
export function cudaSatisfies(workerCuda: string | null, required: string): boolean {
  const have = workerCuda === null ? null : parseCudaVersion(workerCuda);
  const need = parseCudaVersion(required);
  return have !== null && need !== null && compareCuda(have, need) >= 0;
}

/**
 * `allowed_cuda_versions` (DESIGN §4.4): admits a worker whose driver supports one of the listed versions —
 * driver CUDA ≥ the listed version, same major (["12.4"] admits 12.4 … 12.x, not 13.0). An empty list admits all.
 */
export function cudaAllowed(workerCuda: string | null, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true;
  const have = workerCuda === null ? null : parseCudaVersion(workerCuda);
  if (have === null) return false;
  return allowed.some((v) => {
    const need = parseCudaVersion(v);
    return need !== null && need[0] === have[0] && compareCuda(have, need) >= 0;
  });
}

interface CudaRow {
  /** The first vLLM version (inclusive) this row covers, up to the next row. */
  since: string;
  cuda: string;
}

/**
 * The CUDA base of the `vllm/vllm-openai` image by vLLM version: the driver must report at least this CUDA, or
 * nvidia-container-cli refuses to start the container ("requirement error: unsatisfied condition: cuda>=12.8").
 * `vllm/vllm-omni:vX.Y` is built FROM `vllm/vllm-openai:vX.Y` (vllm-project/vllm-omni docker/Dockerfile.cuda,
 * PR #3859 "Update CUDA Docker base image to vLLM v0.21.0"), so the same rows apply to it.
 */
const vllmImageCuda: readonly CudaRow[] = [
  // Dockerfile `FROM nvidia/cuda:12.1.0-devel-ubuntu22.04` (vllm-project/vllm Dockerfile, late 2023); issue
  // https://github.com/vllm-project/vllm/issues/2393 "the vllm-openai image uses Cuda 12.1".
  { since: '0', cuda: '12.1' },
  // Dockerfile `ARG CUDA_VERSION=12.4.1` from v0.4.3 (vllm-project/vllm Dockerfile); issue
  // https://github.com/vllm-project/vllm/issues/5635: the v0.4.3 and v0.5.0 images need `cuda>=12.4`. PR
  // https://github.com/vllm-project/vllm/pull/12098 shows some late-2024 release images were built with 12.1.0;
  // 12.4 is the higher of the two, so no placement lands on a driver that refuses the image.
  { since: '0.4.3', cuda: '12.4' },
  // v0.9.0 release notes: PyTorch 2.7 (PR https://github.com/vllm-project/vllm/pull/16859), "the default wheel has been
  // upgraded from CUDA 12.4 to CUDA 12.8"; docker/Dockerfile `ARG CUDA_VERSION=12.8.1`; issue
  // https://github.com/vllm-project/vllm/issues/18813: the v0.9.0 image needs `cuda>=12.8`.
  { since: '0.9.0', cuda: '12.8' },
  // PyTorch 2.9 lands in v0.11.1 (https://github.com/vllm-project/vllm/issues/27228); v0.12.0 release notes:
  // "PyTorch 2.9.0 upgrade (CUDA 12.9)"; https://github.com/janhq/server/issues/262 (Nov 2025): the image needs `cuda>=12.9`.
  { since: '0.11.1', cuda: '12.9' },
  // PR https://github.com/vllm-project/vllm/pull/39878 "Switch default CUDA to 13.0"; v0.20.0 release notes: "Default CUDA
  // wheel on PyPI and vllm/vllm-openai:v0.20.0 image switched to CUDA 13.0" (the CUDA 12.9 build is the `-cu129` tag).
  { since: '0.20.0', cuda: '13.0' },
];

/** Images that take no version pin: the minimum of their `latest` tag. */
const latestImageCuda: Record<'sglang' | 'ollama', string> = {
  // sgl-project/sglang docs/docs/get-started/install.mdx: "SGLang images ship a CUDA 13 environment. CUDA 12 images
  // (-cu12 / -cu129) are no longer published; lmsysorg/sglang:v0.5.19-cu129 is the last CUDA 12 tag", and it asks for
  // "a CUDA 13-compatible driver".
  sglang: '13.0',
  // https://docs.ollama.com/gpu: "Ollama supports Nvidia GPUs with compute capability 5.0+ and driver version 550 and
  // newer" (driver R550 is CUDA 12.4). The image bundles its own CUDA runtime libraries; with an older driver Ollama
  // does not fail but silently runs on the CPU, which is worse for a GPU fleet than waiting.
  ollama: '12.4',
};

/** `0.6.3`, `0.10.1rc1`, `0.6.3.post1` → [0, 6, 3] (numeric parts only); null when it does not start with a number. */
function versionParts(version: string): number[] | null {
  const m = /^(\d+(?:\.\d+)*)/.exec(version);
  return m ? m[1]!.split('.').map(Number) : null;
}

function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The least driver CUDA the backend's default image needs, for `vllmVersion` (vllm, vllm-omni) or `latest` when it is
 * undefined (the newest row). null: no constraint known (a version that is not a number).
 */
export function minimumCuda(backend: Backend, vllmVersion: string | undefined): string | null {
  if (backend === 'sglang' || backend === 'ollama') return latestImageCuda[backend];
  if (vllmVersion === undefined) return vllmImageCuda[vllmImageCuda.length - 1]!.cuda;
  const parts = versionParts(vllmVersion);
  if (parts === null) return null;
  let found: string | null = null;
  for (const row of vllmImageCuda) {
    if (compareVersions(parts, versionParts(row.since)!) >= 0) found = row.cuda;
  }
  return found;
}

/**
 * A CUDA version as one number, major × 1000 + minor (`12.4` → 12004, `12.10` → 12010), for comparisons in hot loops
 * (the scheduler reads one per worker per placement); null when it is not `MAJOR[.MINOR[…]]`. No regex, no allocation.
 */
export function cudaNumber(version: string | null): number | null {
  if (version === null) return null;
  let major = 0;
  let minor = 0;
  let part = 0;
  let digits = 0;
  for (let i = 0; i < version.length; i++) {
    const c = version.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (part === 0) major = major * 10 + (c - 48);
      else if (part === 1) minor = minor * 10 + (c - 48);
      digits++;
      if (digits > 3) return null;
    } else if (c === 46 && digits > 0) {
      part++;
      digits = 0;
    } else return null;
  }
  if (digits === 0) return null;
  return major * 1000 + minor;
}
