// The Docker runtime: each replica runs in one labelled container on the host network (see docker-create.ts),
// which the agent creates, watches, reads, stops, adopts after a restart and reaps; restarts are the agent's own.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import Docker from 'dockerode';
import type { Logger } from '../../shared/logger.ts';
import { buildCreateOptions, containerName, decodeLaunch, LABELS, type DockerGpuMode } from './docker-create.ts';
import { engineAddress, engineCall, isConflict, isNotFound, type Engine } from './docker-engine.ts';
import { readLogLines, streamLogLines } from './docker-logs.ts';
import { ensureImage, PULL_STALL_MS } from './docker-pull.ts';
import { listWorkerContainers, reapContainers, removeContainer } from './docker-reaper.ts';
import { ENGINE_RETURN_MS, waitForExit } from './docker-wait.ts';
import type { ExitInfo, LogOptions, PullProgress, RecoveredReplica, ReplicaHandle, RunSpec, Runtime } from './types.ts';

export interface DockerRuntimeOptions {
  log: Logger;
  gpuMode: DockerGpuMode;
  /** The host directory shared by all replicas as their Hugging Face cache (a RunSpec may name its own). */
  hfCacheDir: string;
  /** The engine client; by default the one DOCKER_HOST (or /var/run/docker.sock) names. */
  docker?: Docker;
  /** A pull that reports no progress for this long is aborted (default 120 s). */
  pullStallMs?: number;
  /** How long an engine that went away may take to come back before its replicas count as lost (default 30 s). */
  engineReturnMs?: number;
}

/** Starting a GPU container runs the NVIDIA hook, which can take a while on a busy box. */
const START_TIMEOUT_MS = 60_000;

/** Errors the engine gives when starting, and what the operator can do about them. */
function startHint(message: string): string {
  if (/executable file not found|no such file or directory/i.test(message)) return ' (the image lacks the launch command\'s program: check the image, IK_IMAGE_MAP and the command)';
  if (/could not select device driver|unknown or invalid runtime|cdi/i.test(message)) {
    return ' (the engine cannot hand GPUs to containers this way: install the NVIDIA Container Toolkit, or set IK_DOCKER_GPU_MODE)';
  }
  if (/address already in use/i.test(message)) return ' (another process took the port: the agent will retry on a new one)';
  return '';
}

export class DockerRuntime implements Runtime {
  readonly kind = 'docker' as const;
  private readonly engine: Engine;
  private readonly log: Logger;
  /** Aborted by close(): ends waits and log follows that are still open. */
  private readonly closing = new AbortController();

  constructor(private readonly opts: DockerRuntimeOptions) {
    const docker = opts.docker ?? new Docker();
    this.engine = { docker, address: engineAddress(docker) };
    this.log = opts.log.child({ runtime: 'docker' });
  }

  async prepare(spec: RunSpec, onProgress: (p: PullProgress) => void, signal: AbortSignal): Promise<void> {
    await ensureImage(this.engine, spec.image, { onProgress, signal, stallMs: this.opts.pullStallMs ?? PULL_STALL_MS });
  }

