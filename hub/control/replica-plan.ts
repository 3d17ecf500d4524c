// The reconciler's pure diff: from the desired count and generation and the replicas that exist, which replicas to
// create and which to stop. Rolling update: new ones start first; an old one is stopped only when a new one is ready.
import type { ReplicaState } from '../store/replicas.ts';

export interface PlannedReplica {
  id: string;
  generation: number;
  state: ReplicaState;
  created_at: string;
}

export interface ReplicaPlanInput {
  desired: number;
  generation: number;
  /** Replicas the hub still wants (desired = run); lost and stopped ones are already left out. */
  replicas: PlannedReplica[];
}

export interface ReplicaPlan {
  create: number;
  stop: string[];
}

/** Which replicas go first when there are too many: the least useful (not placed, not ready), then the newest. */
function stopOrder(a: PlannedReplica, b: PlannedReplica): number {
  const rank = (r: PlannedReplica) => (r.state === 'pending' ? 0 : r.state === 'failed' ? 1 : r.state === 'ready' ? 3 : 2);
  return rank(a) - rank(b) || b.created_at.localeCompare(a.created_at) || a.id.localeCompare(b.id);
}

export function planReplicas(input: ReplicaPlanInput): ReplicaPlan {
  const current = input.replicas.filter((r) => r.generation === input.generation);
  const old = input.replicas.filter((r) => r.generation !== input.generation);
  const stop: string[] = [];

  let create = 0;
  if (current.length < input.desired) create = input.desired - current.length;
  if (current.length > input.desired) stop.push(...[...current].sort(stopOrder).slice(0, current.length - input.desired).map((r) => r.id));

  // Old generations keep serving until enough new replicas are ready to take over.
  const readyCurrent = Math.min(input.desired, current.filter((r) => r.state === 'ready').length);
  const keepOld = Math.max(0, input.desired - readyCurrent);
  const oldByUsefulness = [...old].sort(stopOrder).reverse();
  const oldReady = oldByUsefulness.filter((r) => r.state === 'ready');
  // Only ready old replicas are worth keeping during a roll: one that is not ready serves nobody.
  const kept = new Set(oldReady.slice(0, keepOld).map((r) => r.id));
  stop.push(...old.filter((r) => !kept.has(r.id)).map((r) => r.id));
  return { create, stop };
}
