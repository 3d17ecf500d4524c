// Adapter sync: keeps the LoRA adapters loaded on each ready replica equal to its workload's desired set, through the
// backend's runtime load/unload API; level-triggered (every pass re-reads the store), one call at a time per replica.
import type { Logger } from '../../shared/logger.ts';
import { isAdapterBackend, type AdapterBackend } from '../../shared/spec/adapters.ts';
import type { Store } from '../store/index.ts';
import type { ReplicaRecord } from '../store/replicas.ts';

/** Where a replica's backend answers: the agent on `workerId` relays to 127.0.0.1:`port`. */
export interface AdapterReplica {
  id: string;
  workerId: string;
  port: number;
}

/** One POST to a replica's backend; a thrown error counts as a failed call. */
export interface AdapterCall {
  (replica: AdapterReplica, path: string, body: unknown): Promise<{ status: number; body: string }>;
}

export interface AdapterSyncDeps {
  store: Pick<Store, 'replicas' | 'workloads' | 'adapters' | 'events'>;
  log: Logger;
  call: AdapterCall;
  /** The adapters now loaded on a replica (after every change), for routing adapter requests to it. */
  onLoaded: (replicaId: string, names: ReadonlySet<string>) => void;
}

type AdapterAction = 'load' | 'unload';

/** The backend's request for one action: vLLM serves these under /v1, SGLang at the root; both take lora_name (and lora_path). */
export function adapterRequest(backend: AdapterBackend, action: AdapterAction, name: string, source: string): { path: string; body: Record<string, string> } {
  const path = `${backend === 'vllm' ? '/v1' : ''}/${action}_lora_adapter`;
  return { path, body: action === 'load' ? { lora_name: name, lora_path: source } : { lora_name: name } };
}

export type AdapterAnswer = { ok: true } | { ok: false; message: string };

/**
 * Reads a backend's answer. A load of an adapter already there (vLLM: 400 "has already been loaded"; SGLang: 400
 * "already loaded") is a success: the replica has it. So is an unload of one that is not there (vLLM: 404; SGLang:
 * 400 "does not exist"): the replica does not have it.
 */
export function readAdapterAnswer(action: AdapterAction, answer: { status: number; body: string }): AdapterAnswer {
  const message = backendMessage(answer.body) ?? `HTTP ${answer.status}`;
  // SGLang reports {success: false} in its body; trust that over the status.
  const refused = answer.status >= 300 || successFlag(answer.body) === false;
  if (!refused) return { ok: true };
  if (action === 'load' && /already (been )?loaded/i.test(message)) return { ok: true };
  if (action === 'unload' && (answer.status === 404 || /does not exist|cannot be found|not found/i.test(message))) return { ok: true };
  return { ok: false, message };
}

const MESSAGE_LIMIT = 300;

/** The error message in an OpenAI-style, vLLM, SGLang or FastAPI body, or the text itself. */
function backendMessage(body: string): string | undefined {
  const json = parseJson(body);
  const pick = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
  let message: string | undefined;
  if (isRecord(json)) {
    const error = json.error;
    message = (isRecord(error) ? pick(error.message) : pick(error)) ?? pick(json.error_message) ?? pick(json.message) ?? pick(json.detail);
  }
  message ??= json === undefined ? pick(body) : undefined;
  return message && (message.length > MESSAGE_LIMIT ? `${message.slice(0, MESSAGE_LIMIT)}…` : message);
}

