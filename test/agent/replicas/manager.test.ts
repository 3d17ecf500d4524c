// The replica manager with the process runtime and the backend simulator, driven by the hub's messages: starts and
// stops (repeated or unknown), the replicas it lists, adoption with the restart count by a new agent, and log reads.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { pino } from 'pino';
import { ReplicaManager } from '../../../agent/replicas/manager.ts';
import { ProcessRuntime } from '../../../agent/runtime/process.ts';
import { agentMessageSchema, type AgentMessage } from '../../../shared/protocol/control.ts';
import type { ReplicaLaunch, ReplicaStatus } from '../../../shared/protocol/replicas.ts';
import { workloadSpecSchema, type WorkloadSpecInput } from '../../../shared/spec/workload-spec.ts';
import { eventually } from '../../helpers/api.ts';
import { killProcessReplicas, SIM_PROCESS_MAP, tempDir } from '../../helpers/processes.ts';

const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
const workerId = `wrk_mt${run}`;
const silent = pino({ level: 'silent' });
let count = 0;

// The runtime unrefs its children (in the agent, the hub connection keeps the loop alive): so does this timer here.
const keepAlive = setInterval(() => {}, 60_000);
const dataDirs = new Set<string>();
after(() => {
  clearInterval(keepAlive);
  for (const dir of dataDirs) killProcessReplicas(dir);
});

function newLaunch(spec: Partial<WorkloadSpecInput> = {}): ReplicaLaunch {
  count += 1;
  const replica_id = `rep_${run}${String(count).padStart(4, '0')}`;
  const parsed = workloadSpecSchema.parse({ slug: 'mgr-test', model: 'ik-sim/model', backend: 'vllm', command: 'vllm serve ik-sim/model', ...spec });
  return { replica_id, project: 'prj_mgr_test', workload: 'mgr-test', generation: 1, spec: parsed, gpu_uuids: [], restart_backoff_base_ms: 100 };
}

function requestId(): string {
  count += 1;
  return `req-${count}`;
}

/** What the manager sends to the hub, each message checked against the wire schema, with a wait for the next match. */
class Sent {
  readonly messages: AgentMessage[] = [];
  private waiters = new Set<() => void>();

  readonly send = (msg: AgentMessage): boolean => {
    this.messages.push(agentMessageSchema.parse(msg));
    for (const w of this.waiters) w();
    return true;
  };

  of<T extends AgentMessage['type']>(type: T): Array<Extract<AgentMessage, { type: T }>> {
    return this.messages.filter((m): m is Extract<AgentMessage, { type: T }> => m.type === type);
  }

