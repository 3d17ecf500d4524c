// The runtime interface (as Nomad's driver interface): how a replica is started, stopped, inspected, listed,
// read and recovered; Docker and plain processes implement it.
import type { ReplicaLaunch } from '../../shared/protocol/replicas.ts';

/** Everything a runtime needs to run one replica, already resolved by the backend driver. */
export interface RunSpec {
  launch: ReplicaLaunch;
  workerId: string;
  /** Image for container runtimes (after IK_IMAGE_MAP). */
  image: string;
  /** The full command line: the program (entrypoint) first. */
  argv: string[];
  env: Record<string, string>;
  /** The port the backend listens on, on 127.0.0.1. */
  port: number;
  /** The GPU (or MIG) UUIDs the replica may use. */
  gpuUuids: string[];
  /** Tensor/pipeline parallel replicas need shared memory between GPU processes. */
  sharedMemory: boolean;
  hfCacheDir: string;
}

export interface ReplicaHandle {
  replicaId: string;
  runtime: 'docker' | 'process';
  containerId: string | null;
  pid: number | null;
  port: number;
}

export interface ExitInfo {
  code: number | null;
  signal: string | null;
  /** Why it ended, in words (exit code, OOM, engine gone …). */
  reason: string;
}

/** A replica found running when the agent starts (labelled container or persisted process record). */
export interface RecoveredReplica {
  handle: ReplicaHandle;
  launch: ReplicaLaunch;
  running: boolean;
}

export interface LogOptions {
  tail: number | null;
  /** ISO time or a duration like `10m`: only lines after it. */
  since: string | null;
  follow: boolean;
  signal: AbortSignal;
}

export interface PullProgress {
  status: string;
  percent: number | null;
}

export interface Runtime {
  readonly kind: 'docker' | 'process';
  /** Gets what `start` needs (the image for Docker), reporting progress; throws with a clear reason on failure. */
  prepare(spec: RunSpec, onProgress: (p: PullProgress) => void, signal: AbortSignal): Promise<void>;
  start(spec: RunSpec): Promise<ReplicaHandle>;
  /** Resolves when the replica ends (it may already have ended). */
  wait(handle: ReplicaHandle): Promise<ExitInfo>;
  /** Stops the replica (SIGTERM, then SIGKILL after graceMs) and removes what start created. */
  stop(handle: ReplicaHandle, graceMs: number): Promise<void>;
  isRunning(handle: ReplicaHandle): Promise<boolean>;
  /** Lines of the replica's log, oldest first; with follow, keeps yielding until the signal aborts. */
  logs(handle: ReplicaHandle, opts: LogOptions): AsyncIterable<string[]>;
  /** The last lines of the log, for failure reports. */
  lastLines(handle: ReplicaHandle, n: number): Promise<string[]>;
  /** Replicas this worker started before (labelled containers, persisted processes). */
  recover(workerId: string): Promise<RecoveredReplica[]>;
  /** Ends the runtime's own timers and watches; the replicas keep running for the next agent to adopt. */
  close?(): void;
  /** Removes what this worker left behind for replicas not in `keep` (leftover containers); returns their replica ids. */
  reap?(workerId: string, keep: Set<string>): Promise<string[]>;
}