function successFlag(body: string): boolean | undefined {
  const json = parseJson(body);
  return isRecord(json) && typeof json.success === 'boolean' ? json.success : undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A replica that serves requests now: the only kind adapters are loaded on. */
function isServing(r: ReplicaRecord): r is ReplicaRecord & { worker_id: string; port: number } {
  return r.state === 'ready' && r.desired === 'run' && r.worker_id !== null && r.port !== null;
}

/** What one backend process has loaded: name → source. A restarted backend is a new incarnation with nothing loaded. */
interface LoadedAdapters {
  incarnation: string;
  names: Map<string, string>;
}

export class AdapterSync {
  private readonly loaded = new Map<string, LoadedAdapters>();
  /** The tail of each replica's work: a sync starts only after the previous one on that replica ended. */
  private readonly chains = new Map<string, Promise<void>>();
  /** A sync queued and not yet started: later requests join it, since it reads the desired set when it starts. */
  private readonly queued = new Map<string, Promise<void>>();
  /** Failures already reported (a warning, and for loads an event), by replica, action, adapter and source. */
  private readonly reported = new Set<string>();

  constructor(private readonly deps: AdapterSyncDeps) {}

  /** A replica became ready: its backend starts with no adapters, so every desired one is loaded. */
  replicaReady(replicaId: string): Promise<void> {
    this.forget(replicaId);
    return this.schedule(replicaId);
  }

  /** The workload's desired set changed: new adapters are loaded and removed ones unloaded on its ready replicas. */
  async adaptersChanged(workloadId: string): Promise<void> {
    const ids = this.deps.store.replicas
      .forWorkload(workloadId)
      .filter((r) => isServing(r) || this.loaded.has(r.id))
      .map((r) => r.id);
    await Promise.all(ids.map((id) => this.schedule(id)));
  }

  /** The replica stopped or was lost: forget what it had (the caller drops it from routing itself). */
  replicaGone(replicaId: string): void {
    this.loaded.delete(replicaId);
    for (const key of this.reported) if (key.startsWith(`${replicaId}\n`)) this.reported.delete(key);
  }

  loadedOn(replicaId: string): ReadonlySet<string> {
    return new Set(this.loaded.get(replicaId)?.names.keys());
  }

  /** Repairs any difference on every ready replica (a failed load or unload is retried here). */
  async resync(): Promise<void> {
    const serving = new Set(this.deps.store.replicas.live().filter(isServing).map((r) => r.id));
    // Failures of replicas that no longer serve need no memory: a replica that serves again reports anew.
    for (const key of this.reported) if (!serving.has(key.slice(0, key.indexOf('\n')))) this.reported.delete(key);
    const ids = new Set([...this.loaded.keys(), ...serving]);
    await Promise.all([...ids].map((id) => this.schedule(id)));
  }

  private schedule(replicaId: string): Promise<void> {
    const waiting = this.queued.get(replicaId);
    if (waiting) return waiting;
    const previous = this.chains.get(replicaId) ?? Promise.resolve();
    const run = previous
      .then(() => {
        this.queued.delete(replicaId);
        return this.syncReplica(replicaId);
      })
      .catch((err: unknown) => this.deps.log.error({ err, replicaId }, 'adapter sync failed'));
    this.queued.set(replicaId, run);
    this.chains.set(replicaId, run);
    void run.then(() => {
      if (this.chains.get(replicaId) === run) this.chains.delete(replicaId);
    });
    return run;
  }

  /** Forgets a replica's adapters and tells routing it has none. */
  private forget(replicaId: string): void {
    const entry = this.loaded.get(replicaId);
    this.loaded.delete(replicaId);
    if (entry && entry.names.size > 0) this.deps.onLoaded(replicaId, new Set());
  }

  private async syncReplica(replicaId: string): Promise<void> {
    const { store } = this.deps;
    const replica = store.replicas.get(replicaId);
    if (!replica || !isServing(replica)) return this.forget(replicaId);
    const workload = store.workloads.getById(replica.workload_id);
    const backend = workload && isAdapterBackend(workload.spec.backend) ? workload.spec.backend : undefined;
    const desired = new Map(backend ? store.adapters.list(replica.workload_id).map((a) => [a.name, a.source] as const) : []);

    // A backend that became ready again (a restart keeps the replica id) has lost what it had.
    const incarnation = `${replica.worker_id}:${replica.port}:${replica.ready_at ?? ''}`;
    let entry = this.loaded.get(replicaId);
    if (entry && entry.incarnation !== incarnation) {
      this.forget(replicaId);
      entry = undefined;
    }
    if (!backend) return;
    if (!entry) {
      if (desired.size === 0) return;
      entry = { incarnation, names: new Map() };
      this.loaded.set(replicaId, entry);
    }
    const { names } = entry;
    const current = entry;
    // replicaReady or replicaGone while a call was out: this pass no longer speaks for the replica.
    const superseded = () => this.loaded.get(replicaId) !== current;
    const target: AdapterReplica = { id: replica.id, workerId: replica.worker_id, port: replica.port };

    // Unload first: removed adapters, and those whose source changed (unload, then load the new source).
    const blocked = new Set<string>();
    for (const [name, source] of [...names]) {
      if (desired.get(name) === source) continue;
      const answer = await this.send(target, backend, 'unload', name, source);
      if (superseded()) return;
      if (answer.ok) {
        names.delete(name);
        this.reported.delete(failureKey('unload', replicaId, name, source));
        this.deps.log.info({ replicaId, adapter: name }, 'adapter unloaded');
        this.deps.onLoaded(replicaId, new Set(names.keys()));
      } else {
        blocked.add(name);
        const first = this.firstFailure('unload', replicaId, name, source);
        this.deps.log[first ? 'warn' : 'debug']({ replicaId, adapter: name, reason: answer.message }, 'adapter unload failed; retried on the next resync');
      }
    }
    for (const [name, source] of desired) {
      if (names.get(name) === source || blocked.has(name)) continue;
      const answer = await this.send(target, backend, 'load', name, source);
      if (superseded()) return;
      if (answer.ok) {
        names.set(name, source);
        this.reported.delete(failureKey('load', replicaId, name, source));
        this.deps.log.info({ replicaId, adapter: name, source }, 'adapter loaded');
        this.deps.onLoaded(replicaId, new Set(names.keys()));
      } else {
        this.loadFailed(replica, name, source, answer.message);
      }
    }
  }

  private async send(target: AdapterReplica, backend: AdapterBackend, action: AdapterAction, name: string, source: string): Promise<AdapterAnswer> {
    const { path, body } = adapterRequest(backend, action, name, source);
    try {
      return readAdapterAnswer(action, await this.deps.call(target, path, body));
    } catch (err) {
      return { ok: false, message: err instanceof Error ? err.message : String(err) };
    }
  }

  /** Whether this failure is new: it is reported once per replica, adapter and source, and retried quietly after. */
  private firstFailure(action: AdapterAction, replicaId: string, name: string, source: string): boolean {
    const key = failureKey(action, replicaId, name, source);
    if (this.reported.has(key)) return false;
    this.reported.add(key);
    return true;
  }

  /** A failed load: a warning and an event the first time, then debug logs while the resync retries. */
  private loadFailed(replica: ReplicaRecord, name: string, source: string, message: string): void {
    const first = this.firstFailure('load', replica.id, name, source);
    this.deps.log[first ? 'warn' : 'debug']({ replicaId: replica.id, adapter: name, source, reason: message }, 'adapter load failed; retried on the next resync');
    if (!first) return;
    this.deps.store.events.record({
      kind: 'adapter.load_failed',
      projectId: replica.project_id,
      workload: replica.slug,
      workerId: replica.worker_id,
      message: `adapter ${name} did not load on replica ${replica.id} from ${source}: ${message} (the hub retries; fix the source with \`ik adapters put\`)`,
      data: { replica_id: replica.id, name, source, reason: message },
    });
  }
}

function failureKey(action: AdapterAction, replicaId: string, name: string, source: string): string {
  return `${replicaId}\n${action}\n${name}\n${source}`;
}
