// Ollama: `ollama serve` on OLLAMA_HOST=127.0.0.1:PORT, then /api/pull of the model (progress reported);
// ready when /api/tags lists the model.
import { z } from 'zod';
import type { BackendDriver } from './types.ts';
import { describeFetchError, getJson } from './http.ts';

const tagsSchema = z.object({ models: z.array(z.object({ name: z.string() }).loose()).default([]) }).loose();
const progressSchema = z.object({ status: z.string().optional(), total: z.number().optional(), completed: z.number().optional(), error: z.string().optional() }).loose();

/** Ollama names a model `llama3.2` or `llama3.2:latest`: both mean the same. */
function sameModel(listed: string, wanted: string): boolean {
  const norm = (n: string) => (n.includes(':') ? n : `${n}:latest`);
  return norm(listed) === norm(wanted);
}

export const ollama: BackendDriver = {
  name: 'ollama',
  argv: () => ['ollama', 'serve'],
  programWords: () => 1,
  env: (_spec, port) => ({ OLLAMA_HOST: `127.0.0.1:${port}` }),
  async probe(spec, port, signal) {
    try {
      const tags = await getJson(port, '/api/tags', signal);
      const parsed = tagsSchema.safeParse(tags.body);
      if (tags.status !== 200 || !parsed.success) return { ready: false, detail: `/api/tags answers ${tags.status}` };
      if (!parsed.data.models.some((m) => sameModel(m.name, spec.model))) return { ready: false, detail: `${spec.model} is not pulled yet` };
      return { ready: true, detail: 'ready' };
    } catch (err) {
      return { ready: false, detail: `/api/tags: ${describeFetchError(err)}` };
    }
  },
  async prepareModel(spec, port, onProgress, signal) {
    // Wait for the server itself first: /api/version answers as soon as it listens.
    for (;;) {
      signal.throwIfAborted();
      const up = await getJson(port, '/api/version', signal).catch(() => null);
      if (up?.status === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const res = await fetch(`http://127.0.0.1:${port}/api/pull`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: spec.model, stream: true }),
      signal,
    });
    if (!res.ok || !res.body) throw new Error(`ollama pull of ${spec.model} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    let buffered = '';
    const decoder = new TextDecoder();
    for await (const chunk of res.body) {
      buffered += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        let parsed;
        try {
          parsed = progressSchema.parse(JSON.parse(line));
        } catch {
          continue;
        }
        // A failed pull still streams 200: the error is in a progress line.
        if (parsed.error) throw new Error(`ollama pull of ${spec.model} failed: ${parsed.error}`);
        const percent = parsed.total && parsed.completed !== undefined ? Math.min(100, (parsed.completed / parsed.total) * 100) : null;
        onProgress(parsed.status ?? 'pulling', percent);
      }
    }
  },
  metricsPath: '/metrics',
};