  next<T extends AgentMessage>(pred: (m: AgentMessage) => m is T, timeoutMs = 20_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.messages.find(pred);
        if (!found) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`no matching message within ${timeoutMs} ms; sent: ${JSON.stringify(this.messages.map((m) => [m.type, 'replica' in m ? m.replica.state : '']))}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  status(replicaId: string, pred: (s: ReplicaStatus) => boolean, timeoutMs?: number): Promise<ReplicaStatus> {
    return this.next((m): m is ReplicaStatus => m.type === 'replica.status' && m.replica.replica_id === replicaId && pred(m), timeoutMs);
  }
}

interface Agent {
  manager: ReplicaManager;
  sent: Sent;
  runtime: ProcessRuntime;
  dataDir: string;
  stateDir: string;
}

/** One agent's replica manager on a data dir (a second call on the same dir is the agent after a restart). */
function newAgent(t: TestContext, dataDir = tempDir('ik-mgr-')): Agent {
  dataDirs.add(dataDir);
  const runtime = new ProcessRuntime(dataDir);
  const sent = new Sent();
  const stateDir = join(dataDir, 'replica-state');
  const manager = new ReplicaManager({
    runtime,
    stateDir,
    config: { imageMap: {}, processMap: JSON.parse(SIM_PROCESS_MAP), replicaStartTimeoutS: 30, hfCacheDir: join(dataDir, 'hf-cache') },
    log: silent,
    send: sent.send,
  });
  manager.setWorkerId(workerId);
  t.after(async () => {
    await manager.stopAll('the test is over');
    killProcessReplicas(dataDir);
    runtime.close();
  });
  return { manager, sent, runtime, dataDir, stateDir };
}

function startMessage(launch: ReplicaLaunch) {
  return { type: 'replica.start' as const, id: requestId(), replica: launch };
}

async function backendGet(port: number, path: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  await res.text();
  return res.status;
}

describe('replica manager', () => {
  it('a start repeated by the hub runs one replica and answers both requests', async (t) => {
    const { manager, sent, dataDir } = newAgent(t);
    const launch = newLaunch();
    const first = startMessage(launch);
    const second = startMessage(launch);
    manager.onStart(first);
    manager.onStart(second);
    assert.deepEqual(sent.of('reply'), [
      { type: 'reply', reply_to: first.id, ok: true },
      { type: 'reply', reply_to: second.id, ok: true },
    ]);
    assert.equal(sent.of('replica.status')[0]?.replica.state, 'pulling', 'the hub hears of the replica at once');
    const ready = await sent.status(launch.replica_id, (s) => s.replica.state === 'ready');
    assert.equal(manager.reports().length, 1);
    assert.deepEqual(readdirSync(join(dataDir, 'replicas')), [`${launch.replica_id}.json`], 'one process');
    assert.deepEqual(
      sent.of('replica.status').map((s) => s.replica.state),
      ['pulling', 'starting', 'ready'],
    );
    assert.equal((await backendGet(ready.replica.port!, '/health')), 200);
  });

  it('lists every replica it runs, with its state, for the heartbeat', async (t) => {
    const { manager, sent } = newAgent(t);
    const a = newLaunch();
    const b = newLaunch();
    manager.onStart(startMessage(a));
    manager.onStart(startMessage(b));
    await sent.status(a.replica_id, (s) => s.replica.state === 'ready');
    await sent.status(b.replica_id, (s) => s.replica.state === 'ready');
    const reports = manager.reports().sort((x, y) => x.replica_id.localeCompare(y.replica_id));
    assert.deepEqual(reports.map((r) => [r.replica_id, r.state, r.runtime]), [
      [a.replica_id, 'ready', 'process'],
      [b.replica_id, 'ready', 'process'],
    ]);
    assert.notEqual(reports[0]!.port, reports[1]!.port, 'each has its own port');
  });

  it('a stop of a replica it does not run answers ok and reports it stopped', async (t) => {
    const { manager, sent } = newAgent(t);
    const replicaId = `rep_${run}unknown1`;
    const stop = { type: 'replica.stop' as const, id: requestId(), replica_id: replicaId, reason: 'scaled down', grace_ms: 1000 };
    manager.onStop(stop);
    assert.deepEqual(sent.of('reply'), [{ type: 'reply', reply_to: stop.id, ok: true }]);
    const [status] = sent.of('replica.status');
    assert.equal(status?.replica.replica_id, replicaId);
    assert.equal(status?.replica.state, 'stopped');
    assert.equal(status?.replica.reason, 'not running on this worker');
  });

  it('a stop of a running replica ends its process and forgets it', async (t) => {
    const { manager, sent, stateDir } = newAgent(t);
    const launch = newLaunch();
    manager.onStart(startMessage(launch));
    const ready = await sent.status(launch.replica_id, (s) => s.replica.state === 'ready');
    process.kill(ready.replica.pid!, 'SIGKILL'); // one restart, so a restart count is stored
    const again = await sent.status(launch.replica_id, (s) => s.replica.state === 'ready' && s.replica.restarts === 1);
    assert.ok(existsSync(join(stateDir, `${launch.replica_id}.json`)));

    const stop = { type: 'replica.stop' as const, id: requestId(), replica_id: launch.replica_id, reason: 'scaled down', grace_ms: 5000 };
    manager.onStop(stop);
    const stopped = await sent.status(launch.replica_id, (s) => s.replica.state === 'stopped');
    assert.equal(stopped.replica.reason, 'scaled down');
    assert.equal(existsSync(`/proc/${again.replica.pid}`), false, 'the process is gone');
    await eventually('the replica to leave the list', async () => (manager.reports().length === 0 ? true : undefined));
    assert.equal(existsSync(join(stateDir, `${launch.replica_id}.json`)), false, 'its restart count is forgotten');
  });

  it('a new agent adopts the running replica with its restart count', async (t) => {
    const before = newAgent(t);
    const launch = newLaunch();
    before.manager.onStart(startMessage(launch));
    const ready = await before.sent.status(launch.replica_id, (s) => s.replica.state === 'ready');
    process.kill(ready.replica.pid!, 'SIGKILL');
    const again = await before.sent.status(launch.replica_id, (s) => s.replica.state === 'ready' && s.replica.restarts === 1);
    await before.manager.detachAll(); // the agent stops; its replica keeps running

    const next = newAgent(t, before.dataDir);
    await next.manager.recover(workerId);
    const [report] = next.manager.reports();
    assert.equal(report?.replica_id, launch.replica_id);
    assert.equal(report?.state, 'ready', 'a replica that answers is ready at once');
    assert.equal(report?.pid, again.replica.pid, 'the same process, not a new one');
    assert.equal(report?.restarts, 1, 'the restart count is read back');
    assert.equal(await backendGet(report!.port!, '/health'), 200);
  });

  it('logs.read sends the tail in chunks and ends; a follow sends new lines until logs.cancel', async (t) => {
    const { manager, sent } = newAgent(t);
    const launch = newLaunch();
    manager.onStart(startMessage(launch));
    const ready = await sent.status(launch.replica_id, (s) => s.replica.state === 'ready');

    const read = { type: 'logs.read' as const, id: requestId(), replica_id: launch.replica_id, tail: 3, since: null, follow: false };
    await manager.onLogsRead(read);
    const chunks = sent.of('logs.chunk').filter((c) => c.reply_to === read.id);
    assert.equal(chunks.length, 1);
    assert.equal(chunks[0]!.lines.length, 3);
    assert.deepEqual(sent.of('logs.end').filter((e) => e.reply_to === read.id), [{ type: 'logs.end', reply_to: read.id }]);

    const follow = { type: 'logs.read' as const, id: requestId(), replica_id: launch.replica_id, tail: 1, since: null, follow: true };
    const following = manager.onLogsRead(follow);
    await sent.next((m): m is AgentMessage => m.type === 'logs.chunk' && m.reply_to === follow.id);
    await backendGet(ready.replica.port!, '/v1/models?from=manager-follow');
    await sent.next((m): m is AgentMessage => m.type === 'logs.chunk' && m.reply_to === follow.id && m.lines.some((l) => l.includes('from=manager-follow')));
    assert.equal(sent.of('logs.end').filter((e) => e.reply_to === follow.id).length, 0, 'a follow goes on');
    manager.onLogsCancel(follow.id);
    await following;
    assert.deepEqual(sent.messages.at(-1), { type: 'logs.end', reply_to: follow.id });
  });

  it('an Ollama pull reports its progress to the hub, at most once a second and always the end', async (t) => {
    const { manager, sent } = newAgent(t);
    const launch = newLaunch({ slug: 'mgr-ollama', model: 'qwen2.5:0.5b', backend: 'ollama', command: undefined });
    manager.onStart(startMessage(launch));
    await sent.status(launch.replica_id, (s) => s.replica.state === 'ready');
    const progress = sent.of('image.pull.progress');
    assert.ok(progress.length > 0 && progress.length < 11, `${progress.length} progress messages for 11 progress lines`);
    assert.ok(progress.every((p) => p.replica_id === launch.replica_id && p.image === 'qwen2.5:0.5b'));
    assert.equal(progress.at(-1)?.percent, 100);
  });
});
