// Which container image runs a backend: the default names of DESIGN §8 and the agent's IK_IMAGE_MAP overrides.
import { z } from 'zod';
import { backends, type Backend } from '../spec/backends.ts';

/** The repository of each backend's default image (Docker Hub). */
export const defaultImageRepositories = {
  vllm: 'vllm/vllm-openai',
  'vllm-omni': 'vllm/vllm-omni',
  sglang: 'lmsysorg/sglang',
  ollama: 'ollama/ollama',
} as const satisfies Record<Backend, string>;

/** Backends whose image follows the spec's `vllm_version` pin; the others always run their `latest` tag. */
const versionedBackends: ReadonlySet<Backend> = new Set<Backend>(['vllm', 'vllm-omni']);

/** The placeholder an IK_IMAGE_MAP template may carry. */
export const versionPlaceholder = '{version}';

/**
 * The tag a backend's image takes: `v` + the pinned vLLM version for vllm and vllm-omni (`v0.6.3`), else `latest`.
 * sglang and ollama take no pin (the spec refuses vllm_version for them), so theirs is always `latest`.
 */
export function imageTag(backend: Backend, vllmVersion?: string): string {
  return vllmVersion !== undefined && versionedBackends.has(backend) ? `v${vllmVersion}` : 'latest';
}

/** The image DESIGN §8 names for a backend: `vllm/vllm-openai:v0.6.3`, `vllm/vllm-openai:latest`, `ollama/ollama:latest`… */
export function defaultImage(backend: Backend, vllmVersion?: string): string {
  return `${defaultImageRepositories[backend]}:${imageTag(backend, vllmVersion)}`;
}

/** IK_IMAGE_MAP as parsed: backend → image template; a backend left out runs its default image. */
export type ImageMap = Readonly<Partial<Record<string, string>>>;

/**
 * The image a worker runs for a backend. With an IK_IMAGE_MAP entry for the backend, its template is used and every
 * `{version}` in it becomes the tag `imageTag` gives (`v0.6.3`, or `latest` without a pin, and always for sglang and
 * ollama); a template without `{version}` is used as written. Without an entry: `defaultImage`.
 *
 *   resolveImage('vllm', '0.6.3', {vllm: 'mirror/vllm-openai:{version}'}) → 'mirror/vllm-openai:v0.6.3'
 *   resolveImage('vllm', undefined, {vllm: 'mirror/vllm-openai:{version}'}) → 'mirror/vllm-openai:latest'
 */
export function resolveImage(backend: Backend, vllmVersion: string | undefined, imageMap: ImageMap): string {
  const template = Object.hasOwn(imageMap, backend) ? imageMap[backend] : undefined;
  if (template === undefined) return defaultImage(backend, vllmVersion);
  return template.split(versionPlaceholder).join(imageTag(backend, vllmVersion));
}

/**
 * The name of an image without registry, path and tag: `registry:5000/mirror/vllm-openai:v0.6.3` → `vllm-openai`.
 * A mirror keeps the name, so this tells whether a mapped image is (a copy of) the default one.
 */
export function imageName(reference: string): string {
  const withoutDigest = reference.split('@')[0] ?? reference;
  const lastSlash = withoutDigest.lastIndexOf('/');
  const last = withoutDigest.slice(lastSlash + 1);
  const colon = last.indexOf(':');
  return colon >= 0 ? last.slice(0, colon) : last;
}

/** Whether `reference` is the backend's default image or a mirror of it (same image name, any registry or tag). */
export function isDefaultImageFamily(backend: Backend, reference: string): boolean {
  return imageName(reference) === imageName(defaultImageRepositories[backend]);
}

const templateSchema = z
  .string()
  .min(1)
  .max(512)
  .superRefine((template, ctx) => {
    if (/\s|[\x00-\x1f]/.test(template)) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(template)} has spaces or control characters` });
    const others = template.replaceAll(versionPlaceholder, '').match(/\{[^}]*\}/g);
    if (others)
      ctx.addIssue({ code: 'custom', message: `${others.join(', ')}: the only placeholder an image template takes is ${versionPlaceholder}` });
  });

/** IK_IMAGE_MAP's object: known backend names only, each an image reference with an optional `{version}`. */
export const imageMapSchema = z.partialRecord(z.enum(backends), templateSchema);

export type ParseImageMapResult = { ok: true; map: Partial<Record<Backend, string>> } | { ok: false; error: string };

const imageMapExample = '{"vllm":"mirror.example/vllm-openai:{version}"}';

/** Parses IK_IMAGE_MAP's text (undefined or empty: no overrides); the error says what is wrong and shows an example. */
export function parseImageMap(text: string | undefined): ParseImageMapResult {
  if (text === undefined || text.trim() === '') return { ok: true, map: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, error: `IK_IMAGE_MAP is not valid JSON; expected e.g. ${imageMapExample}` };
  }
  const parsed = imageMapSchema.safeParse(raw);
  if (parsed.success) return { ok: true, map: parsed.data };
  const problems = parsed.error.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message));
  return {
    ok: false,
    error: `IK_IMAGE_MAP maps backend names (${backends.join(', ')}) to image templates, e.g. ${imageMapExample}: ${problems.join('; ')}`,
  };
}
