// One replica on this box, supervised: prepare, start, wait until ready, watch it; on failure report why (with the
// last log lines) and restart it with backoff (base × 2ⁿ, capped at 5 minutes). Restarts are ours, not Docker's.
import type { Logger } from '../../shared/logger.ts';
import { doublingDelay } from '../../shared/backoff.ts';
import type { AgentReplicaState, ReplicaLaunch, ReplicaReport } from '../../shared/protocol/replicas.ts';
import { resolveImage } from '../../shared/backends/images.ts';
import { backendDriver, mapProgram, type BackendDriver } from '../backends/index.ts';
import type { AgentConfig } from '../config.ts';
import type { ExitInfo, PullProgress, RecoveredReplica, ReplicaHandle, RunSpec, Runtime } from '../runtime/types.ts';
import { allocatePort } from '../runtime/ports.ts';
import { deadline } from '../../shared/abort.ts';
import { parseCommandFlags, tokenizeCommand } from '../../shared/spec/command-line.ts';

export const RESTART_CAP_MS = 5 * 60_000;
/** A replica that stayed ready this long starts its restart schedule over. */
const STABLE_AFTER_MS = 5 * 60_000;
const HEALTH_EVERY_MS = 5000;
const HEALTH_FAILURES_TO_FAIL = 3;
/** Readiness probes start fast (a warm engine is ready in moments) and slow down to once a second. */
const PROBE_FIRST_MS = 50;
const PROBE_MAX_MS = 1000;

export interface SupervisorDeps {
  runtime: Runtime;
  workerId: string;
  config: Pick<AgentConfig, 'imageMap' | 'processMap' | 'replicaStartTimeoutS' | 'hfCacheDir'>;
  log: Logger;
  /** Sends a replica.status (with the last log lines when it failed). */
  report: (report: ReplicaReport, lastLog?: string[]) => void;
  pullProgress: (replicaId: string, image: string, progress: PullProgress) => void;
  /** Remembers the restart count across agent restarts (an adopted replica keeps counting). */
  saveRestarts: (replicaId: string, restarts: number) => void;
  /** Ports handed to replicas of this agent that may not be bound yet. */
  usedPorts: Set<number>;
}

/** Why a run of the replica ended, in words an operator can act on. */
class ReplicaFailure extends Error {}

export class ReplicaSupervisor {
  private state: AgentReplicaState = 'pulling';
  private handle: ReplicaHandle | undefined;
  private restarts = 0;
  private reason: string | null = null;
  private stopping = false;
  private detached = false;
  private readonly abort = new AbortController();
  private readonly driver: BackendDriver;
  private readonly log: Logger;
  private done: Promise<void> | undefined;

  constructor(
    readonly launch: ReplicaLaunch,
    private readonly deps: SupervisorDeps,
    recovered?: RecoveredReplica,
    restarts = 0,
  ) {
    this.restarts = restarts;
    this.driver = backendDriver(launch.spec.backend);
    this.log = deps.log.child({ replicaId: launch.replica_id, workload: launch.workload });
    if (recovered?.running) {
      this.handle = recovered.handle;
      this.state = 'starting';
      deps.usedPorts.add(recovered.handle.port);
    }
  }

  get id(): string {
    return this.launch.replica_id;
  }

  get currentHandle(): ReplicaHandle | undefined {
    return this.handle;
  }

  report(): ReplicaReport {
    return {
      replica_id: this.launch.replica_id,
      generation: this.launch.generation,
      state: this.state,
      port: this.handle?.port ?? null,
      runtime: this.deps.runtime.kind,
      container_id: this.handle?.containerId ?? null,
      pid: this.handle?.pid ?? null,
      restarts: this.restarts,
      reason: this.reason,
    };
  }

  /** An adopted replica answers its probe at once if it is healthy, so adoption does not flap its state. */
  async probeOnce(): Promise<void> {
    if (!this.handle) return;
    const limit = deadline(2000);
    const probe = await this.driver.probe(this.launch.spec, this.handle.port, limit.signal).catch(() => null);
    limit.clear();
    if (probe?.ready) this.state = 'ready';
  }

