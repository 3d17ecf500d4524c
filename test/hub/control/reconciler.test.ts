// The reconciler: the pure diff, a rolling update, and a lost start repaired by the agent's next report.
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase } from '../../../hub/db/open.ts';
import { createStore, type Store } from '../../../hub/store/index.ts';
import { FakeClock } from '../../../shared/clock.ts';
import { createLogger } from '../../../shared/logger.ts';
import { newSecret } from '../../../shared/secrets.ts';
import { planReplicas, type PlannedReplica } from '../../../hub/control/replica-plan.ts';
import { Reconciler, START_RESEND_MS } from '../../../hub/control/reconciler.ts';
import { ReplicaReports } from '../../../hub/control/replica-reports.ts';
import { AgentSessions, type AgentSession } from '../../../hub/tunnel/session.ts';
import { parseWorkloadSpec, type WorkloadSpec } from '../../../shared/spec/workload-spec.ts';
import type { HubMessage } from '../../../shared/protocol/control.ts';
import type { ReplicaReport } from '../../../shared/protocol/replicas.ts';
import { sampleInventory, testSecretBox } from '../../helpers/inventory.ts';

const r = (id: string, generation: number, state: PlannedReplica['state'], created = '2026-01-01T00:00:00Z'): PlannedReplica => ({ id, generation, state, created_at: created });

describe('planReplicas (the pure diff)', () => {
  const cases: Array<[string, Parameters<typeof planReplicas>[0], { create: number; stop: string[] }]> = [
    ['nothing yet: create the desired count', { desired: 2, generation: 1, replicas: [] }, { create: 2, stop: [] }],
    ['enough: nothing to do', { desired: 2, generation: 1, replicas: [r('a', 1, 'ready'), r('b', 1, 'starting')] }, { create: 0, stop: [] }],
    ['one short', { desired: 2, generation: 1, replicas: [r('a', 1, 'ready')] }, { create: 1, stop: [] }],
    [
      'too many: the pending one goes first, then the newest',
      { desired: 1, generation: 1, replicas: [r('a', 1, 'ready', '2026-01-01T00:00:00Z'), r('b', 1, 'ready', '2026-01-02T00:00:00Z'), r('c', 1, 'pending')] },
      { create: 0, stop: ['c', 'b'] },
    ],
    ['scale to zero stops everything', { desired: 0, generation: 1, replicas: [r('a', 1, 'ready'), r('b', 1, 'failed')] }, { create: 0, stop: ['b', 'a'] }],
    ['a new generation: start new ones, keep the old ready ones', { desired: 2, generation: 2, replicas: [r('a', 1, 'ready'), r('b', 1, 'ready')] }, { create: 2, stop: [] }],
    [
      'rolling: one new ready, so one old goes (the newest of them)',
      { desired: 2, generation: 2, replicas: [r('a', 1, 'ready', '2026-01-01T00:00:00Z'), r('b', 1, 'ready', '2026-01-02T00:00:00Z'), r('c', 2, 'ready'), r('d', 2, 'starting')] },
      { create: 0, stop: ['b'] },
    ],
    [
      'rolling done: every old one goes',
      { desired: 2, generation: 2, replicas: [r('a', 1, 'ready'), r('c', 2, 'ready'), r('d', 2, 'ready')] },
      { create: 0, stop: ['a'] },
    ],
    ['an old replica that is not ready serves nobody: it goes at once', { desired: 1, generation: 2, replicas: [r('a', 1, 'failed'), r('b', 2, 'starting')] }, { create: 0, stop: ['a'] }],
  ];
  for (const [name, input, expected] of cases) {
    it(name, () => {
      const plan = planReplicas(input);
      assert.equal(plan.create, expected.create);
      assert.deepEqual([...plan.stop].sort(), [...expected.stop].sort());
    });
  }
});

