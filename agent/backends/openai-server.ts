// Shared launch and readiness logic of the engines with an OpenAI-compatible server (vLLM, vLLM-omni, SGLang).
import type { WorkloadSpec } from '../../shared/spec/workload-spec.ts';
import { injectedFlags } from '../../shared/spec/backends.ts';
import { tokenizeCommand } from '../../shared/spec/command-line.ts';
import type { ReadinessProbe } from './types.ts';
import { describeFetchError, getJson, modelIds } from './http.ts';

/** The command's words with ikhub's flags appended (the spec may not carry them: validation refuses them). */
export function withInjectedFlags(command: string | string[], port: number, servedModelName: string): string[] {
  const argv = typeof command === 'string' ? tokenizeCommand(command) : command;
  const [host, portFlag, served] = injectedFlags;
  return [...argv, host, '127.0.0.1', portFlag, String(port), served, servedModelName];
}

/** Ready when /health answers 200 and, if asked, /v1/models lists the served model. */
export async function probeOpenAiServer(spec: WorkloadSpec, port: number, signal: AbortSignal, checkModels: boolean): Promise<ReadinessProbe> {
  try {
    const health = await getJson(port, '/health', signal);
    if (health.status !== 200) return { ready: false, detail: `/health answers ${health.status}` };
    if (!checkModels) return { ready: true, detail: 'ready' };
    const models = await getJson(port, '/v1/models', signal);
    const ids = modelIds(models.body);
    if (models.status !== 200 || !ids.includes(spec.model)) {
      return { ready: false, detail: `/v1/models does not list ${spec.model} yet (lists ${ids.join(', ') || 'nothing'})` };
    }
    return { ready: true, detail: 'ready' };
  } catch (err) {
    return { ready: false, detail: `/health: ${describeFetchError(err)}` };
  }
}