  start(): void {
    this.done ??= this.run().catch((err: unknown) => this.log.error({ err }, 'replica supervisor stopped unexpectedly'));
  }

  /** Stops the replica for good (the hub asked, or the worker was deleted). */
  async stop(graceMs: number, reason: string): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    await this.done;
    if (this.handle) await this.deps.runtime.stop(this.handle, graceMs).catch((err: Error) => this.log.warn({ err: err.message }, 'stopping the replica failed'));
    if (this.handle) this.deps.usedPorts.delete(this.handle.port);
    this.reason = reason;
    this.setState('stopped');
  }

  /** Stops supervising but leaves the replica running: the agent is going away and its next start adopts it. */
  async detach(): Promise<void> {
    this.detached = true;
    this.stopping = true;
    this.abort.abort();
    await this.done;
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopping) {
      let readyAt: number | undefined;
      try {
        if (!this.handle) await this.launchOnce();
        const exited = this.deps.runtime.wait(this.handle!);
        if (this.state !== 'ready') await this.becomeReady(exited);
        readyAt = Date.now();
        await this.watch(exited);
      } catch (err) {
        if (this.stopping) return;
        const reason = err instanceof ReplicaFailure ? err.message : `the agent could not run it: ${err instanceof Error ? err.message : String(err)}`;
        await this.fail(reason);
      }
      if (this.stopping) return;
      if (readyAt !== undefined && Date.now() - readyAt > STABLE_AFTER_MS) attempt = 0;
      const delay = doublingDelay(attempt++, this.launch.restart_backoff_base_ms, RESTART_CAP_MS);
      this.log.info({ delayMs: delay, reason: this.reason }, 'replica failed; restarting after backoff');
      await this.sleep(delay);
      if (this.stopping) return;
      this.restarts += 1;
      this.deps.saveRestarts(this.id, this.restarts);
    }
  }

  private async launchOnce(): Promise<void> {
    const { spec } = this.launch;
    const image = resolveImage(spec.backend, spec.vllm_version, this.deps.config.imageMap);
    this.setState('pulling');
    const port = await allocatePort(this.deps.usedPorts);
    this.deps.usedPorts.add(port);
    const runSpec = this.runSpec(image, port);
    try {
      await this.deps.runtime.prepare(runSpec, (p) => this.deps.pullProgress(this.id, image, p), this.abort.signal);
    } catch (err) {
      this.deps.usedPorts.delete(port);
      throw new ReplicaFailure(`preparing ${image} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.setState('starting');
    try {
      this.handle = await this.deps.runtime.start(runSpec);
    } catch (err) {
      this.deps.usedPorts.delete(port);
      throw new ReplicaFailure(`starting it failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  runSpec(image: string, port: number): RunSpec {
    const { spec } = this.launch;
    const base = this.driver.argv(spec, port);
    const argv = this.deps.runtime.kind === 'process' ? mapProgram(this.driver, base, this.deps.config.processMap[spec.backend]) : base;
    const gpus = this.launch.gpu_uuids.join(',');
    const flags = spec.command ? parseCommandFlags(tokenizeCommand(spec.command)).flags : new Map();
    const parallel = ['--tensor-parallel-size', '-tp', '--pipeline-parallel-size', '-pp', '--tp-size', '--tp'].some((f) => Number(flags.get(f) ?? 1) > 1);
    return {
      launch: this.launch,
      workerId: this.deps.workerId,
      image,
      argv,
      env: {
        ...this.driver.env(spec, port),
        ...spec.env,
        IK_REPLICA_ID: this.id,
        ...(gpus ? { CUDA_VISIBLE_DEVICES: gpus, NVIDIA_VISIBLE_DEVICES: gpus } : {}),
      },
      port,
      gpuUuids: this.launch.gpu_uuids,
      sharedMemory: parallel,
      hfCacheDir: this.deps.config.hfCacheDir,
    };
  }

  /** Probes until ready; the process ending or the start timeout first is a failure with its reason. */
  private async becomeReady(exited: Promise<ExitInfo>): Promise<void> {
    const handle = this.handle!;
    const deadlineAt = Date.now() + this.deps.config.replicaStartTimeoutS * 1000;
    let ended: ExitInfo | undefined;
    void exited.then((e) => (ended = e));
    if (this.driver.prepareModel) {
      // The model pull counts against the start timeout like everything else before ready.
      const limit = deadline(Math.max(0, deadlineAt - Date.now()), this.abort.signal);
      try {
        await Promise.race([
          this.driver.prepareModel(this.launch.spec, handle.port, (status, percent) => this.deps.pullProgress(this.id, this.launch.spec.model, { status, percent }), limit.signal),
          exited.then((e) => Promise.reject(new ReplicaFailure(`it ${e.reason} while pulling the model`))),
        ]);
      } catch (err) {
        if (this.stopping) return;
        if (limit.signal.aborted && !this.abort.signal.aborted) {
          throw new ReplicaFailure(`not ready within ${this.deps.config.replicaStartTimeoutS} s (the model pull did not finish)`);
        }
        throw err instanceof ReplicaFailure ? err : new ReplicaFailure(err instanceof Error ? err.message : String(err));
      } finally {
        limit.clear();
      }
    }
    let last = 'not probed yet';
    let every = PROBE_FIRST_MS;
    const startedProbing = Date.now();
    for (;;) {
      if (ended) throw new ReplicaFailure(`it ${ended.reason} before it became ready`);
      if (this.stopping) return;
      if (Date.now() > deadlineAt) throw new ReplicaFailure(`not ready within ${this.deps.config.replicaStartTimeoutS} s (${last})`);
      const probe = await this.driver.probe(this.launch.spec, handle.port, this.abort.signal).catch((err: Error) => ({ ready: false, detail: err.message }));
      if (probe.ready) break;
      last = probe.detail;
      await Promise.race([this.sleep(every), exited]);
      // Every 50 ms for the first seconds (a warm engine is ready in moments), then slower.
      if (Date.now() > startedProbing + 2000) every = Math.min(PROBE_MAX_MS, Math.round(every * 1.5));
    }
    this.reason = null;
    this.setState('ready');
  }

  /** Watches a ready replica until it ends or fails its health checks several times in a row. */
  private async watch(exited: Promise<ExitInfo>): Promise<void> {
    let failures = 0;
    let ended: ExitInfo | undefined;
    void exited.then((e) => (ended = e));
    for (;;) {
      await Promise.race([this.sleep(HEALTH_EVERY_MS), exited]);
      if (this.stopping) return;
      if (ended) throw new ReplicaFailure(`it ${ended.reason}`);
      const probe = await this.driver.probe(this.launch.spec, this.handle!.port, this.abort.signal).catch((err: Error) => ({ ready: false, detail: err.message }));
      failures = probe.ready ? 0 : failures + 1;
      if (failures >= HEALTH_FAILURES_TO_FAIL) throw new ReplicaFailure(`health checks failed ${failures} times in a row (${probe.detail})`);
    }
  }

  private async fail(reason: string): Promise<void> {
    this.reason = reason;
    const handle = this.handle;
    const lastLog = handle ? await this.deps.runtime.lastLines(handle, 20).catch(() => []) : [];
    this.state = 'failed';
    this.deps.report(this.report(), lastLog);
    this.log.warn({ reason }, 'replica failed');
    if (handle) {
      await this.deps.runtime.stop(handle, 5000).catch((err: Error) => this.log.warn({ err: err.message }, 'cleaning up a failed replica failed'));
      this.deps.usedPorts.delete(handle.port);
    }
    this.handle = undefined;
  }

  private setState(state: AgentReplicaState): void {
    if (this.detached) return;
    const changed = state !== this.state;
    this.state = state;
    if (changed || state === 'stopped') this.deps.report(this.report());
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.abort.signal.aborted) return resolve();
      const t = setTimeout(resolve, ms);
      this.abort.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });
  }
}
