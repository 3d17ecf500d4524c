// Docker helpers for tests: is an engine here (in CI it must be), the simulator image, and cleanup by label.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './processes.ts';

export function dockerAvailable(): boolean {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 15_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Options for a Docker test: skipped without an engine, except in CI, where a missing engine must fail the run
 * (DESIGN §10: Docker tests fail, not skip, when CI=true).
 */
export function dockerTestOptions(): { skip: string | false } {
  if (dockerAvailable() || process.env.CI === 'true') return { skip: false };
  return { skip: 'no Docker engine answers here (in CI this fails instead)' };
}

export function ensureSimImage(): void {
  try {
    execFileSync('docker', ['image', 'inspect', 'ik-sim:dev'], { stdio: 'ignore' });
  } catch {
    execFileSync(join(ROOT, 'scripts/build-sim-image.sh'), { stdio: 'inherit', timeout: 120_000 });
  }
}

export function docker(args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8', timeout: 60_000 }).trim();
}

export function containersOf(workerId: string): string[] {
  return docker(['ps', '-aq', '--filter', `label=ik.worker=${workerId}`]).split('\n').filter(Boolean);
}

export function removeContainersOf(workerId: string): void {
  const ids = containersOf(workerId);
  if (ids.length > 0) docker(['rm', '-f', ...ids]);
}

/** Every backend mapped to the simulator image, for IK_IMAGE_MAP. */
export const SIM_IMAGE_MAP = JSON.stringify({ vllm: 'ik-sim:dev', 'vllm-omni': 'ik-sim:dev', sglang: 'ik-sim:dev', ollama: 'ik-sim:dev' });
