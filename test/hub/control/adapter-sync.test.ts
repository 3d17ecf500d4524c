// Adapter sync over a real store, with fake backends that answer load/unload as vLLM and SGLang do (like the simulator).
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { openDatabase } from '../../../hub/db/open.ts';
import { createStore, type Store } from '../../../hub/store/index.ts';
import { AdapterSync, adapterRequest, readAdapterAnswer, type AdapterCall, type AdapterReplica } from '../../../hub/control/adapter-sync.ts';
import { FakeClock, isoTime } from '../../../shared/clock.ts';
import { createLogger } from '../../../shared/logger.ts';
import { newSecret } from '../../../shared/secrets.ts';
import { parseWorkloadSpec } from '../../../shared/spec/workload-spec.ts';
import { sampleInventory, testSecretBox } from '../../helpers/inventory.ts';

interface Call {
  replica: string;
  path: string;
  body: Record<string, string>;
}

/** One backend process per replica: its loaded adapters, answering like test/sim/lora.ts. */
class FakeBackends {
  readonly calls: Call[] = [];
  readonly loaded = new Map<string, Map<string, string>>();
  /** Sources the backend cannot find (the simulator refuses paths under /nonexistent). */
  readonly missing = new Set<string>();
  /** While set, calls wait for `release()`: lets a test look at what is in flight. */
  private gate: { promise: Promise<void>; open: () => void } | null = null;
  private inflight = new Map<string, number>();
  maxInflightPerReplica = 0;
  maxInflight = 0;

  constructor(private readonly flavour: (replicaId: string) => 'vllm' | 'sglang') {}

  hold(): void {
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.gate = { promise, open };
  }

  release(): void {
    const gate = this.gate;
    this.gate = null;
    gate?.open();
  }

  on(replicaId: string): Map<string, string> {
    let m = this.loaded.get(replicaId);
    if (!m) this.loaded.set(replicaId, (m = new Map()));
    return m;
  }

  readonly call: AdapterCall = async (replica: AdapterReplica, path: string, body: unknown) => {
    const b = body as Record<string, string>;
    this.calls.push({ replica: replica.id, path, body: b });
    const n = (this.inflight.get(replica.id) ?? 0) + 1;
    this.inflight.set(replica.id, n);
    this.maxInflightPerReplica = Math.max(this.maxInflightPerReplica, n);
    this.maxInflight = Math.max(this.maxInflight, [...this.inflight.values()].reduce((a, v) => a + v, 0));
    try {
      while (this.gate) await this.gate.promise;
      await new Promise((r) => setImmediate(r));
      return this.answer(replica.id, path, b);
    } finally {
      this.inflight.set(replica.id, this.inflight.get(replica.id)! - 1);
    }
  };

  private answer(replicaId: string, path: string, b: Record<string, string>): { status: number; body: string } {
    const adapters = this.on(replicaId);
    const name = b.lora_name ?? '';
    const json = (status: number, v: unknown) => ({ status, body: JSON.stringify(v) });
    if (this.flavour(replicaId) === 'vllm') {
      const error = (status: number, message: string) => json(status, { error: { message, type: 'BadRequestError', param: null, code: status } });
      if (path === '/v1/load_lora_adapter') {
        if (adapters.has(name)) return error(400, `The lora adapter '${name}' has already been loaded.`);
        if (this.missing.has(b.lora_path!)) return error(404, `No adapter found for ${b.lora_path}`);
        adapters.set(name, b.lora_path!);
        return { status: 200, body: `Success: LoRA adapter '${name}' added successfully.` };
      }
      if (path === '/v1/unload_lora_adapter') {
        if (!adapters.delete(name)) return error(404, `The lora adapter '${name}' cannot be found.`);
        return { status: 200, body: `Success: LoRA adapter '${name}' removed successfully.` };
      }
      return error(404, 'Not Found');
    }
    const fail = (message: string) => json(400, { success: false, error_message: message, loaded_adapters: null });
    if (path === '/load_lora_adapter') {
      if (adapters.has(name)) return fail(`Failed to load LoRA adapter ${name} because it is already loaded`);
      if (this.missing.has(b.lora_path!)) return fail(`Can't find adapter_config.json at '${b.lora_path}'`);
      adapters.set(name, b.lora_path!);
      return json(200, { success: true, error_message: null, loaded_adapters: Object.fromEntries(adapters) });
    }
    if (path === '/unload_lora_adapter') {
      if (!adapters.delete(name)) return fail(`LoRA with name ${name} does not exist. Loaded LoRAs: []`);
      return json(200, { success: true, error_message: null, loaded_adapters: Object.fromEntries(adapters) });
    }
    return json(404, { detail: 'Not Found' });
  }
}

