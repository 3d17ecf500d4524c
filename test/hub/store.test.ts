// The hub's store over a real SQLite file: projects, tokens, workers, heartbeats and events, with a fake clock.
import { testSecretBox } from '../helpers/inventory.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { openDatabase, type Db } from '../../hub/db/open.ts';
import { createStore, type Store } from '../../hub/store/index.ts';
import { secretStatus } from '../../hub/store/secret-match.ts';
import { FakeClock, isoTime } from '../../shared/clock.ts';
import { newSecret } from '../../shared/secrets.ts';
import type { Gpu, Inventory } from '../../shared/inventory.ts';

const root = mkdtempSync(join(tmpdir(), 'ik-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

let db: Db;
let clock: FakeClock;
let store: Store;
beforeEach(() => {
  db = openDatabase(join(root, `s${++n}.db`));
  clock = new FakeClock();
  store = createStore(db, clock, testSecretBox());
});
afterEach(() => db.close());

const gpu = (index: number, over: Partial<Gpu> = {}): Gpu => ({
  index,
  uuid: `GPU-${index}`,
  name: 'NVIDIA L4',
  memory_total_mib: 23034,
  memory_used_mib: 0,
  memory_free_mib: 22563,
  utilization_pct: 0,
  temperature_c: 40,
  compute_capability: '8.9',
  pci_bus_id: `00000000:0${index}:00.0`,
  mig_mode: 'disabled',
  mig_devices: [],
  ...over,
});

const inventory = (gpus: Gpu[] = [gpu(0)]): Inventory => ({
  host: { hostname: 'box', os: 'Debian 12', arch: 'x64', cpu_cores: 16, memory_total_mib: 64000, disk_free_mib: 100000 },
  runtime: { kind: 'docker', docker_version: '28.2.2', nvidia_runtime: true, cdi: false, gpu_mode: 'nvidia', images: [], image_map: {} },
  gpu_driver_version: '590.48.01',
  cuda_version: '13.1',
  gpu_error: null,
  gpus,
});

function addWorker(name: string, projectId: string | null = null, credential = newSecret('agent')) {
  return store.workers.insert({ name, projectId, labels: { zone: 'a' }, agentVersion: '0.1.0', inventory: inventory(), credential, joinTokenId: null });
}

describe('projects', () => {
  it('creates, finds and lists projects by slug', () => {
    const b = store.projects.create('beta', 'Beta');
    const a = store.projects.create('alpha', 'Alpha');
    assert.match(a.id, /^prj_/);
    assert.equal(a.created_at, isoTime(clock.now()));
    assert.deepEqual(store.projects.getBySlug('beta'), b);
    assert.deepEqual(store.projects.getById(a.id), a);
    assert.deepEqual(store.projects.list().map((p) => p.slug), ['alpha', 'beta']);
    assert.equal(store.projects.getBySlug('nope'), undefined);
  });

  it('ensure() creates once and then returns the same project', () => {
    const first = store.projects.ensure('default', 'Default');
    const second = store.projects.ensure('default', 'Another name');
    assert.deepEqual(second, first);
    assert.equal(store.projects.list().length, 1);
  });

  it('refuses a second project with the same slug', () => {
    store.projects.create('dup', 'One');
    assert.throws(() => store.projects.create('dup', 'Two'), /UNIQUE/);
  });
});

describe('control tokens', () => {
  it('finds a token by its secret and stores only the hash and prefix', () => {
    const secret = newSecret('sdk');
    const row = store.controlTokens.insert({ projectId: null, name: 'admin', secret });
    assert.match(row.id, /^tok_/);
    assert.deepEqual(store.controlTokens.findBySecret(secret.secret), row);
    const stored = db.prepare('SELECT * FROM control_tokens').all();
    assert.ok(!JSON.stringify(stored).includes(secret.secret), 'the clear secret is in the database');
    assert.equal(row.prefix, secret.prefix);
  });

  it('finds nothing for a wrong secret, even one that shares the public prefix', () => {
    const secret = newSecret('sdk');
    store.controlTokens.insert({ projectId: null, name: 'admin', secret });
    assert.equal(store.controlTokens.findBySecret(newSecret('sdk').secret), undefined);
    const samePrefix = secret.secret.slice(0, -1) + (secret.secret.endsWith('a') ? 'b' : 'a');
    assert.equal(store.controlTokens.findBySecret(samePrefix), undefined);
    assert.equal(store.controlTokens.findBySecret(''), undefined);
    assert.equal(store.controlTokens.findBySecret('garbage'), undefined);
  });

  it('scopes a token to a project and lists per project', () => {
    const p = store.projects.create('p', 'P');
    const scoped = store.controlTokens.insert({ projectId: p.id, name: 'ci', secret: newSecret('sdk') });
    const admin = store.controlTokens.insert({ projectId: null, name: 'admin', secret: newSecret('sdk') });
    assert.deepEqual(store.controlTokens.list(p.id).map((t) => t.id), [scoped.id]);
    assert.deepEqual(new Set(store.controlTokens.list().map((t) => t.id)), new Set([scoped.id, admin.id]));
  });

  it('revokes once, with the time of revocation; the row stays findable so auth can say "revoked"', () => {
    const secret = newSecret('sdk');
    const row = store.controlTokens.insert({ projectId: null, name: 'admin', secret });
    clock.advance(60_000);
    assert.equal(store.controlTokens.revoke(row.id), true);
    assert.equal(store.controlTokens.revoke(row.id), false, 'a second revoke changes nothing');
    const found = store.controlTokens.findBySecret(secret.secret);
    assert.equal(found?.revoked_at, isoTime(clock.now()));
    assert.equal(secretStatus(found!, clock.now()), 'revoked');
    assert.equal(store.controlTokens.revoke('tok_unknown'), false);
  });

  it('keeps one bootstrap admin token in force', () => {
    assert.equal(store.controlTokens.bootstrapAdmin(), undefined);
    const boot = store.controlTokens.insert({ projectId: null, name: 'bootstrap', secret: newSecret('sdk'), bootstrap: true });
    store.controlTokens.insert({ projectId: null, name: 'other', secret: newSecret('sdk') });
    assert.equal(store.controlTokens.bootstrapAdmin()?.id, boot.id);
    store.controlTokens.revoke(boot.id);
    assert.equal(store.controlTokens.bootstrapAdmin(), undefined);
    assert.equal(store.controlTokens.reactivateBootstrap(boot.id), true);
    assert.equal(store.controlTokens.bootstrapAdmin()?.id, boot.id);
  });
});

describe('secretStatus', () => {
  it('is valid, expired at its expiry time, or revoked', () => {
    const now = Date.UTC(2026, 0, 1);
    assert.equal(secretStatus({ revoked_at: null, expires_at: null }, now), 'valid');
    assert.equal(secretStatus({ revoked_at: null, expires_at: isoTime(now + 1) }, now), 'valid');
    assert.equal(secretStatus({ revoked_at: null, expires_at: isoTime(now) }, now), 'expired');
    assert.equal(secretStatus({ revoked_at: isoTime(now), expires_at: isoTime(now + 1000) }, now), 'revoked');
  });
});

describe('join tokens', () => {
  it('round-trips labels through the JSON column', () => {
    const secret = newSecret('join');
    const labels = { zone: 'eu-west', 'gpu/kind': 'h100', empty: '', quote: 'a "b" \\ c' };
    const row = store.joinTokens.insert({ projectId: null, name: 'shared', labels, secret, expiresAt: '2027-01-01T00:00:00.000Z' });
    assert.match(row.id, /^jtk_/);
    assert.deepEqual(store.joinTokens.findBySecret(secret.secret)?.labels, labels);
    assert.deepEqual(store.joinTokens.getById(row.id), row);
    assert.equal(store.joinTokens.getById(row.id)?.expires_at, '2027-01-01T00:00:00.000Z');
  });

  it('finds nothing for a wrong secret', () => {
    store.joinTokens.insert({ projectId: null, name: 'shared', labels: {}, secret: newSecret('join') });
    assert.equal(store.joinTokens.findBySecret(newSecret('join').secret), undefined);
  });

  it('counts every use and remembers when it was last used', () => {
    const row = store.joinTokens.insert({ projectId: null, name: 'shared', labels: {}, secret: newSecret('join') });
    assert.equal(row.uses, 0);
    assert.equal(row.last_used_at, null);
    store.joinTokens.recordUse(row.id);
    clock.advance(5000);
    store.joinTokens.recordUse(row.id);
    const after = store.joinTokens.getById(row.id)!;
    assert.equal(after.uses, 2);
    assert.equal(after.last_used_at, isoTime(clock.now()));
  });

  it('lists per project, and revokes', () => {
    const p = store.projects.create('p', 'P');
    const mine = store.joinTokens.insert({ projectId: p.id, name: 'p workers', labels: {}, secret: newSecret('join') });
    const shared = store.joinTokens.insert({ projectId: null, name: 'shared', labels: {}, secret: newSecret('join') });
    assert.deepEqual(store.joinTokens.list(p.id).map((t) => t.id), [mine.id]);
    assert.equal(store.joinTokens.list().length, 2);
    assert.equal(store.joinTokens.revoke(shared.id), true);
    assert.equal(store.joinTokens.revoke(shared.id), false);
    assert.notEqual(store.joinTokens.getById(shared.id)?.revoked_at, null);
  });

  it('refuses a token for a project that does not exist', () => {
    assert.throws(
      () => store.joinTokens.insert({ projectId: 'prj_missing', name: 'x', labels: {}, secret: newSecret('join') }),
      /FOREIGN KEY/,
    );
  });

  it('a corrupt labels column fails loudly instead of leaking bad data', () => {
    const row = store.joinTokens.insert({ projectId: null, name: 'shared', labels: {}, secret: newSecret('join') });
    db.prepare("UPDATE join_tokens SET labels = '{\"zone\": 5}' WHERE id = ?").run(row.id);
    assert.throws(() => store.joinTokens.getById(row.id), /join_tokens\.labels/);
    db.prepare("UPDATE join_tokens SET labels = 'not json' WHERE id = ?").run(row.id);
    assert.throws(() => store.joinTokens.getById(row.id), /join_tokens\.labels.*invalid JSON/);
  });
});

describe('workers', () => {
  it('inserts a ready worker with its inventory, and reads it back by id', () => {
    const w = addWorker('box-1');
    assert.match(w.id, /^wrk_/);
    assert.equal(w.state, 'ready');
    assert.equal(w.cordoned, false);
    assert.equal(w.draining, false);
    assert.deepEqual(w.labels, { zone: 'a' });
    assert.deepEqual(w.gpus, inventory().gpus);
    assert.deepEqual(w.host, inventory().host);
    assert.deepEqual(w.runtime, inventory().runtime);
    assert.equal(w.gpu_error, null);
    assert.equal(w.gpu_hourly_cost_usd, null);
    assert.equal(w.last_heartbeat_at, isoTime(clock.now()));
    assert.deepEqual(store.workers.getById(w.id), w);
    assert.deepEqual(store.workers.getByName('box-1'), w);
    assert.equal(store.workers.getById('wrk_nope'), undefined);
  });

  it('refuses a second worker with the same name', () => {
    addWorker('box-1');
    assert.throws(() => addWorker('box-1'), /UNIQUE/);
  });

  it('finds a worker by its credential, and nothing for another credential', () => {
    const credential = newSecret('agent');
    const w = addWorker('box-1', null, credential);
    assert.equal(store.workers.findByCredential(credential.secret)?.id, w.id);
    assert.equal(store.workers.findByCredential(newSecret('agent').secret), undefined);
    const stored = db.prepare('SELECT * FROM workers').all();
    assert.ok(!JSON.stringify(stored).includes(credential.secret), 'the clear credential is in the database');
  });

  it('a replaced credential works and the old one stops working', () => {
    const old = newSecret('agent');
    const w = addWorker('box-1', null, old);
    const next = newSecret('agent');
    store.workers.replaceCredential(w.id, next);
    assert.equal(store.workers.findByCredential(old.secret), undefined);
    assert.equal(store.workers.findByCredential(next.secret)?.id, w.id);
  });

  it('shows a project the shared pool and its own private workers only', () => {
    const mine = store.projects.create('mine', 'Mine');
    const theirs = store.projects.create('theirs', 'Theirs');
    addWorker('shared-b');
    addWorker('shared-a');
    addWorker('mine-1', mine.id);
    addWorker('theirs-1', theirs.id);
    assert.deepEqual(store.workers.list(mine.id).map((w) => w.name), ['mine-1', 'shared-a', 'shared-b']);
    assert.deepEqual(store.workers.list(theirs.id).map((w) => w.name), ['shared-a', 'shared-b', 'theirs-1']);
    assert.deepEqual(store.workers.list().map((w) => w.name), ['mine-1', 'shared-a', 'shared-b', 'theirs-1']);
  });

  it('sets the cordoned and draining flags', () => {
    const w = addWorker('box-1');
    store.workers.setFlags(w.id, { cordoned: true, draining: false });
    assert.deepEqual(pick(store.workers.getById(w.id)!), { cordoned: true, draining: false });
    store.workers.setFlags(w.id, { cordoned: true, draining: true });
    assert.deepEqual(pick(store.workers.getById(w.id)!), { cordoned: true, draining: true });
    store.workers.setFlags(w.id, { cordoned: false, draining: false });
    assert.deepEqual(pick(store.workers.getById(w.id)!), { cordoned: false, draining: false });
    function pick(r: { cordoned: boolean; draining: boolean }) {
      return { cordoned: r.cordoned, draining: r.draining };
    }
  });

  it('patches labels and the GPU hourly cost, and clears the cost with null', () => {
    const w = addWorker('box-1');
    store.workers.patch(w.id, { labels: { rack: 'r7' }, gpu_hourly_cost_usd: 2.49 });
    let r = store.workers.getById(w.id)!;
    assert.deepEqual(r.labels, { rack: 'r7' });
    assert.equal(r.gpu_hourly_cost_usd, 2.49);
    store.workers.patch(w.id, { labels: {}, gpu_hourly_cost_usd: null });
    r = store.workers.getById(w.id)!;
    assert.deepEqual(r.labels, {});
    assert.equal(r.gpu_hourly_cost_usd, null);
  });

  it('refuses a negative GPU cost', () => {
    const w = addWorker('box-1');
    assert.throws(() => store.workers.patch(w.id, { labels: {}, gpu_hourly_cost_usd: -1 }), /CHECK/);
  });

  it('updates the inventory and state, and counts workers by state', () => {
    const w = addWorker('box-1');
    addWorker('box-2');
    const inv = { ...inventory([gpu(1), gpu(0)]), gpu_error: null, cuda_version: '12.4' };
    store.workers.updateInventory(w.id, '0.2.0', inv);
    const r = store.workers.getById(w.id)!;
    assert.equal(r.agent_version, '0.2.0');
    assert.equal(r.cuda_version, '12.4');
    assert.deepEqual(r.gpus.map((g) => g.uuid), ['GPU-1', 'GPU-0']);
    store.workers.setState(w.id, 'down');
    assert.equal(store.workers.getById(w.id)?.state, 'down');
    assert.deepEqual(store.workers.countByState(), { ready: 1, disconnected: 0, down: 1 });
    clock.advance(1000);
    store.workers.markConnected(w.id);
    const back = store.workers.getById(w.id)!;
    assert.equal(back.state, 'ready');
    assert.equal(back.connected_at, isoTime(clock.now()));
    assert.equal(back.last_heartbeat_at, isoTime(clock.now()));
  });

  it('keeps a GPU error from the inventory', () => {
    const w = store.workers.insert({
      name: 'no-driver',
      projectId: null,
      labels: {},
      agentVersion: '0.1.0',
      inventory: { ...inventory([]), gpu_driver_version: null, cuda_version: null, gpu_error: { code: 'DRIVER_NOT_LOADED', message: 'NVIDIA driver is not loaded' } },
      credential: newSecret('agent'),
      joinTokenId: null,
    });
    assert.deepEqual(store.workers.getById(w.id)?.gpu_error, { code: 'DRIVER_NOT_LOADED', message: 'NVIDIA driver is not loaded' });
    assert.deepEqual(store.workers.getById(w.id)?.gpus, []);
  });

  it('deletes a worker once', () => {
    const w = addWorker('box-1');
    assert.equal(store.workers.delete(w.id), true);
    assert.equal(store.workers.getById(w.id), undefined);
    assert.equal(store.workers.delete(w.id), false);
    assert.deepEqual(store.workers.list(), []);
  });
});

describe('heartbeats', () => {
  it('writes a batch of heartbeats: time, GPU usage and GPU error per worker', () => {
    const a = addWorker('a');
    const b = addWorker('b');
    clock.advance(5000);
    const at = isoTime(clock.now());
    store.workers.writeHeartbeats([
      { id: a.id, at, gpus: [gpu(0, { memory_used_mib: 20000, memory_free_mib: 2563, utilization_pct: 97 })], gpu_error: null },
      { id: b.id, at, gpus: [], gpu_error: { code: 'NVIDIA_SMI_TIMEOUT', message: 'nvidia-smi did not answer in 10 s' } },
    ]);
    const ra = store.workers.getById(a.id)!;
    const rb = store.workers.getById(b.id)!;
    assert.equal(ra.last_heartbeat_at, at);
    assert.equal(ra.gpus[0]?.utilization_pct, 97);
    assert.equal(ra.gpus[0]?.memory_used_mib, 20000);
    assert.equal(rb.last_heartbeat_at, at);
    assert.deepEqual(rb.gpus, []);
    assert.equal(rb.gpu_error?.code, 'NVIDIA_SMI_TIMEOUT');
  });

  it('an empty batch changes nothing, and a heartbeat for a deleted worker does not bring it back', () => {
    const a = addWorker('a');
    const before = store.workers.getById(a.id);
    store.workers.writeHeartbeats([]);
    assert.deepEqual(store.workers.getById(a.id), before);
    store.workers.delete(a.id);
    store.workers.writeHeartbeats([{ id: a.id, at: isoTime(clock.now()), gpus: [], gpu_error: null }]);
    assert.equal(store.workers.getById(a.id), undefined);
  });

  it('writes the batch in one transaction: one bad write leaves the others unwritten', () => {
    const a = addWorker('a');
    const before = store.workers.getById(a.id)!;
    // A write whose time SQLite cannot bind (an object) makes the batch throw half-way.
    const bad = { id: a.id, at: {} as unknown as string, gpus: [], gpu_error: null };
    assert.throws(() =>
      store.workers.writeHeartbeats([{ id: a.id, at: '2030-01-01T00:00:00.000Z', gpus: [], gpu_error: null }, bad]),
    );
    assert.equal(store.workers.getById(a.id)?.last_heartbeat_at, before.last_heartbeat_at);
  });
});

describe('events', () => {
  let p: { id: string };
  let q: { id: string };
  beforeEach(() => {
    p = store.projects.create('p', 'P');
    q = store.projects.create('q', 'Q');
    store.events.record({ kind: 'worker.joined', message: 'worker a joined', workerId: 'wrk_a' });
    clock.advance(1000);
    store.events.record({ kind: 'workload.created', message: 'bot created', projectId: p.id, workload: 'bot' });
    clock.advance(1000);
    store.events.record({ kind: 'replica.failed', message: 'bot replica failed', projectId: p.id, workload: 'bot', workerId: 'wrk_a', data: { exit_code: 137, reason: 'OOM' } });
    clock.advance(1000);
    store.events.record({ kind: 'workload.created', message: 'other created', projectId: q.id, workload: 'other' });
    clock.advance(1000);
    store.events.record({ kind: 'worker.lost', message: 'worker b lost', workerId: 'wrk_b' });
  });
  const messages = (list: Array<{ message: string }>) => list.map((e) => e.message);

  it('lists newest first with their time and data', () => {
    const all = store.events.list({ limit: 100 });
    assert.deepEqual(messages(all), ['worker b lost', 'other created', 'bot replica failed', 'bot created', 'worker a joined']);
    assert.equal(all[0]?.at, isoTime(clock.now()));
    assert.deepEqual(all[2]?.data, { exit_code: 137, reason: 'OOM' });
    assert.equal(all[0]?.data, null);
    assert.equal(all[4]?.worker_id, 'wrk_a');
    assert.equal(all[4]?.project_id, null);
  });

  it('filters by project, with or without hub-wide events', () => {
    assert.deepEqual(messages(store.events.list({ projectId: p.id, limit: 100 })), ['bot replica failed', 'bot created']);
    assert.deepEqual(messages(store.events.list({ projectId: p.id, includeHubWide: true, limit: 100 })), [
      'worker b lost',
      'bot replica failed',
      'bot created',
      'worker a joined',
    ]);
  });

  it('filters by worker and by workload', () => {
    assert.deepEqual(messages(store.events.list({ workerId: 'wrk_a', limit: 100 })), ['bot replica failed', 'worker a joined']);
    assert.deepEqual(messages(store.events.list({ workload: 'bot', limit: 100 })), ['bot replica failed', 'bot created']);
    assert.deepEqual(messages(store.events.list({ workload: 'bot', projectId: q.id, limit: 100 })), []);
  });

  it('filters by time (inclusive), and pages with a limit and an id cursor', () => {
    const start = clock.now() - 4000;
    assert.deepEqual(messages(store.events.list({ sinceIso: isoTime(start + 2000), limit: 100 })), ['worker b lost', 'other created', 'bot replica failed']);
    const page1 = store.events.list({ limit: 2 });
    assert.deepEqual(messages(page1), ['worker b lost', 'other created']);
    const page2 = store.events.list({ limit: 2, beforeId: page1[1]!.id });
    assert.deepEqual(messages(page2), ['bot replica failed', 'bot created']);
  });

  it('keeps the order of events recorded in the same millisecond', () => {
    store.events.record({ kind: 'x', message: 'first' });
    store.events.record({ kind: 'x', message: 'second' });
    assert.deepEqual(messages(store.events.list({ limit: 2 })), ['second', 'first']);
  });
});
