// The process runtime: runs the launch command on the host, detached in its own process group, its output in a
// bounded log file, and {replica, pid, start time, port} persisted so a restarted agent can adopt it safely.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { replicaLaunchSchema } from '../../shared/protocol/replicas.ts';
import { boundLogFile, fileSize, followLogFile, openForChild, readLogLines, readLogLinesFrom } from './log-file.ts';
import { parseSince } from './docker-logs.ts';
import type { ExitInfo, LogOptions, RecoveredReplica, ReplicaHandle, RunSpec, Runtime } from './types.ts';

const recordSchema = z.object({
  replica_id: z.string(),
  worker_id: z.string(),
  pid: z.number().int().positive(),
  /** Start time of the process (clock ticks since boot, /proc/<pid>/stat): a reused pid will not match. */
  start_ticks: z.number().int().nonnegative(),
  port: z.number().int(),
  launch: replicaLaunchSchema,
});
type ProcessRecord = z.infer<typeof recordSchema>;

/** Agent secrets never reach a backend through the inherited environment. */
const SECRET_VARIABLES = ['IK_TOKEN', 'IK_ADMIN_TOKEN', 'IK_JOIN_TOKEN'];

export function processStartTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number, startTicks: number): boolean {
  const ticks = processStartTicks(pid);
  if (ticks === null || ticks !== startTicks) return false;
  // A zombie is dead for our purposes.
  try {
    return !/^\S+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

export class ProcessRuntime implements Runtime {
  readonly kind = 'process' as const;
  private readonly children = new Map<string, { child: ChildProcess; exited: Promise<ExitInfo> }>();
  private readonly recordsDir: string;
  private readonly logsDir: string;
  private readonly boundTimer: NodeJS.Timeout;
  private readonly checkpointTimer: NodeJS.Timeout;
  /**
   * Process logs carry no times: each second the size of every log file is noted, so `since` can start reading at
   * the offset the file had then (to the second, while this agent runs; earlier lines count as older).
   */
  private readonly checkpoints = new Map<string, Array<[number, number]>>();

  constructor(private readonly dataDir: string) {
    this.recordsDir = join(dataDir, 'replicas');
    this.logsDir = join(dataDir, 'logs');
    mkdirSync(this.recordsDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.logsDir, { recursive: true, mode: 0o700 });
    this.boundTimer = setInterval(() => this.boundLogs(), 5000);
    this.boundTimer.unref();
    this.checkpointTimer = setInterval(() => this.noteLogSizes(), 1000);
    this.checkpointTimer.unref();
  }

  logPath(replicaId: string): string {
    return join(this.logsDir, `${replicaId}.log`);
  }

  async prepare(): Promise<void> {
    // Nothing to fetch: the program is installed on the host (or mapped with IK_PROCESS_MAP).
  }

  async start(spec: RunSpec): Promise<ReplicaHandle> {
    const replicaId = spec.launch.replica_id;
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of SECRET_VARIABLES) delete env[name];
    Object.assign(env, spec.env);
    const [program, ...args] = spec.argv;
    if (!program) throw new Error('the launch command is empty');
    const log = openForChild(this.logPath(replicaId));
    let child: ChildProcess;
    try {
      child = spawn(program, args, { detached: true, stdio: ['ignore', log, log], env });
    } finally {
      closeSync(log);
    }
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', (err: NodeJS.ErrnoException) =>
        reject(new Error(err.code === 'ENOENT' ? `program not found: ${program} (install it, or map the backend with IK_PROCESS_MAP)` : `cannot start ${program}: ${err.message}`)),
      );
    });
    const exited = new Promise<ExitInfo>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal, reason: code !== null ? `exited with code ${code}` : `was killed by ${signal}` })),
    );
    child.unref();
    this.children.set(replicaId, { child, exited });
    const record: ProcessRecord = {
      replica_id: replicaId,
      worker_id: spec.workerId,
      pid,
      start_ticks: processStartTicks(pid) ?? 0,
      port: spec.port,
      launch: spec.launch,
    };
    writeFileSync(join(this.recordsDir, `${replicaId}.json`), JSON.stringify(record), { mode: 0o600 });
    return { replicaId, runtime: 'process', containerId: null, pid, port: spec.port };
  }

  wait(handle: ReplicaHandle): Promise<ExitInfo> {
    const own = this.children.get(handle.replicaId);
    if (own) return own.exited;
    // Adopted from an earlier agent: not our child, so watch the pid (its exit code is not ours to read).
    const record = this.readRecord(handle.replicaId);
    return new Promise((resolve) => {
      const check = () => {
        if (record && isAlive(record.pid, record.start_ticks)) return void setTimeout(check, 1000).unref();
        resolve({ code: null, signal: null, reason: 'the process exited (adopted from an earlier agent: its exit code is unknown)' });
      };
      check();
    });
  }

  async isRunning(handle: ReplicaHandle): Promise<boolean> {
    const record = this.readRecord(handle.replicaId);
    return record !== undefined && isAlive(record.pid, record.start_ticks);
  }

  async stop(handle: ReplicaHandle, graceMs: number): Promise<void> {
    const record = this.readRecord(handle.replicaId);
    if (record) {
      // The whole group goes, also when its leader already died: vLLM's engine processes would keep their GPU memory.
      const members = () => groupMembers(record.pid, record.start_ticks);
      signalAll(members(), 'SIGTERM');
      const deadline = Date.now() + graceMs;
      while (Date.now() < deadline && members().length > 0) await new Promise((r) => setTimeout(r, 50));
      signalAll(members(), 'SIGKILL');
    }
    // Our own child is reaped through its exit event; wait for it so no zombie is left behind.
    await this.children.get(handle.replicaId)?.exited;
    this.children.delete(handle.replicaId);
    rmSync(join(this.recordsDir, `${handle.replicaId}.json`), { force: true });
  }

  async lastLines(handle: ReplicaHandle, n: number): Promise<string[]> {
    return readLogLines(this.logPath(handle.replicaId)).slice(-n);
  }

  async *logs(handle: ReplicaHandle, opts: LogOptions): AsyncIterable<string[]> {
    const path = this.logPath(handle.replicaId);
    const offset = fileSize(path);
    if (opts.since !== null) this.noteLogSizes();
    const from = opts.since === null ? 0 : this.offsetAt(handle.replicaId, parseSince(opts.since) * 1000);
    const lines = from === 0 ? readLogLines(path) : readLogLinesFrom(path, from, offset);
    yield opts.tail === null ? lines : lines.slice(-opts.tail);
    if (opts.follow) yield* followLogFile(path, offset, opts.signal);
  }

  /** The log file's size at the last checkpoint at or before `timeMs` (0 when none is that old). */
  private offsetAt(replicaId: string, timeMs: number): number {
    let offset = 0;
    for (const [at, size] of this.checkpoints.get(replicaId) ?? []) {
      if (at > timeMs) break;
      offset = size;
    }
    return offset;
  }

  private noteLogSizes(): void {
    const now = Date.now();
    for (const file of readdirSync(this.logsDir)) {
      if (!file.endsWith('.log')) continue;
      const replicaId = file.slice(0, -'.log'.length);
      const size = fileSize(join(this.logsDir, file));
      const notes = this.checkpoints.get(replicaId) ?? [];
      if (notes.length > 0 && notes[notes.length - 1]![1] === size) continue;
      // A smaller size means the file was bounded: earlier offsets no longer point into it.
      if (notes.length > 0 && notes[notes.length - 1]![1] > size) notes.length = 0;
      notes.push([now, size]);
      if (notes.length > 10_000) notes.splice(0, notes.length - 10_000);
      this.checkpoints.set(replicaId, notes);
    }
  }

  async recover(workerId: string): Promise<RecoveredReplica[]> {
    const found: RecoveredReplica[] = [];
    for (const file of readdirSync(this.recordsDir).filter((f) => f.endsWith('.json'))) {
      const record = this.readRecord(file.slice(0, -'.json'.length));
      // A record of another worker (a data dir reused by a different registration) is not ours to adopt.
      if (!record || record.worker_id !== workerId) continue;
      found.push({
        handle: { replicaId: record.replica_id, runtime: 'process', containerId: null, pid: record.pid, port: record.port },
        launch: record.launch,
        running: isAlive(record.pid, record.start_ticks),
      });
    }
    return found;
  }

  /** Forgets a replica that ended, keeping its log for a while (read after a failure). */
  forget(replicaId: string): void {
    rmSync(join(this.recordsDir, `${replicaId}.json`), { force: true });
  }

  close(): void {
    clearInterval(this.boundTimer);
    clearInterval(this.checkpointTimer);
  }

  private readRecord(replicaId: string): ProcessRecord | undefined {
    try {
      return recordSchema.parse(JSON.parse(readFileSync(join(this.recordsDir, `${replicaId}.json`), 'utf8')));
    } catch {
      return undefined;
    }
  }

  private boundLogs(): void {
    for (const file of readdirSync(this.logsDir)) if (file.endsWith('.log')) boundLogFile(join(this.logsDir, file));
  }
}

/**
 * The live processes of the replica's process group: pgid is the leader's pid, and a member started no earlier than
 * the leader (a later group that reuses the pid is someone else's).
 */
export function groupMembers(pgid: number, notBeforeTicks: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // After the command name: state, ppid, pgrp …, starttime is the 20th field from here.
      if (Number(fields[2]) === pgid && fields[0] !== 'Z' && Number(fields[19]) >= notBeforeTicks) members.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return members;
}

function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}
