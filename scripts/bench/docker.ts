// Docker for benchmarks: is an engine here, the simulator image (built when missing), and removal by label.
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './report.ts';

export const SIM_IMAGE = 'ik-sim:dev';
const run = promisify(execFile);

/** Why Docker cannot be used here, or null when an engine answers. */
export function dockerUnavailable(): string | null {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 15_000 });
    return null;
  } catch (err) {
    const code = err instanceof Error && 'code' in err ? err.code : undefined;
    return code === 'ENOENT' ? 'the docker CLI is not installed' : 'no Docker engine answers (`docker info` failed)';
  }
}

/** Builds ik-sim:dev with scripts/build-sim-image.sh unless the engine has it already; returns whether it built. */
export function ensureSimImage(): boolean {
  try {
    execFileSync('docker', ['image', 'inspect', SIM_IMAGE], { stdio: 'ignore', timeout: 15_000 });
    return false;
  } catch {
    execFileSync(join(ROOT, 'scripts/build-sim-image.sh'), { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 });
    return true;
  }
}

export async function docker(args: string[], timeoutMs = 30_000): Promise<string> {
  const { stdout } = await run('docker', args, { encoding: 'utf8', timeout: timeoutMs });
  return stdout.trim();
}

/** Ids of the containers (running or not) that carry `label` (`key=value`). */
export async function containersLabelled(label: string): Promise<string[]> {
  return (await docker(['ps', '-aq', '--filter', `label=${label}`])).split('\n').filter(Boolean);
}

/** Removes every container that carries `label`; never throws (cleanup). */
export async function removeContainersLabelled(label: string): Promise<void> {
  try {
    const ids = await containersLabelled(label);
    if (ids.length > 0) await docker(['rm', '-f', ...ids], 60_000);
  } catch {
    // the engine went away: nothing left to remove through it
  }
}
