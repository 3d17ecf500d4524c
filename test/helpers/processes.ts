// Real hubs and agents as child processes on loopback, for integration tests; every one is stopped after the test file.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { newSecret } from '../../shared/secrets.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const IK = join(ROOT, 'scripts/ik');
export const FAKE_NVIDIA_SMI = join(ROOT, 'test/fake-nvidia-smi/nvidia-smi');

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
const agentDataDirs = new Set<string>();

after(async () => {
  await Promise.all([...children].map((c) => stopChild(c, 'SIGKILL')));
  // Replicas of the process runtime outlive their agent by design: stop every one the tests' agents started.
  for (const dir of agentDataDirs) killProcessReplicas(dir);
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** Kills the process groups of the replicas recorded in an agent's data dir (test cleanup). */
export function killProcessReplicas(dataDir: string): void {
  const records = join(dataDir, 'replicas');
  let files: string[] = [];
  try {
    files = readdirSync(records).filter((f) => f.endsWith('.json'));
  } catch {
    return;
  }
  for (const f of files) {
    try {
      const { pid } = JSON.parse(readFileSync(join(records, f), 'utf8')) as { pid: number };
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export function tempDir(prefix = 'ik-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/** A child process whose output is kept, so a test can wait for a line and show the log when it fails. */
export class Child {
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: Array<() => void> = [];

  constructor(readonly proc: ChildProcess) {
    children.add(proc);
    const onData = (d: Buffer) => {
      this.output += d.toString();
      for (const w of this.waiters) w();
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    this.exited = new Promise((resolve) =>
      proc.once('exit', (code, signal) => {
        children.delete(proc);
        for (const w of this.waiters) w();
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Resolves with the first output line matching `re`; rejects if the process exits first or time runs out. */
  waitForLine(re: RegExp, timeoutMs = 20_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const line = this.output.split('\n').find((l) => re.test(l));
        if (line !== undefined) return done(() => resolve(line));
        if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
          return done(() => reject(new Error(`process exited before printing ${re}:\n${this.output.slice(-4000)}`)));
        }
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms:\n${this.output.slice(-4000)}`))), timeoutMs);
      const done = (fn: () => void) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        fn();
      };
      this.waiters.push(check);
      check();
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<unknown> {
    return stopChild(this.proc, signal);
  }
}

function stopChild(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    proc.once('exit', () => (clearTimeout(t), resolve()));
    proc.kill(signal);
  });
}

export function spawnIk(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Child {
  const proc = spawn(process.execPath, [IK, ...args], {
    cwd,
    env: { ...process.env, IK_HUB_URL: '', IK_TOKEN: '', IK_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Child(proc);
}

export interface TestHub {
  child: Child;
  url: string;
  dataDir: string;
  adminToken: string;
  joinToken: string;
  env: NodeJS.ProcessEnv;
  stop(signal?: NodeJS.Signals): Promise<unknown>;
  /** Starts the hub again on the same data dir and port (a restart). */
  restart(): Promise<TestHub>;
}

/** Fast liveness settings, so `down` arrives in well under a second. */
export const FAST_HEARTBEATS = {
  IK_HEARTBEAT_INTERVAL_MS: '200',
  IK_INVENTORY_INTERVAL_MS: '200',
  IK_PING_INTERVAL_MS: '1000',
  IK_RESYNC_MS: '500',
  IK_RESTART_BACKOFF_BASE_MS: '300',
};

export async function startHub(opts: { env?: NodeJS.ProcessEnv; dataDir?: string; port?: number } = {}): Promise<TestHub> {
  const dataDir = opts.dataDir ?? tempDir('ik-hub-');
  const adminToken = opts.env?.IK_ADMIN_TOKEN ?? newSecret('sdk').secret;
  const joinToken = opts.env?.IK_JOIN_TOKEN ?? newSecret('join').secret;
  const env = { ...FAST_HEARTBEATS, IK_ADMIN_TOKEN: adminToken, IK_JOIN_TOKEN: joinToken, ...opts.env };
  const child = spawnIk(['hub', '--json', '--host', '127.0.0.1', '--port', String(opts.port ?? 0), '--data-dir', dataDir], env);
  const banner = JSON.parse(await child.waitForLine(/"hub_url"/)) as { hub_url: string };
  const url = banner.hub_url;
  const hub: TestHub = {
    child,
    url,
    dataDir,
    adminToken,
    joinToken,
    env,
    stop: (signal = 'SIGTERM') => child.kill(signal),
    restart: () => startHub({ env, dataDir, port: Number(new URL(url).port) }),
  };
  return hub;
}

export interface AgentOptions {
  hub: TestHub | string;
  token?: string;
  name: string;
  dataDir?: string;
  /** Fake nvidia-smi scenario (test/fixtures/nvidia-smi/<scenario>); null: a binary that does not exist. */
  smi?: string | null;
  env?: NodeJS.ProcessEnv;
}

export interface TestAgent {
  child: Child;
  dataDir: string;
  options: AgentOptions;
}

export function startAgent(opts: AgentOptions): TestAgent {
  const hubUrl = typeof opts.hub === 'string' ? opts.hub : opts.hub.url;
  const token = opts.token ?? (typeof opts.hub === 'string' ? undefined : opts.hub.joinToken);
  const dataDir = opts.dataDir ?? tempDir('ik-agent-');
  agentDataDirs.add(dataDir);
  const smiEnv =
    opts.smi === null
      ? { IK_NVIDIA_SMI: join(dataDir, 'no-such-nvidia-smi') }
      : { IK_NVIDIA_SMI: FAKE_NVIDIA_SMI, IK_FAKE_SMI: opts.smi ?? 'h100-x1' };
  const args = ['agent', '--hub', hubUrl, '--name', opts.name, '--data-dir', dataDir, ...(token ? ['--token', token] : [])];
  const child = spawnIk(args, { IK_RUNTIME: 'process', IK_PROCESS_MAP: SIM_PROCESS_MAP, ...smiEnv, ...opts.env });
  return { child, dataDir, options: opts };
}

export const IK_SIM = join(ROOT, 'scripts/ik-sim');
/** Every backend's program mapped to the simulator, for the process runtime. */
export const SIM_PROCESS_MAP = JSON.stringify({
  vllm: `${IK_SIM} vllm`,
  'vllm-omni': `${IK_SIM} vllm-omni`,
  sglang: `${IK_SIM} sglang`,
  ollama: `${IK_SIM} ollama`,
});

export interface IkResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one `ik` command to completion (the CLI as users run it). */
export function runIk(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Promise<IkResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [IK, ...args], {
      cwd,
      env: { ...process.env, IK_HUB_URL: '', IK_TOKEN: '', IK_DATA_DIR: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(proc);
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    proc.once('error', reject);
    proc.once('close', (code) => {
      children.delete(proc);
      resolve({ code, stdout, stderr });
    });
  });
}