  async start(spec: RunSpec): Promise<ReplicaHandle> {
    const replicaId = spec.launch.replica_id;
    // A bind source must be absolute (the default cache dir is relative to the agent's data dir).
    const hfCacheDir = resolve(spec.hfCacheDir || this.opts.hfCacheDir);
    // Built first: a spec that cannot run here (GPUs without a GPU mode) is refused before anything is created.
    const options = buildCreateOptions({ ...spec, hfCacheDir }, this.opts.gpuMode);
    // Docker would create a missing bind source owned by root; the agent creates it as itself.
    try {
      mkdirSync(hfCacheDir, { recursive: true });
    } catch (err) {
      throw new Error(`cannot create the Hugging Face cache ${hfCacheDir}: ${err instanceof Error ? err.message : String(err)} (set IK_HF_CACHE_DIR to a directory the agent may write)`);
    }
    const name = containerName(replicaId);
    const create = () => engineCall(this.engine, `creating container ${name}`, (abortSignal) => this.engine.docker.createContainer({ ...options, abortSignal }));
    let container: Docker.Container;
    try {
      container = await create();
    } catch (err) {
      if (!isConflict(err)) throw err;
      // A container of the same replica is left over (an earlier run, or an agent that died mid-start): it goes.
      this.log.warn({ replicaId, name }, 'removing a leftover container of the same replica');
      await removeContainer(this.engine, name, 5);
      container = await create();
    }
    try {
      await engineCall(this.engine, `starting container ${name}`, (abortSignal) => container.start({ abortSignal }), { timeoutMs: START_TIMEOUT_MS });
    } catch (err) {
      // A container that never ran is no use to anyone: remove it, and say what the engine said.
      await removeContainer(this.engine, container.id, 0).catch((e: Error) => this.log.warn({ replicaId, err: e.message }, 'could not remove a container that failed to start'));
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`${message}${startHint(message)}`);
    }
    this.log.info({ replicaId, containerId: container.id.slice(0, 12), image: spec.image, port: spec.port }, 'replica container started');
    return { replicaId, runtime: 'docker', containerId: container.id, pid: null, port: spec.port };
  }

  wait(handle: ReplicaHandle): Promise<ExitInfo> {
    return waitForExit(this.engine, this.ref(handle), this.closing.signal, this.opts.engineReturnMs ?? ENGINE_RETURN_MS);
  }

  async stop(handle: ReplicaHandle, graceMs: number): Promise<void> {
    await removeContainer(this.engine, this.ref(handle), Math.max(0, Math.ceil(graceMs / 1000)));
  }

  async isRunning(handle: ReplicaHandle): Promise<boolean> {
    try {
      const info = await engineCall(this.engine, `inspecting container ${this.ref(handle)}`, (abortSignal) => this.engine.docker.getContainer(this.ref(handle)).inspect({ abortSignal }));
      return info.State?.Running === true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async *logs(handle: ReplicaHandle, opts: LogOptions): AsyncIterable<string[]> {
    const signal = AbortSignal.any([opts.signal, this.closing.signal]);
    try {
      yield* streamLogLines(this.engine, this.ref(handle), { ...opts, signal });
    } catch (err) {
      if (isNotFound(err)) throw new Error(`replica ${handle.replicaId} has no container on this worker (it was removed)`);
      throw err;
    }
  }

  async lastLines(handle: ReplicaHandle, n: number): Promise<string[]> {
    try {
      return await readLogLines(this.engine, this.ref(handle), { tail: n, since: null });
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }

  async recover(workerId: string): Promise<RecoveredReplica[]> {
    const found: RecoveredReplica[] = [];
    for (const c of await listWorkerContainers(this.engine, workerId)) {
      const labels = c.Labels ?? {};
      const decoded = decodeLaunch(labels[LABELS.launch]);
      const port = Number(labels[LABELS.port]);
      const problem = !decoded.ok
        ? decoded.reason
        : !Number.isInteger(port) || port < 1 || port > 65535
          ? `its ${LABELS.port} label is not a port`
          : decoded.launch.replica_id !== labels[LABELS.replica]
            ? `its ${LABELS.launch} label names another replica`
            : null;
      if (problem || !decoded.ok) {
        // Not ours to interpret: recover leaves it alone (a reap whose keep set lacks its replica id removes it).
        this.log.warn({ containerId: c.Id.slice(0, 12), name: c.Names?.[0], problem }, 'a labelled container cannot be adopted; leaving it alone');
        continue;
      }
      found.push({
        handle: { replicaId: decoded.launch.replica_id, runtime: 'docker', containerId: c.Id, pid: null, port },
        launch: decoded.launch,
        running: c.State === 'running',
      });
    }
    return found;
  }

  /** Removes this worker's containers whose replica is not in `keep`; returns the replica ids removed. */
  reap(workerId: string, keep: Set<string>): Promise<string[]> {
    return reapContainers(this.engine, this.log, workerId, keep);
  }

  /** Ends open waits and log follows (the agent is going away; the containers keep running for the next one). */
  close(): void {
    this.closing.abort();
  }

  private ref(handle: ReplicaHandle): string {
    return handle.containerId ?? containerName(handle.replicaId);
  }
}
