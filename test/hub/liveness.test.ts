// Worker liveness with a fake clock and a real store: ready while heard from, down after 3 missed heartbeats, back again.
import { testSecretBox } from '../helpers/inventory.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { WorkerLiveness, MISSED_HEARTBEATS_FOR_DOWN } from '../../hub/control/liveness.ts';
import { openDatabase, type Db } from '../../hub/db/open.ts';
import { createStore, type Store } from '../../hub/store/index.ts';
import { FakeClock } from '../../shared/clock.ts';
import { createLogger } from '../../shared/logger.ts';
import { newSecret } from '../../shared/secrets.ts';
import type { Inventory } from '../../shared/inventory.ts';

const INTERVAL = 5000;
const root = mkdtempSync(join(tmpdir(), 'ik-live-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

const inventory: Inventory = {
  host: { hostname: 'box', os: 'Linux', arch: 'x64', cpu_cores: 8, memory_total_mib: 32000, disk_free_mib: null },
  runtime: { kind: 'process', docker_version: null, nvidia_runtime: false, cdi: false, gpu_mode: null, images: [], image_map: {} },
  gpu_driver_version: null,
  cuda_version: null,
  gpu_error: null,
  gpus: [],
};

let db: Db;
let clock: FakeClock;
let store: Store;
let liveness: WorkerLiveness;

beforeEach(() => {
  db = openDatabase(join(root, `l${++n}.db`));
  clock = new FakeClock();
  store = createStore(db, clock, testSecretBox());
  liveness = new WorkerLiveness({ store, clock, log: createLogger({ level: 'silent', name: 'test' }), heartbeatIntervalMs: INTERVAL });
});
afterEach(() => {
  liveness.stop();
  db.close();
});

/** Registers a worker (as a join does) and tells liveness it connected. */
function join_(name: string, projectId: string | null = null) {
  const w = store.workers.insert({ name, projectId, labels: {}, agentVersion: '0.1.0', inventory, credential: newSecret('agent'), joinTokenId: null });
  liveness.connected(w.id, { projectId, name }, 'joined');
  return w;
}

const dbState = (id: string) => store.workers.getById(id)?.state;
const events = (workerId: string) => store.events.list({ workerId, limit: 100 }).reverse();
const kinds = (workerId: string) => events(workerId).map((e) => e.kind);

/** Advances the clock in heartbeat-sized steps, sending a heartbeat after each step. */
function heartbeatFor(id: string, ms: number) {
  for (let t = 0; t < ms; t += INTERVAL) {
    clock.advance(INTERVAL);
    liveness.heartbeat(id);
  }
}

describe('WorkerLiveness', () => {
  it('keeps a connected worker ready while heartbeats arrive', () => {
    liveness.start();
    const w = join_('box-1');
    heartbeatFor(w.id, 10 * 60_000);
    assert.equal(liveness.stateOf(w.id), 'ready');
    assert.equal(dbState(w.id), 'ready');
    assert.deepEqual(kinds(w.id), ['worker.joined']);
  });

  it('also keeps it ready when heartbeats come a little late (under 3 intervals apart)', () => {
    liveness.start();
    const w = join_('box-1');
    for (let i = 0; i < 20; i++) {
      clock.advance(INTERVAL * 2.9);
      liveness.heartbeat(w.id);
    }
    assert.equal(dbState(w.id), 'ready');
  });

  it('marks a silent worker down after 3 missed heartbeats, with an event that says why', () => {
    liveness.start();
    const w = join_('box-1');
    clock.advance(INTERVAL * 4);
    assert.equal(liveness.stateOf(w.id), 'down');
    assert.equal(dbState(w.id), 'down');
    const lost = events(w.id).find((e) => e.kind === 'worker.lost');
    assert.ok(lost, `no worker.lost event: ${kinds(w.id).join(', ')}`);
    assert.match(lost.message, /box-1/);
    assert.match(lost.message, /no heartbeat for \d+ s/);
    assert.match(lost.message, new RegExp(`${MISSED_HEARTBEATS_FOR_DOWN} missed`));
    assert.deepEqual(lost.data, { from: 'ready', to: 'down' });
    assert.equal(lost.worker_id, w.id);
  });

  it('records the worker.lost event once, however long the worker stays silent', () => {
    liveness.start();
    const w = join_('box-1');
    clock.advance(INTERVAL * 100);
    assert.equal(kinds(w.id).filter((k) => k === 'worker.lost').length, 1);
  });

  it('is not down at exactly 3 intervals, and down just after', () => {
    const w = join_('box-1');
    clock.advance(INTERVAL * 3);
    liveness.check();
    assert.equal(liveness.stateOf(w.id), 'ready');
    assert.equal(dbState(w.id), 'ready');
    clock.advance(1);
    liveness.check();
    assert.equal(liveness.stateOf(w.id), 'down');
    assert.equal(dbState(w.id), 'down');
  });

  it('notices a silent worker within half an interval of the limit on its own timer', () => {
    liveness.start();
    const w = join_('box-1');
    clock.advance(INTERVAL * 3);
    assert.equal(dbState(w.id), 'ready');
    clock.advance(INTERVAL / 2);
    assert.equal(dbState(w.id), 'down');
  });

  it('marks a worker disconnected at once when its tunnel drops, with an event', () => {
    liveness.start();
    const w = join_('box-1');
    clock.advance(1000);
    liveness.disconnected(w.id, 'socket closed (1006)');
    assert.equal(liveness.stateOf(w.id), 'disconnected');
    assert.equal(dbState(w.id), 'disconnected');
    const ev = events(w.id).at(-1);
    assert.equal(ev?.kind, 'worker.disconnected');
    assert.match(ev?.message ?? '', /socket closed \(1006\)/);
    assert.match(ev?.message ?? '', /box-1/);
  });

  it('a second disconnect of the same worker records nothing new', () => {
    liveness.start();
    const w = join_('box-1');
    liveness.disconnected(w.id, 'socket closed');
    liveness.disconnected(w.id, 'socket closed again');
    assert.equal(kinds(w.id).filter((k) => k === 'worker.disconnected').length, 1);
  });

  it('brings a down worker back to ready when a heartbeat arrives, with worker.back', () => {
    liveness.start();
    const w = join_('box-1');
    clock.advance(INTERVAL * 4);
    assert.equal(dbState(w.id), 'down');
    liveness.heartbeat(w.id);
    assert.equal(liveness.stateOf(w.id), 'ready');
    assert.equal(dbState(w.id), 'ready');
    const back = events(w.id).at(-1);
    assert.equal(back?.kind, 'worker.back');
    assert.match(back?.message ?? '', /heartbeats resumed/);
    assert.deepEqual(kinds(w.id), ['worker.joined', 'worker.lost', 'worker.back']);
    // and it is judged afresh from that heartbeat on
    clock.advance(INTERVAL * 3);
    assert.equal(dbState(w.id), 'ready');
  });

  it('records worker.back when a disconnected worker reconnects', () => {
    liveness.start();
    const w = join_('box-1');
    liveness.disconnected(w.id, 'socket closed');
    liveness.connected(w.id, { projectId: null, name: 'box-1' }, 'reconnected');
    assert.equal(liveness.stateOf(w.id), 'ready');
    const back = events(w.id).at(-1);
    assert.equal(back?.kind, 'worker.back');
    assert.match(back?.message ?? '', /was disconnected/);
  });

  it('files a private worker\'s events under its project', () => {
    const p = store.projects.create('p', 'P');
    liveness.start();
    const w = join_('private-1', p.id);
    liveness.disconnected(w.id, 'socket closed');
    assert.deepEqual(store.events.list({ projectId: p.id, limit: 10 }).map((e) => e.kind), ['worker.disconnected', 'worker.joined']);
  });

  it('on start turns workers the database calls ready into disconnected (the hub restarted)', () => {
    const ready = store.workers.insert({ name: 'was-ready', projectId: null, labels: {}, agentVersion: '0.1.0', inventory, credential: newSecret('agent'), joinTokenId: null });
    const down = store.workers.insert({ name: 'was-down', projectId: null, labels: {}, agentVersion: '0.1.0', inventory, credential: newSecret('agent'), joinTokenId: null });
    store.workers.setState(down.id, 'down');
    liveness.start();
    assert.equal(dbState(ready.id), 'disconnected');
    assert.equal(liveness.stateOf(ready.id), 'disconnected');
    const ev = events(ready.id).at(-1);
    assert.equal(ev?.kind, 'worker.disconnected');
    assert.match(ev?.message ?? '', /hub restarted/);
    // a worker already down stays down, with no new event
    assert.equal(dbState(down.id), 'down');
    assert.deepEqual(kinds(down.id), []);
  });

  it('a worker that stays disconnected is marked down once 3 heartbeats are missed', () => {
    liveness.start();
    const w = join_('box-1');
    liveness.disconnected(w.id, 'socket closed');
    clock.advance(INTERVAL * 4);
    assert.equal(dbState(w.id), 'down');
    assert.deepEqual(kinds(w.id), ['worker.joined', 'worker.disconnected', 'worker.lost']);
  });

  it(
    'after a hub restart, workers stay disconnected (not lost) while their agents get 3 intervals to reconnect',
    () => {
      const w = store.workers.insert({ name: 'box-1', projectId: null, labels: {}, agentVersion: '0.1.0', inventory, credential: newSecret('agent'), joinTokenId: null });
      clock.advance(60_000); // the hub was down for a minute
      liveness.start();
      clock.advance(INTERVAL);
      assert.equal(dbState(w.id), 'disconnected');
      assert.deepEqual(kinds(w.id), ['worker.disconnected']);
    },
  );

  it('after a restart, a worker that reconnects and heartbeats is ready again', () => {
    const w = store.workers.insert({ name: 'box-1', projectId: null, labels: {}, agentVersion: '0.1.0', inventory, credential: newSecret('agent'), joinTokenId: null });
    liveness.start();
    clock.advance(2000);
    store.workers.markConnected(w.id);
    liveness.connected(w.id, { projectId: null, name: 'box-1' }, 'reconnected');
    heartbeatFor(w.id, INTERVAL * 10);
    assert.equal(dbState(w.id), 'ready');
    assert.deepEqual(kinds(w.id), ['worker.disconnected', 'worker.back']);
  });

  it('forget() stops tracking a worker: no more state changes or events for it', () => {
    liveness.start();
    const w = join_('box-1');
    liveness.forget(w.id);
    assert.equal(liveness.stateOf(w.id), undefined);
    clock.advance(INTERVAL * 10);
    liveness.heartbeat(w.id);
    liveness.disconnected(w.id, 'socket closed');
    assert.equal(dbState(w.id), 'ready');
    assert.deepEqual(kinds(w.id), ['worker.joined']);
  });

  it('ignores heartbeats from a worker it does not know', () => {
    liveness.start();
    liveness.heartbeat('wrk_unknown');
    assert.equal(liveness.stateOf('wrk_unknown'), undefined);
  });

  it('stop() ends the periodic check', () => {
    liveness.start();
    const w = join_('box-1');
    liveness.stop();
    clock.advance(INTERVAL * 10);
    assert.equal(dbState(w.id), 'ready');
  });
});