describe('AdapterSync', () => {
  let clock: FakeClock;
  let store: Store;
  let projectId: string;
  let workerId: string;
  let backends: FakeBackends;
  let reported: Array<[string, string[]]>;
  let sync: AdapterSync;
  let port = 41000;
  const log = createLogger({ level: 'silent', name: 'test' });

  beforeEach(() => {
    clock = new FakeClock();
    store = createStore(openDatabase(':memory:'), clock, testSecretBox());
    projectId = store.projects.ensure('default', 'Default').id;
    workerId = store.workers.insert({ name: 'box', projectId: null, labels: {}, agentVersion: 't', inventory: sampleInventory(2), credential: newSecret('agent'), joinTokenId: null }).id;
    backends = new FakeBackends((id) => (store.workloads.getById(store.replicas.get(id)!.workload_id)!.spec.backend === 'sglang' ? 'sglang' : 'vllm'));
    reported = [];
    sync = new AdapterSync({ store, log, call: backends.call, onLoaded: (id, names) => reported.push([id, [...names].sort()]) });
  });

  const workload = (slug: string, backend: 'vllm' | 'sglang' = 'vllm') => {
    const parsed = parseWorkloadSpec({ slug, model: 'org/Base-7B', backend, ...(backend === 'vllm' ? { command: 'vllm serve org/Base-7B' } : {}) });
    assert.ok(parsed.ok);
    return store.workloads.insert(projectId, parsed.spec);
  };
  const replica = (workloadId: string, state: 'ready' | 'starting' = 'ready') => {
    const w = store.workloads.getById(workloadId)!;
    const r = store.replicas.insert({ workloadId, projectId, slug: w.slug, generation: 1 });
    assert.ok(store.replicas.assign(r.id, workerId, [], 0));
    store.replicas.observe(r.id, { state, port: ++port, ...(state === 'ready' ? { ready_at: isoTime(clock.now()) } : {}) });
    return r.id;
  };
  const loadedOn = (id: string) => [...sync.loadedOn(id)].sort();
  const failures = () => store.events.list({ limit: 100 }).filter((e) => e.kind === 'adapter.load_failed');

  it('loads every desired adapter on a replica that becomes ready', async () => {
    const w = workload('chat');
    store.adapters.put(w.id, 'sql', 'org/sql-lora');
    store.adapters.put(w.id, 'summary', '/models/loras/summary');
    const r = replica(w.id);
    await sync.replicaReady(r);
    assert.deepEqual(backends.calls, [
      { replica: r, path: '/v1/load_lora_adapter', body: { lora_name: 'sql', lora_path: 'org/sql-lora' } },
      { replica: r, path: '/v1/load_lora_adapter', body: { lora_name: 'summary', lora_path: '/models/loras/summary' } },
    ]);
    assert.deepEqual(loadedOn(r), ['sql', 'summary']);
    assert.deepEqual(reported.at(-1), [r, ['sql', 'summary']]);
    await sync.resync();
    assert.equal(backends.calls.length, 2, 'nothing to repair: no more calls');
  });

  it('loads an added adapter on every ready replica, and only on ready ones', async () => {
    const w = workload('chat');
    const a = replica(w.id);
    const b = replica(w.id);
    const starting = replica(w.id, 'starting');
    store.adapters.put(w.id, 'sql', 'org/sql-lora');
    await sync.adaptersChanged(w.id);
    assert.deepEqual(backends.calls.map((c) => c.replica).sort(), [a, b].sort());
    assert.deepEqual([loadedOn(a), loadedOn(b), loadedOn(starting)], [['sql'], ['sql'], []]);
    assert.deepEqual(reported.map(([id]) => id).sort(), [a, b].sort());
    assert.equal(backends.maxInflight, 2, 'the two replicas are served in parallel');
  });

  it('unloads a deleted adapter from every replica that has it', async () => {
    const w = workload('chat');
    store.adapters.put(w.id, 'sql', 'org/sql-lora');
    store.adapters.put(w.id, 'keep', 'org/keep-lora');
    const a = replica(w.id);
    const b = replica(w.id);
    await Promise.all([sync.replicaReady(a), sync.replicaReady(b)]);
    backends.calls.length = 0;
    store.adapters.delete(w.id, 'sql');
    await sync.adaptersChanged(w.id);
    assert.deepEqual(backends.calls.map((c) => [c.replica, c.path, c.body.lora_name]).sort(), [
      [a, '/v1/unload_lora_adapter', 'sql'],
      [b, '/v1/unload_lora_adapter', 'sql'],
    ].sort());
    assert.deepEqual(backends.calls[0]!.body, { lora_name: 'sql' });
    assert.deepEqual([loadedOn(a), loadedOn(b)], [['keep'], ['keep']]);
    assert.deepEqual([...backends.on(a).keys()], ['keep']);
    assert.deepEqual(reported.at(-1)?.[1], ['keep']);
  });

  it('a changed source is unloaded, then loaded from the new source', async () => {
    const w = workload('chat');
    store.adapters.put(w.id, 'sql', 'org/sql-lora');
    const r = replica(w.id);
    await sync.replicaReady(r);
    backends.calls.length = 0;
    assert.equal(store.adapters.put(w.id, 'sql', 'org/sql-lora-v2'), 'updated');
    await sync.adaptersChanged(w.id);
    assert.deepEqual(backends.calls, [
      { replica: r, path: '/v1/unload_lora_adapter', body: { lora_name: 'sql' } },
      { replica: r, path: '/v1/load_lora_adapter', body: { lora_name: 'sql', lora_path: 'org/sql-lora-v2' } },
    ]);
    assert.equal(backends.on(r).get('sql'), 'org/sql-lora-v2');
    assert.deepEqual(loadedOn(r), ['sql']);
    assert.deepEqual(reported.slice(-2).map(([, names]) => names), [[], ['sql']], 'routing hears it is gone, then back');
  });

  it('a backend that already has the adapter (vLLM: "has already been loaded") counts as loaded', async () => {
    const w = workload('chat');
    store.adapters.put(w.id, 'sql', 'org/sql-lora');
    const r = replica(w.id);
    backends.on(r).set('sql', 'org/sql-lora'); // e.g. adopted after the hub restarted
    await sync.replicaReady(r);
    assert.equal(backends.calls.length, 1);
    assert.deepEqual(loadedOn(r), ['sql']);
    assert.deepEqual(failures(), []);
  });

  it('a failed load logs an event once per replica, adapter and source, and is retried on resync', async () => {
    const w = workload('chat');
    store.adapters.put(w.id, 'sql', '/nonexistent/sql');
    backends.missing.add('/nonexistent/sql');
    const r = replica(w.id);
    const lines: Array<{ level: number; msg: string; reason?: string }> = [];
    const destination = new Writable({ write: (chunk, _enc, done) => (lines.push(JSON.parse(String(chunk))), done()) });
    const captured = createLogger({ level: 'debug', name: 'test', destination });
    sync = new AdapterSync({ store, log: captured, call: backends.call, onLoaded: (id, names) => reported.push([id, [...names].sort()]) });
    await sync.replicaReady(r);
    await sync.resync();
    await sync.resync();
    assert.equal(backends.calls.length, 3, 'tried at ready and on each resync');
    const failed = lines.filter((l) => l.msg.startsWith('adapter load failed'));
    assert.deepEqual(failed.map((l) => l.level), [40, 20, 20], 'a warning the first time, debug while retrying');
    assert.equal(failed[0]!.reason, 'No adapter found for /nonexistent/sql');
    assert.deepEqual(loadedOn(r), []);
    const events = failures();
    assert.equal(events.length, 1, 'one event, not one per try');
    assert.equal(events[0]!.workload, 'chat');
    assert.equal(events[0]!.worker_id, workerId);
    assert.match(events[0]!.message, /adapter sql did not load on replica .*No adapter found for \/nonexistent\/sql/);
    assert.deepEqual(events[0]!.data, { replica_id: r, name: 'sql', source: '/nonexistent/sql', reason: 'No adapter found for /nonexistent/sql' });

    // The adapter appears on the worker: the next resync loads it.
    backends.missing.clear();
    await sync.resync();
    assert.deepEqual(loadedOn(r), ['sql']);
    assert.deepEqual(reported.at(-1), [r, ['sql']]);

    // A new source that fails is a new event.
    store.adapters.put(w.id, 'sql', '/nonexistent/sql-v2');
    backends.missing.add('/nonexistent/sql-v2');
    await sync.adaptersChanged(w.id);
    await sync.resync();
    assert.equal(failures().length, 2);
  });

  it('a call that throws (agent unreachable) is a failed load, retried on resync', async () => {
    const w = workload('chat');
    store.adapters.put(w.id, 'sql', 'org/sql-lora');
    const r = replica(w.id);
    let down = true;
    const call: AdapterCall = (rep, path, body) => (down ? Promise.reject(new Error('worker is disconnected')) : backends.call(rep, path, body));
    sync = new AdapterSync({ store, log, call, onLoaded: () => {} });
    await sync.replicaReady(r);
    assert.deepEqual(loadedOn(r), []);
    assert.match(failures()[0]!.message, /worker is disconnected/);
    down = false;
    await sync.resync();
    assert.deepEqual(loadedOn(r), ['sql']);
  });

  it('SGLang: /load_lora_adapter and /unload_lora_adapter, and its "already loaded" and "does not exist" answers', async () => {
    const w = workload('sg', 'sglang');
    store.adapters.put(w.id, 'sql', 'org/sql-lora');
    store.adapters.put(w.id, 'dup', 'org/dup-lora');
    const r = replica(w.id);
    backends.on(r).set('dup', 'org/dup-lora');
    await sync.replicaReady(r);
    assert.deepEqual(backends.calls.map((c) => [c.path, c.body]), [
      ['/load_lora_adapter', { lora_name: 'dup', lora_path: 'org/dup-lora' }],
      ['/load_lora_adapter', { lora_name: 'sql', lora_path: 'org/sql-lora' }],
    ]);
    assert.deepEqual(loadedOn(r), ['dup', 'sql']);

    // Someone unloaded dup behind the hub's back; deleting it still ends with it gone (not an endless retry).
    backends.on(r).delete('dup');
    store.adapters.delete(w.id, 'dup');
    await sync.adaptersChanged(w.id);
    assert.deepEqual(backends.calls.at(-1), { replica: r, path: '/unload_lora_adapter', body: { lora_name: 'dup' } });
    assert.deepEqual(loadedOn(r), ['sql']);

    backends.missing.add('/nonexistent/x');
    store.adapters.put(w.id, 'bad', '/nonexistent/x');
    await sync.adaptersChanged(w.id);
    assert.match(failures()[0]!.message, /Can't find adapter_config.json at '\/nonexistent\/x'/);
    assert.deepEqual(loadedOn(r), ['sql']);
  });

  it('serializes the calls to one replica, while different replicas proceed in parallel', async () => {
    const w = workload('chat');
    const a = replica(w.id);
    const b = replica(w.id);
    for (const name of ['one', 'two', 'three']) store.adapters.put(w.id, name, `org/${name}`);
    backends.hold();
    const first = sync.adaptersChanged(w.id);
    await new Promise((r) => setImmediate(r));
    assert.equal(backends.calls.length, 2, 'a call in flight on each replica');
    // More work arrives while those calls are out: it waits for them.
    const ready = sync.replicaReady(a);
    store.adapters.delete(w.id, 'two');
    const changed = sync.adaptersChanged(w.id);
    const resync = sync.resync();
    await new Promise((r) => setImmediate(r));
    assert.equal(backends.calls.length, 2, 'nothing more is sent to a replica while its call is out');
    backends.release();
    await Promise.all([first, ready, changed, resync]);
    assert.equal(backends.maxInflightPerReplica, 1);
    assert.equal(backends.maxInflight, 2);
    assert.deepEqual([loadedOn(a), loadedOn(b)], [['one', 'three'], ['one', 'three']]);
    assert.deepEqual([[...backends.on(a).keys()].sort(), [...backends.on(b).keys()].sort()], [['one', 'three'], ['one', 'three']]);
  });

  it('replicaGone forgets the replica: nothing is loaded on it or sent to it afterwards', async () => {
    const w = workload('chat');
    store.adapters.put(w.id, 'sql', 'org/sql-lora');
    const a = replica(w.id);
    const b = replica(w.id);
    await sync.adaptersChanged(w.id);
    assert.deepEqual(loadedOn(a), ['sql']);
    store.replicas.markForStop(a);
    store.replicas.observe(a, { state: 'stopped' });
    sync.replicaGone(a);
    assert.deepEqual(loadedOn(a), []);
    backends.calls.length = 0;
    store.adapters.put(w.id, 'more', 'org/more-lora');
    await sync.adaptersChanged(w.id);
    await sync.resync();
    assert.deepEqual(backends.calls.map((c) => c.replica), [b]);
    assert.deepEqual(loadedOn(b), ['more', 'sql']);
  });

  it('a replica that stops being ready is forgotten, and reloaded when its restarted backend is ready again', async () => {
    const w = workload('chat');
    store.adapters.put(w.id, 'sql', 'org/sql-lora');
    const r = replica(w.id);
    await sync.replicaReady(r);
    store.replicas.observe(r, { state: 'failed' });
    backends.loaded.delete(r); // the backend process died with its adapters
    await sync.resync();
    assert.deepEqual(loadedOn(r), []);
    assert.deepEqual(reported.at(-1), [r, []], 'routing hears it has none');
    // The restart keeps the id; the hub's next resync notices the new incarnation even without replicaReady.
    clock.advance(10_000);
    store.replicas.observe(r, { state: 'ready', port: 42999, ready_at: isoTime(clock.now()) });
    await sync.resync();
    assert.deepEqual(loadedOn(r), ['sql']);
    assert.equal(backends.on(r).get('sql'), 'org/sql-lora');
  });
});

describe('the backend requests and answers', () => {
  it('names the paths of vLLM (under /v1) and SGLang (at the root)', () => {
    assert.deepEqual(adapterRequest('vllm', 'load', 'a', 'org/a'), { path: '/v1/load_lora_adapter', body: { lora_name: 'a', lora_path: 'org/a' } });
    assert.deepEqual(adapterRequest('vllm', 'unload', 'a', 'org/a'), { path: '/v1/unload_lora_adapter', body: { lora_name: 'a' } });
    assert.deepEqual(adapterRequest('sglang', 'load', 'a', '/m/a'), { path: '/load_lora_adapter', body: { lora_name: 'a', lora_path: '/m/a' } });
    assert.deepEqual(adapterRequest('sglang', 'unload', 'a', '/m/a'), { path: '/unload_lora_adapter', body: { lora_name: 'a' } });
  });

  it('reads success, duplicates, absences and refusals', () => {
    assert.deepEqual(readAdapterAnswer('load', { status: 200, body: 'Success' }), { ok: true });
    assert.deepEqual(readAdapterAnswer('load', { status: 200, body: '{"success":false,"error_message":"boom"}' }), { ok: false, message: 'boom' });
    assert.deepEqual(readAdapterAnswer('unload', { status: 404, body: '{"detail":"Not Found"}' }), { ok: true });
    assert.deepEqual(readAdapterAnswer('load', { status: 404, body: '{"detail":"Not Found"}' }), { ok: false, message: 'Not Found' });
    assert.deepEqual(readAdapterAnswer('load', { status: 400, body: '{"object":"error","message":"LoRA is not enabled. Use --enable-lora to enable LoRA."}' }), {
      ok: false,
      message: 'LoRA is not enabled. Use --enable-lora to enable LoRA.',
    });
    assert.deepEqual(readAdapterAnswer('load', { status: 502, body: '' }), { ok: false, message: 'HTTP 502' });
  });
});
