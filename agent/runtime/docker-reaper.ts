// The reaper: removes this worker's labelled containers that no replica it keeps owns (leftovers of replicas the hub
// no longer wants, or of a crash between create and adoption). Containers of other workers are never touched.
import type { Logger } from '../../shared/logger.ts';
import { engineCall, isNotFound, isNotModified, type Engine } from './docker-engine.ts';
import { LABELS } from './docker-create.ts';

/** A leftover still gets a short SIGTERM grace, so a backend can free its GPU memory cleanly. */
const REAP_GRACE_S = 10;

/** This worker's containers (running or not), as the engine lists them. */
export async function listWorkerContainers(engine: Engine, workerId: string) {
  return engineCall(engine, `listing the containers of worker ${workerId}`, (abortSignal) =>
    engine.docker.listContainers({ all: true, filters: { label: [`${LABELS.worker}=${workerId}`] }, abortSignal }),
  );
}

/** Stops (gracefully, briefly) and removes one container; a container already stopped or gone is fine. */
export async function removeContainer(engine: Engine, containerRef: string, graceS: number): Promise<void> {
  const container = engine.docker.getContainer(containerRef);
  try {
    await engineCall(engine, `stopping container ${containerRef}`, (abortSignal) => container.stop({ t: graceS, abortSignal }), {
      timeoutMs: graceS * 1000 + 30_000,
    });
  } catch (err) {
    if (isNotFound(err)) return;
    if (!isNotModified(err)) throw err;
  }
  try {
    await engineCall(engine, `removing container ${containerRef}`, (abortSignal) => container.remove({ force: true, v: true, abortSignal }));
  } catch (err) {
    // 404: gone already; 409: the engine is already removing it.
    if (isNotFound(err) || (err instanceof Error && /already in progress/i.test(err.message))) return;
    throw err;
  }
}

/**
 * Removes every container labelled with this worker whose replica id is not in `keep`; returns the replica ids (or,
 * for a container without one, the container id) it removed. One container that cannot be removed does not stop the rest.
 */
export async function reapContainers(engine: Engine, log: Logger, workerId: string, keep: ReadonlySet<string>): Promise<string[]> {
  const containers = await listWorkerContainers(engine, workerId);
  const leftovers = containers.filter((c) => !keep.has(c.Labels?.[LABELS.replica] ?? ''));
  const removed: string[] = [];
  await Promise.all(
    leftovers.map(async (c) => {
      const replicaId = c.Labels?.[LABELS.replica];
      try {
        await removeContainer(engine, c.Id, REAP_GRACE_S);
        removed.push(replicaId ?? c.Id);
        log.info({ containerId: c.Id.slice(0, 12), replicaId, name: c.Names?.[0] }, 'removed a leftover replica container');
      } catch (err) {
        log.warn({ containerId: c.Id.slice(0, 12), replicaId, err: err instanceof Error ? err.message : String(err) }, 'could not remove a leftover replica container');
      }
    }),
  );
  return removed.sort();
}
