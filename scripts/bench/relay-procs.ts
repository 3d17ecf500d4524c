// Child processes for the relay benchmark: each in its own process group (stopped as a group, so nothing it started
// outlives it), its output kept for error messages; plus free ports, executable look-up and CPU/RSS watching.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { clockTicksPerSecond, processCpuMs, processRssMib } from './proc-stats.ts';

const KEEP_OUTPUT_CHARS = 16_000;

export class Proc {
  private output = '';
  private waiters = new Set<() => void>();
  readonly exited: Promise<void>;
  private exitInfo: string | null = null;

  constructor(
    readonly name: string,
    private readonly proc: ChildProcess,
  ) {
    const onData = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-KEEP_OUTPUT_CHARS);
      for (const w of this.waiters) w();
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => {
      proc.once('error', (err) => {
        this.exitInfo = `failed to start: ${err.message}`;
        for (const w of this.waiters) w();
        resolve();
      });
      proc.once('exit', (code, signal) => {
        this.exitInfo = `exited (code ${code}, signal ${signal})`;
        for (const w of this.waiters) w();
        resolve();
      });
    });
  }

  static spawn(name: string, command: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Proc {
    // detached: its own process group, so a stop reaches whatever it started (nginx workers, a shell's children).
    const proc = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    return new Proc(name, proc);
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): boolean {
    return this.exitInfo === null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  tail(lines = 30): string {
    return this.output.split('\n').slice(-lines).join('\n');
  }

  /** Resolves with the first captured match of `re` in the output; rejects if the process exits first or time runs out. */
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const finish = (fn: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        fn();
      };
      const check = () => {
        const m = re.exec(this.output);
        if (m) return finish(() => resolve(m));
        if (this.exitInfo !== null) return finish(() => reject(new Error(`${this.name} ${this.exitInfo} before printing ${re}:\n${this.tail()}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`${this.name} printed nothing matching ${re} within ${timeoutMs} ms:\n${this.tail()}`))), timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** `signal` to the whole process group, SIGKILL to the group after `graceMs`; resolves once the process is gone. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
    const pid = this.proc.pid;
    if (pid === undefined) return;
    if (this.running) {
      killGroup(pid, signal);
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    // Whatever the leader left behind in its group (nginx workers, a replica's children) goes too.
    killGroup(pid, 'SIGKILL');
  }
}

export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** A port that was free a moment ago on 127.0.0.1 (for programs that cannot be told to pick one themselves). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The absolute path of an executable on PATH (and in the sbin directories, where Debian puts nginx), or null. */
export function findExecutable(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return null;
}

/** Children of a process (nginx's workers), from /proc; empty where /proc is not there. */
export function childPids(parent: number): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export interface ProcUsage {
  /** CPU time over the window as a percentage of one core (null where /proc could not be read). */
  cpuPct: number | null;
  /** CPU time over the window in ms. */
  cpuMs: number | null;
  /** Highest RSS seen while watching (sampled every 250 ms), MiB. */
  rssMaxMib: number | null;
}

/** Watches the CPU time and RSS of some processes over a window: start(), then stop() → figures per name. */
export class UsageWatch {
  private readonly startCpu = new Map<string, number | null>();
  private readonly rssMax = new Map<string, number | null>();
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly pids: Record<string, number[]>) {}

  private machineStart: number | null = null;

  start(): void {
    this.startedAt = performance.now();
    this.machineStart = machineBusyMs();
    for (const [name, pids] of Object.entries(this.pids)) {
      this.startCpu.set(name, sumOrNull(pids.map(processCpuMs)));
      this.rssMax.set(name, sumOrNull(pids.map(processRssMib)));
    }
    this.timer = setInterval(() => this.sampleRss(), 250);
  }

  stop(): Record<string, ProcUsage> {
    clearInterval(this.timer);
    const wallMs = performance.now() - this.startedAt;
    this.sampleRss();
    const out: Record<string, ProcUsage> = {};
    for (const [name, pids] of Object.entries(this.pids)) {
      const before = this.startCpu.get(name) ?? null;
      const after = sumOrNull(pids.map(processCpuMs));
      const cpuMs = before !== null && after !== null ? after - before : null;
      out[name] = { cpuMs, cpuPct: cpuMs === null ? null : (100 * cpuMs) / wallMs, rssMaxMib: this.rssMax.get(name) ?? null };
    }
    const machineEnd = machineBusyMs();
    const machineMs = this.machineStart !== null && machineEnd !== null ? machineEnd - this.machineStart : null;
    this.machine = { cpuMs: machineMs, cpuPct: machineMs === null ? null : (100 * machineMs) / wallMs, rssMaxMib: null };
    return out;
  }

  /** The whole machine's busy CPU time over the window (every process, ours and others'), after stop(). */
  machine: ProcUsage = { cpuMs: null, cpuPct: null, rssMaxMib: null };

  private sampleRss(): void {
    for (const [name, pids] of Object.entries(this.pids)) {
      const now = sumOrNull(pids.map(processRssMib));
      const prev = this.rssMax.get(name) ?? null;
      if (now !== null && (prev === null || now > prev)) this.rssMax.set(name, now);
    }
  }
}

function sumOrNull(values: Array<number | null>): number | null {
  if (values.length === 0 || values.some((v) => v === null)) return null;
  return (values as number[]).reduce((a, b) => a + b, 0);
}

/** Busy CPU time of the whole machine (all cores, everything but idle and iowait) from /proc/stat, ms; null elsewhere. */
export function machineBusyMs(): number | null {
  let stat: string;
  try {
    stat = readFileSync('/proc/stat', 'utf8');
  } catch {
    return null;
  }
  const line = stat.slice(0, stat.indexOf('\n'));
  if (!line.startsWith('cpu ')) return null;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user).
  const busy = f[0]! + f[1]! + f[2]! + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return (busy * 1000) / clockTicksPerSecond();
}
