// Waiting for a replica's container to end, and why it ended in words (exit code, signal, out of memory, engine gone).
// An engine that restarts under the agent is waited out for a while: a container that survived it is watched on.
import { constants } from 'node:os';
import { z } from 'zod';
import { describeEngineError, engineCall, isNotFound, type Engine } from './docker-engine.ts';
import type { ExitInfo } from './types.ts';

/** How long an engine that went away may take to come back before its replicas count as lost. */
export const ENGINE_RETURN_MS = 30_000;

const stateSchema = z
  .object({
    Running: z.boolean().default(false),
    OOMKilled: z.boolean().default(false),
    ExitCode: z.number().int().default(0),
    Error: z.string().default(''),
  })
  .loose();
type ContainerState = z.infer<typeof stateSchema>;

const waitResultSchema = z.object({ StatusCode: z.number().int(), Error: z.object({ Message: z.string().default('') }).loose().nullish() }).loose();

const signalNames = new Map<number, string>(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/** The exit as the supervisor reports it: `it ${reason}` reads as a sentence. */
export function exitFromState(state: ContainerState, context = ''): ExitInfo {
  const code = state.ExitCode;
  if (state.OOMKilled) return { code, signal: 'SIGKILL', reason: `was killed: out of memory${context}` };
  if (state.Error) return { code, signal: null, reason: `could not run: ${state.Error}${context}` };
  // The init process (docker-init) exits 127/126 when it cannot run the launch command's program.
  if (code === 127) return { code, signal: null, reason: `exited with code 127: the launch command's program is not in the image (check the image, IK_IMAGE_MAP and the command)${context}` };
  if (code === 126) return { code, signal: null, reason: `exited with code 126: the launch command's program cannot be executed in the image${context}` };
  const signal = code > 128 ? signalNames.get(code - 128) : undefined;
  if (signal) return { code, signal, reason: `was killed by ${signal} (exit code ${code})${context}` };
  return { code, signal: null, reason: `exited with code ${code}${context}` };
}

const gone = (context = ''): ExitInfo => ({ code: null, signal: null, reason: `is gone: its container was removed${context}` });

async function inspectState(engine: Engine, containerRef: string, timeoutMs?: number): Promise<ContainerState | 'gone'> {
  try {
    const info = await engineCall(
      engine,
      `inspecting container ${containerRef}`,
      (abortSignal) => engine.docker.getContainer(containerRef).inspect({ abortSignal }),
      timeoutMs ? { timeoutMs } : {},
    );
    return stateSchema.parse(info.State ?? {});
  } catch (err) {
    if (isNotFound(err)) return 'gone';
    throw err;
  }
}

/** Polls until the engine answers again; null when it stays away past `returnMs` (or the signal aborts). */
async function engineBack(engine: Engine, containerRef: string, signal: AbortSignal, returnMs: number): Promise<ContainerState | 'gone' | null> {
  const deadline = Date.now() + returnMs;
  while (Date.now() < deadline && !signal.aborted) {
    try {
      return await inspectState(engine, containerRef, 5000);
    } catch {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
    }
  }
  return null;
}

/** Resolves (never rejects) when the container is no longer running, with why. */
export async function waitForExit(engine: Engine, containerRef: string, signal: AbortSignal, returnMs = ENGINE_RETURN_MS): Promise<ExitInfo> {
  const container = engine.docker.getContainer(containerRef);
  let context = '';
  for (;;) {
    let statusCode: number | null = null;
    try {
      const result = waitResultSchema.safeParse(await container.wait({ condition: 'not-running', abortSignal: signal }));
      statusCode = result.success ? result.data.StatusCode : null;
    } catch (err) {
      if (signal.aborted) return { code: null, signal: null, reason: 'is no longer watched: the agent stopped watching it' };
      if (isNotFound(err)) return gone(context);
      const failure = describeEngineError(err, engine.address, `waiting for container ${containerRef}`, null);
      if (!failure.unreachable) return { code: null, signal: null, reason: `could not be watched: ${failure.message}` };
      const back = await engineBack(engine, containerRef, signal, returnMs);
      if (signal.aborted) return { code: null, signal: null, reason: 'is no longer watched: the agent stopped watching it' };
      if (back === null) {
        return { code: null, signal: null, reason: `lost the Docker engine: it went away and did not come back within ${Math.round(returnMs / 1000)} s (${failure.message})` };
      }
      context = ' after the Docker engine restarted';
      if (back === 'gone') return gone(context);
      if (back.Running) continue; // it survived the restart (live-restore): keep watching
      return exitFromState(back, context);
    }
    try {
      const state = await inspectState(engine, containerRef);
      if (state === 'gone') {
        return statusCode === null ? gone(context) : exitFromState({ Running: false, OOMKilled: false, ExitCode: statusCode, Error: '' }, context);
      }
      if (state.Running) continue; // restarted by someone else between the wait and the inspect
      return exitFromState(state, context);
    } catch (err) {
      if (statusCode !== null) return exitFromState({ Running: false, OOMKilled: false, ExitCode: statusCode, Error: '' }, context);
      return { code: null, signal: null, reason: `could not be watched: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
}
