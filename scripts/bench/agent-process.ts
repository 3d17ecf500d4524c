// A real agent as a child process for benchmarks: own temp data dir, the fake nvidia-smi; stopped by the caller, who
// also gets rid of the replicas it leaves (process groups recorded in its data dir, containers labelled with its worker).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ROOT } from './report.ts';
import { removeContainersLabelled } from './docker.ts';

const IK = join(ROOT, 'scripts/ik');
export const IK_SIM = join(ROOT, 'scripts/ik-sim');
export const FAKE_NVIDIA_SMI = join(ROOT, 'test/fake-nvidia-smi/nvidia-smi');
const KEEP_LOG_LINES = 200;
const BACKENDS = ['vllm', 'vllm-omni', 'sglang', 'ollama'] as const;

/** Every backend's program replaced by the simulator (process runtime). */
export const SIM_PROCESS_MAP = JSON.stringify(Object.fromEntries(BACKENDS.map((b) => [b, `${IK_SIM} ${b}`])));
/** Every backend's image replaced by the simulator image (docker runtime). */
export const SIM_IMAGE_MAP = JSON.stringify(Object.fromEntries(BACKENDS.map((b) => [b, 'ik-sim:dev'])));

const replicaRecordSchema = z.object({ pid: z.number().int().positive() });

export class BenchAgent {
  readonly dataDir = mkdtempSync(join(tmpdir(), 'ik-bench-agent-'));
  /** Set by the caller once the hub lists the worker; used to remove its containers. */
  workerId = '';
  private proc: ChildProcess | undefined;
  private lines: string[] = [];
  private partial = '';

  constructor(readonly name: string) {}

  /** Starts `ik agent` with the fake nvidia-smi (scenario `smi`) and `env` (the runtime's settings). */
  start(hubUrl: string, joinToken: string, env: Record<string, string>, smi = 'h100-x2'): void {
    const args = [IK, 'agent', '--hub', hubUrl, '--token', joinToken, '--name', this.name, '--data-dir', this.dataDir];
    const proc = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, IK_HUB_URL: '', IK_TOKEN: '', IK_LOG_LEVEL: 'info', IK_NVIDIA_SMI: FAKE_NVIDIA_SMI, IK_FAKE_SMI: smi, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    const onData = (d: Buffer) => {
      const parts = (this.partial + d.toString()).split('\n');
      this.partial = parts.pop() ?? '';
      this.lines.push(...parts);
      if (this.lines.length > KEEP_LOG_LINES) this.lines.splice(0, this.lines.length - KEEP_LOG_LINES);
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
  }

  get exited(): boolean {
    return !this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  logTail(lines = 20): string {
    return this.lines.slice(-lines).join('\n');
  }

  /** Ids of the replicas whose process the agent has recorded as running (process runtime). */
  recordedReplicas(): string[] {
    try {
      return readdirSync(join(this.dataDir, 'replicas')).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length));
    } catch {
      return [];
    }
  }

  /**
   * Stops the agent (SIGTERM, SIGKILL after 5 s), then what it left running: it detaches from its replicas on purpose
   * (the next agent would adopt them), so the bench kills their process groups and removes their containers.
   */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc && !this.exited) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        proc.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        proc.kill('SIGTERM');
      });
    }
    for (const id of this.recordedReplicas()) {
      try {
        const record = replicaRecordSchema.parse(JSON.parse(readFileSync(join(this.dataDir, 'replicas', `${id}.json`), 'utf8')));
        process.kill(-record.pid, 'SIGKILL');
      } catch {
        // already gone, or not a record we can read
      }
    }
    if (this.workerId) await removeContainersLabelled(`ik.worker=${this.workerId}`);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