describe('Reconciler with a store and a recording agent session', () => {
  let store: Store;
  let clock: FakeClock;
  let sessions: AgentSessions;
  let sent: HubMessage[];
  let reconciler: Reconciler;
  let reports: ReplicaReports;
  let workerId: string;
  const log = createLogger({ level: 'silent', name: 'test' });

  const spec = (command = 'vllm serve Qwen/Qwen2.5-0.5B-Instruct'): WorkloadSpec => {
    const parsed = parseWorkloadSpec({ slug: 'chat', model: 'Qwen/Qwen2.5-0.5B-Instruct', backend: 'vllm', command });
    assert.ok(parsed.ok);
    return parsed.spec;
  };
  const starts = () => sent.filter((m) => m.type === 'replica.start');
  const stops = () => sent.filter((m) => m.type === 'replica.stop');
  const report = (id: string, generation: number, state: ReplicaReport['state']): ReplicaReport => ({
    replica_id: id,
    generation,
    state,
    port: 40000,
    runtime: 'process',
    container_id: null,
    pid: 123,
    restarts: 0,
    reason: null,
  });

  beforeEach(() => {
    clock = new FakeClock();
    store = createStore(openDatabase(':memory:'), clock, testSecretBox());
    store.projects.ensure('default', 'Default');
    const inventory = { ...sampleInventory(2), runtime: { ...sampleInventory(2).runtime, kind: 'process' as const } };
    workerId = store.workers.insert({ name: 'box', projectId: null, labels: {}, agentVersion: 't', inventory, credential: newSecret('agent'), joinTokenId: null }).id;
    sessions = new AgentSessions();
    sent = [];
    // The agent end is an edge: a session that records what the hub sends.
    sessions.set(workerId, { send: (m: HubMessage) => (sent.push(m), true) } as unknown as AgentSession);
    reconciler = new Reconciler({
      store,
      sessions,
      clock,
      log,
      config: { restartBackoffBaseMs: 1000, placementStrategy: 'spread', resyncMs: 10_000, stopGraceMs: 1000, degradedAfterMs: 60_000, drainTimeoutMs: 5000 },
    });
    reports = new ReplicaReports({ store, sessions, reconciler, clock, log, workerGraceS: 60 });
  });

  it('creates, places and starts a replica, and the workload becomes active when it is ready', async () => {
    const project = store.projects.getBySlug('default')!;
    const w = store.workloads.insert(project.id, spec());
    reconciler.enqueue(w.id);
    await reconciler.queue.idle();
    assert.equal(starts().length, 1);
    const replica = store.replicas.forWorkload(w.id)[0]!;
    assert.deepEqual([replica.state, replica.worker_id, replica.gpu_uuids.length], ['pulling', workerId, 1]);
    reports.onStatus(workerId, report(replica.id, 1, 'ready'));
    await reconciler.queue.idle();
    assert.equal(store.workloads.getById(w.id)!.state, 'active');
  });

  it('a lost start is repaired: the agent reports no such replica, and the hub sends it again', async () => {
    const project = store.projects.getBySlug('default')!;
    const w = store.workloads.insert(project.id, spec());
    reconciler.enqueue(w.id);
    await reconciler.queue.idle();
    assert.equal(starts().length, 1);
    // The agent never got it: its heartbeats list nothing.
    reports.onReplicaList(workerId, []);
    assert.equal(starts().length, 1, 'not resent at once: the start may still be on its way');
    clock.advance(START_RESEND_MS + 1);
    reports.onReplicaList(workerId, []);
    assert.equal(starts().length, 2);
    const ids = starts().map((m) => (m.type === 'replica.start' ? m.replica.replica_id : ''));
    assert.equal(new Set(ids).size, 1, 'the same replica, sent again');
  });

  it('a replica the hub does not know is stopped when an agent reports it', () => {
    reports.onReplicaList(workerId, [report('rep_UnknownReplica0001', 1, 'ready')]);
    assert.equal(stops().length, 1);
    assert.equal(stops()[0]!.type === 'replica.stop' && stops()[0]!.replica_id, 'rep_UnknownReplica0001');
  });

  it('rolling update: the new generation starts first; the old replica is stopped once the new one is ready', async () => {
    const project = store.projects.getBySlug('default')!;
    const w = store.workloads.insert(project.id, spec());
    reconciler.enqueue(w.id);
    await reconciler.queue.idle();
    const old = store.replicas.forWorkload(w.id)[0]!;
    reports.onStatus(workerId, report(old.id, 1, 'ready'));
    await reconciler.queue.idle();

    assert.ok(store.workloads.replaceSpec(w.id, 1, spec('vllm serve Qwen/Qwen2.5-0.5B-Instruct --max-model-len 4096')));
    reconciler.enqueue(w.id);
    await reconciler.queue.idle();
    const fresh = store.replicas.forWorkload(w.id).find((x) => x.generation === 2)!;
    assert.ok(fresh, 'a generation-2 replica exists');
    assert.equal(stops().length, 0, 'the old one keeps serving while the new one starts');

    reports.onStatus(workerId, report(fresh.id, 2, 'ready'));
    await reconciler.queue.idle();
    assert.deepEqual(stops().map((m) => m.type === 'replica.stop' && m.replica_id), [old.id]);
    assert.equal(store.replicas.get(old.id)!.state, 'draining');
    reports.onStatus(workerId, report(old.id, 1, 'stopped'));
    await reconciler.queue.idle();
    assert.deepEqual(store.replicas.forWorkload(w.id).map((x) => [x.generation, x.state]), [[2, 'ready']]);
  });

  it('deleting the workload stops its replicas', async () => {
    const project = store.projects.getBySlug('default')!;
    const w = store.workloads.insert(project.id, spec());
    reconciler.enqueue(w.id);
    await reconciler.queue.idle();
    const replica = store.replicas.forWorkload(w.id)[0]!;
    store.workloads.delete(w.id);
    reconciler.enqueueAll();
    await reconciler.queue.idle();
    assert.equal(stops().length, 1);
    reports.onStatus(workerId, report(replica.id, 1, 'stopped'));
    assert.equal(store.replicas.get(replica.id)!.state, 'stopped');
    assert.deepEqual(store.replicas.orphanedWorkloadIds(), []);
  });

  it('a worker lost for longer than the grace period: its replica is lost and replaced', async () => {
    const project = store.projects.getBySlug('default')!;
    const w = store.workloads.insert(project.id, spec());
    reconciler.enqueue(w.id);
    await reconciler.queue.idle();
    const replica = store.replicas.forWorkload(w.id)[0]!;
    reports.onWorkerState(workerId, 'down');
    store.workers.setState(workerId, 'down');
    assert.equal(store.replicas.get(replica.id)!.state, 'unknown');
    clock.advance(59_000);
    reports.expireGrace();
    assert.equal(store.replicas.get(replica.id)!.state, 'unknown', 'still within the grace period');
    clock.advance(2000);
    reports.expireGrace();
    await reconciler.queue.idle();
    assert.equal(store.replicas.get(replica.id)!.state, 'stopped', 'lost, and never placed again');
    const pending = store.replicas.forWorkload(w.id).filter((x) => x.id !== replica.id);
    assert.equal(pending.length, 1);
    assert.equal(pending[0]!.state, 'pending', 'the replacement waits: the only worker is down');
    assert.match(store.workloads.getById(w.id)!.placement ?? '', /down/);
  });
});
