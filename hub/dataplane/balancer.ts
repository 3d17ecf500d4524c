// Choosing a replica for a request: least outstanding requests by the power of two random choices; a replica with
// the requested adapter loaded first; prefix affinity keeps similar requests on one replica while its load allows;
// a replica that just failed sits out until its health says ready again.
import { createHash } from 'node:crypto';
import type { RoutableReplica } from './routing.ts';

export interface PickOptions {
  /** Replicas already tried for this request. */
  exclude: ReadonlySet<string>;
  /** A hash of the start of the prompt: similar requests share a prefix cache on the same replica. */
  affinityKey?: string | undefined;
  /** An adapter name: replicas that have it loaded go first. */
  adapter?: string | undefined;
  random?: () => number;
}

/** Affinity yields to balance when the preferred replica has this many more requests than the least loaded. */
export const AFFINITY_SLACK = 4;

export class Balancer {
  private readonly inflight = new Map<string, number>();
  private readonly ejected = new Map<string, number>();
  private readonly adapters = new Map<string, ReadonlySet<string>>();

  pick(replicas: readonly RoutableReplica[], opts: PickOptions, now: number): RoutableReplica | undefined {
    let candidates = replicas.filter((r) => !opts.exclude.has(r.id) && (this.ejected.get(r.id) ?? 0) <= now);
    if (candidates.length === 0) return undefined;
    if (opts.adapter) {
      const withAdapter = candidates.filter((r) => this.adapters.get(r.id)?.has(opts.adapter!));
      if (withAdapter.length > 0) candidates = withAdapter;
    }
    if (candidates.length === 1) return candidates[0];
    if (opts.affinityKey) {
      const preferred = rendezvous(candidates, opts.affinityKey);
      const least = Math.min(...candidates.map((r) => this.load(r.id)));
      if (this.load(preferred.id) <= least + AFFINITY_SLACK) return preferred;
    }
    const random = opts.random ?? Math.random;
    const a = candidates[Math.floor(random() * candidates.length)]!;
    let b = candidates[Math.floor(random() * (candidates.length - 1))]!;
    if (b === a) b = candidates[candidates.length - 1]!;
    return this.load(a.id) <= this.load(b.id) ? a : b;
  }

  load(replicaId: string): number {
    return this.inflight.get(replicaId) ?? 0;
  }

  started(replicaId: string): void {
    this.inflight.set(replicaId, this.load(replicaId) + 1);
  }

  finished(replicaId: string): void {
    const n = this.load(replicaId) - 1;
    if (n <= 0) this.inflight.delete(replicaId);
    else this.inflight.set(replicaId, n);
  }

  /** Takes a replica out of rotation until `until` (or until it reports ready again). */
  eject(replicaId: string, until: number): void {
    this.ejected.set(replicaId, until);
  }

  readmit(replicaId: string): void {
    this.ejected.delete(replicaId);
  }

  setAdapters(replicaId: string, names: ReadonlySet<string>): void {
    this.adapters.set(replicaId, names);
  }

  /** Requests in flight per replica (metrics, and long streams keep a replica busy for the autoscaler). */
  inflightByReplica(): ReadonlyMap<string, number> {
    return this.inflight;
  }
}

/** Rendezvous hashing: the same key picks the same replica, and a replica leaving moves only its own keys. */
function rendezvous(replicas: readonly RoutableReplica[], key: string): RoutableReplica {
  let best = replicas[0]!;
  let bestScore = -1;
  for (const r of replicas) {
    const score = createHash('sha1').update(key).update(r.id).digest().readUInt32BE(0);
    if (score > bestScore) (bestScore = score), (best = r);
  }
  return best;
}

/** The affinity key of a request body: the start of its prompt or messages. */
export function affinityKeyOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as { prompt?: unknown; messages?: unknown };
  if (typeof b.prompt === 'string') return b.prompt.slice(0, 256);
  if (Array.isArray(b.messages)) return JSON.stringify(b.messages).slice(0, 512);
  return undefined;
}
