// The startup baseline: the simulator's own time from launch to /health 200, started by hand (a process, or a
// container on the host network), with nothing of ikhub in between.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { deadline } from '../../shared/abort.ts';
import { IK_SIM } from './agent-process.ts';
import { docker, SIM_IMAGE } from './docker.ts';

const HEALTH_LIMIT_MS = 20_000;
export const POLL_EVERY_MS = 10;
/** Containers the baseline starts carry this label, so cleanup finds one left by an error. */
export const BASELINE_LABEL = `ik.bench=startup-${process.pid}`;

/** A TCP port free on 127.0.0.1 at this moment (the agent allocates its ports the same way). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('could not find a free port'))));
    });
  });
}

/** Polls GET /health every ~10 ms until it answers 200; throws after 20 s, when `failed()` says why, or on abort. */
async function waitHealthy(port: number, signal: AbortSignal, failed: () => string | undefined): Promise<void> {
  const until = performance.now() + HEALTH_LIMIT_MS;
  for (;;) {
    const why = failed();
    if (why) throw new Error(why);
    if (performance.now() > until) throw new Error(`the simulator on port ${port} did not answer /health 200 within ${HEALTH_LIMIT_MS} ms`);
    const started = performance.now();
    const limit = deadline(1000, signal);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: limit.signal });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      if (signal.aborted) throw signal.reason;
      // not listening yet
    } finally {
      limit.clear();
    }
    await sleep(Math.max(0, POLL_EVERY_MS - (performance.now() - started)), undefined, { signal });
  }
}

/** The launch words the agent uses for a vLLM spec (`vllm serve M` plus the flags it injects), after `vllm`. */
function vllmArgs(model: string, port: number): string[] {
  return ['serve', model, '--host', '127.0.0.1', '--port', String(port), '--served-model-name', model];
}

/** `scripts/ik-sim vllm serve M …` as its own process group, as the process runtime starts it; ms to /health 200. */
export async function simProcessToHealthy(model: string, signal: AbortSignal): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(IK_SIM, ['vllm', ...vllmArgs(model, port)], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, IK_SIM_STARTUP_MS: '0' },
  });
  let ended: string | undefined;
  child.once('exit', (code, sig) => (ended = `the simulator exited (code ${code}, signal ${sig}) before it was healthy`));
  child.once('error', (err) => (ended = `the simulator could not start: ${err.message}`));
  try {
    await waitHealthy(port, signal, () => ended);
    return performance.now() - started;
  } finally {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      try {
        process.kill(-child.pid, 'SIGKILL');
        await exited;
      } catch {
        // already gone
      }
    }
  }
}

/** `docker run --rm -d --network host ik-sim:dev vllm serve M …`; ms from the command to /health 200. */
export async function simContainerToHealthy(model: string, signal: AbortSignal): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const id = await docker(['run', '--rm', '-d', '--network', 'host', '--label', BASELINE_LABEL, '-e', 'IK_SIM_STARTUP_MS=0', SIM_IMAGE, 'vllm', ...vllmArgs(model, port)]);
  try {
    await waitHealthy(port, signal, () => undefined);
    return performance.now() - started;
  } finally {
    await docker(['rm', '-f', id]).catch(() => undefined);
  }
}
