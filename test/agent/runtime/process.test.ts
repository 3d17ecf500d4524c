// The process runtime with the backend simulator as the replica: a detached process group on its port, its record for
// adoption, the environment it gets, its bounded log, stopping the whole group, recovery by a new agent, and errors.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { ProcessRuntime, processStartTicks } from '../../../agent/runtime/process.ts';
import { boundLogFile, readLogLines } from '../../../agent/runtime/log-file.ts';
import { allocatePort } from '../../../agent/runtime/ports.ts';
import type { ReplicaHandle, RunSpec } from '../../../agent/runtime/types.ts';
import type { ReplicaLaunch } from '../../../shared/protocol/replicas.ts';
import { workloadSpecSchema } from '../../../shared/spec/workload-spec.ts';
import { eventually } from '../../helpers/api.ts';
import { IK_SIM, tempDir } from '../../helpers/processes.ts';

const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
const workerId = `wrk_pt${run}`;
const spec = workloadSpecSchema.parse({ slug: 'process-test', model: 'm', backend: 'vllm', command: 'vllm serve m' });
let replicaCount = 0;

function newLaunch(): ReplicaLaunch {
  replicaCount += 1;
  const replica_id = `rep_${run}${String(replicaCount).padStart(4, '0')}`;
  return { replica_id, project: 'prj_process_test', workload: 'process-test', generation: 1, spec, gpu_uuids: [], restart_backoff_base_ms: 1000 };
}

function simArgv(port: number): string[] {
  return [IK_SIM, 'vllm', 'serve', 'm', '--host', '127.0.0.1', '--port', String(port), '--served-model-name', 'm'];
}

function runSpec(launch: ReplicaLaunch, port: number, extra: { argv?: string[]; env?: Record<string, string>; workerId?: string } = {}): RunSpec {
  return {
    launch,
    workerId: extra.workerId ?? workerId,
    image: 'none',
    argv: extra.argv ?? simArgv(port),
    env: { IK_REPLICA_ID: launch.replica_id, ...extra.env },
    port,
    gpuUuids: [],
    sharedMemory: false,
    hfCacheDir: '/tmp/ik-hf-unit',
  };
}

// The runtime unrefs its children (in the agent, the hub connection keeps the loop alive): so does this timer here.
const keepAlive = setInterval(() => {}, 60_000);
after(() => clearInterval(keepAlive));

/** Kills what is left of a process group this test started; never a group whose leader's pid was reused since. */
function killGroup(pid: number, startTicks: number | null): void {
  const ticks = processStartTicks(pid);
  if (ticks !== null && ticks !== startTicks) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Starts a replica and makes the test kill its process group when it ends, whatever happened. */
async function startReplica(t: TestContext, rt: ProcessRuntime, spec: RunSpec): Promise<ReplicaHandle> {
  const handle = await rt.start(spec);
  const ticks = processStartTicks(handle.pid!);
  t.after(() => killGroup(handle.pid!, ticks));
  return handle;
}

function newRuntime(t: TestContext, dataDir = tempDir('ik-process-')): ProcessRuntime {
  const rt = new ProcessRuntime(dataDir);
  t.after(() => rt.close());
  return rt;
}

async function get(port: number, path: string): Promise<{ status: number; replica: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  await res.text();
  return { status: res.status, replica: res.headers.get('x-ik-sim-replica') };
}

function waitHealthy(port: number): Promise<{ status: number; replica: string | null }> {
  return eventually(`/health on ${port}`, async () => {
    const res = await get(port, '/health');
    return res.status === 200 ? res : undefined;
  }, 20_000);
}

/** Field `n` (1-based, as proc(5) numbers them) of /proc/<pid>/stat. */
function statField(pid: number, n: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[n - 3]!;
}

/** Gone, or a zombie waiting for a parent that is not us: either way it no longer runs. */
function isDead(pid: number): boolean {
  try {
    return statField(pid, 3) === 'Z';
  } catch {
    return true;
  }
}

function waitDead(pid: number, timeoutMs = 5000): Promise<true> {
  return eventually(`process ${pid} to end`, async () => (isDead(pid) ? true : undefined), timeoutMs);
}

/** A shell that leaves a `sleep` in the group (as vLLM leaves its engine processes) and then becomes the simulator. */
function groupArgv(port: number, pidFile: string): string[] {
  return ['sh', '-c', `sleep 300 & echo $! > ${pidFile}; exec ${simArgv(port).join(' ')}`];
}

describe('process runtime', () => {
  it('starts the command in its own process group on its port and records it for adoption', async (t) => {
    const dir = tempDir('ik-process-');
    const rt = newRuntime(t, dir);
    const launch = newLaunch();
    const port = await allocatePort();
    const handle = await startReplica(t, rt, runSpec(launch, port));
    assert.equal(handle.runtime, 'process');
    assert.equal(handle.port, port);
    assert.equal(handle.containerId, null);

    assert.equal((await waitHealthy(port)).status, 200);
    const recordPath = join(dir, 'replicas', `${launch.replica_id}.json`);
    assert.equal(statSync(recordPath).mode & 0o777, 0o600, 'the record is readable by the agent only');
    const record = JSON.parse(readFileSync(recordPath, 'utf8'));
    assert.equal(record.pid, handle.pid);
    assert.equal(record.port, port);
    assert.equal(record.worker_id, workerId);
    assert.equal(record.start_ticks, processStartTicks(handle.pid!));
    assert.ok(record.start_ticks > 0);
    assert.equal(Number(statField(handle.pid!, 5)), handle.pid, 'the replica leads its own process group');
    assert.equal(await rt.isRunning(handle), true);

    await rt.stop(handle, 5000);
    assert.equal(await rt.isRunning(handle), false);
  });

  it('gives the backend the spec environment and none of the agent secrets', async (t) => {
    const rt = newRuntime(t);
    const launch = newLaunch();
    const port = await allocatePort();
    const saved = { IK_TOKEN: process.env.IK_TOKEN, IK_ADMIN_TOKEN: process.env.IK_ADMIN_TOKEN };
    process.env.IK_TOKEN = 'ik_agent_doNotLeakThisToken';
    process.env.IK_ADMIN_TOKEN = 'ik_sdk_doNotLeakThisEither';
    let handle: ReplicaHandle;
    try {
      handle = await startReplica(t, rt, runSpec(launch, port, { env: { HF_TOKEN: 'hf_spec_value' } }));
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
    const health = await waitHealthy(port);
    assert.equal(health.replica, launch.replica_id, 'IK_REPLICA_ID reached the backend');
    const environ = readFileSync(`/proc/${handle.pid}/environ`, 'utf8').split('\0');
    assert.ok(environ.includes('HF_TOKEN=hf_spec_value'), 'the spec env reached the backend');
    assert.ok(!environ.some((v) => v.startsWith('IK_TOKEN=') || v.startsWith('IK_ADMIN_TOKEN=')), 'agent secrets stay in the agent');
    assert.ok(!environ.some((v) => v.includes('doNotLeak')));
    await rt.stop(handle, 5000);
  });

  it('keeps the output in a log file: last lines, a tail, and a follow that sees new requests', async (t) => {
    const rt = newRuntime(t);
    const launch = newLaunch();
    const port = await allocatePort();
    const handle = await startReplica(t, rt, runSpec(launch, port));
    await waitHealthy(port);
    // The access line of the health check that answered 200 is the last line until the next request.
    await eventually('the access line of the last health check', async () => ((await rt.lastLines(handle, 1))[0]?.includes('"GET /health HTTP/1.1" 200') ? true : undefined));

    const last = await rt.lastLines(handle, 2);
    assert.equal(last.length, 2);
    const abort = new AbortController();
    const tailed: string[][] = [];
    for await (const lines of rt.logs(handle, { tail: 2, since: null, follow: false, signal: abort.signal })) tailed.push(lines);
    assert.deepEqual(tailed, [last], 'without follow: one chunk, the tail');

    const followed: string[] = [];
    let requested = false;
    for await (const lines of rt.logs(handle, { tail: 1, since: null, follow: true, signal: abort.signal })) {
      followed.push(...lines);
      if (!requested) {
        requested = true;
        await get(port, '/v1/models?from=follow-test');
      }
      if (followed.some((l) => l.includes('GET /v1/models?from=follow-test'))) abort.abort();
    }
    assert.ok(followed.length >= 2, 'the tail line, then the new request');
    assert.ok(followed.at(-1)!.includes('GET /v1/models?from=follow-test'));
    await rt.stop(handle, 5000);
  });

  it(
    'logs with since: only lines written after it',
    {},
    async (t) => {
      const rt = newRuntime(t);
      const launch = newLaunch();
      const port = await allocatePort();
      const handle = await startReplica(t, rt, runSpec(launch, port));
      await waitHealthy(port);
      await eventually('the access line of the last health check', async () => ((await rt.lastLines(handle, 1))[0]?.includes('"GET /health HTTP/1.1" 200') ? true : undefined));
      const since = new Date(Date.now() + 1000).toISOString(); // a moment after the last line
      const lines: string[] = [];
      for await (const chunk of rt.logs(handle, { tail: null, since, follow: false, signal: new AbortController().signal })) lines.push(...chunk);
      await rt.stop(handle, 5000);
      assert.deepEqual(lines, [], 'every line was written before `since`');
    },
  );

  it('bounds the log: the old part moves to .1, the backend writes on at the new start, reads see both in order', async (t) => {
    const rt = newRuntime(t);
    const launch = newLaunch();
    const port = await allocatePort();
    const handle = await startReplica(t, rt, runSpec(launch, port));
    await waitHealthy(port);
    const path = rt.logPath(launch.replica_id);
    await eventually('the access line of the health check', async () => (readLogLines(path).some((l) => l.includes('GET /health')) ? true : undefined));
    const before = readLogLines(path);

    boundLogFile(path, 64);
    assert.equal(statSync(path).size, 0, 'the current file starts over');
    assert.ok(readFileSync(`${path}.1`, 'utf8').includes('Application startup complete'));

    await get(port, '/v1/models?from=bound-test');
    const lines = await eventually('the request after bounding', async () => {
      const all = readLogLines(path);
      return all.some((l) => l.includes('from=bound-test')) ? all : undefined;
    });
    assert.ok(!readFileSync(path).includes(0), 'the backend appends at the new end, no hole of NUL bytes');
    assert.deepEqual(lines.slice(0, before.length), before, 'the old part first');
    assert.ok(lines.at(-1)!.includes('from=bound-test'), 'then the new lines');
    assert.ok((await rt.lastLines(handle, 1))[0]!.includes('from=bound-test'));

    boundLogFile(path, 1024 * 1024);
    assert.ok(statSync(path).size > 0, 'a file under the limit is left alone');
    await rt.stop(handle, 5000);
  });

  it('reports how a process ended, with its output in the log', async (t) => {
    const rt = newRuntime(t);
    const handle = await startReplica(t, rt, runSpec(newLaunch(), await allocatePort(), { argv: ['sh', '-c', 'echo "engine exploded" >&2; exit 3'] }));
    const exit = await rt.wait(handle);
    assert.deepEqual(exit, { code: 3, signal: null, reason: 'exited with code 3' });
    assert.deepEqual(await rt.lastLines(handle, 5), ['engine exploded']);
    assert.equal(await rt.isRunning(handle), false);
    await rt.stop(handle, 1000);
  });

  it('stop ends the whole process group, removes the record and leaves no zombie', async (t) => {
    const dir = tempDir('ik-process-');
    const rt = newRuntime(t, dir);
    const launch = newLaunch();
    const port = await allocatePort();
    const pidFile = join(dir, 'sleep.pid');
    const handle = await startReplica(t, rt, runSpec(launch, port, { argv: groupArgv(port, pidFile) }));
    await waitHealthy(port);
    const sleepPid = Number(readFileSync(pidFile, 'utf8'));
    assert.equal(Number(statField(sleepPid, 5)), handle.pid, 'the grandchild is in the replica group');

    const exited = rt.wait(handle);
    await rt.stop(handle, 5000);
    assert.equal(existsSync(`/proc/${handle.pid}`), false, 'the replica is reaped, not left a zombie');
    await waitDead(sleepPid);
    assert.equal(existsSync(join(dir, 'replicas', `${launch.replica_id}.json`)), false, 'the record is removed');
    assert.match((await exited).reason, /exited with code 0|killed by SIGTERM/, 'the simulator shuts down on SIGTERM');
    await assert.rejects(get(port, '/health'), 'nothing listens on the port any more');
  });

  it(
    'stop after the main process died still ends the rest of its group',
    {},
    async (t) => {
      const dir = tempDir('ik-process-');
      const rt = newRuntime(t, dir);
      const port = await allocatePort();
      const pidFile = join(dir, 'sleep.pid');
      const handle = await startReplica(t, rt, runSpec(newLaunch(), port, { argv: groupArgv(port, pidFile) }));
      await waitHealthy(port);
      const sleepPid = Number(readFileSync(pidFile, 'utf8'));

      process.kill(handle.pid!, 'SIGKILL'); // the API server crashes; its engine process (the sleep) stays
      assert.equal((await rt.wait(handle)).reason, 'was killed by SIGKILL');
      await rt.stop(handle, 1000);
      await waitDead(sleepPid, 2000);
    },
  );

  it('a new runtime on the same data dir adopts this worker\'s live replicas only, and not a reused pid', async (t) => {
    const dir = tempDir('ik-process-');
    const rt = newRuntime(t, dir);
    const launch = newLaunch();
    const port = await allocatePort();
    const handle = await startReplica(t, rt, runSpec(launch, port));
    await waitHealthy(port);

    const records = join(dir, 'replicas');
    const live = JSON.parse(readFileSync(join(records, `${launch.replica_id}.json`), 'utf8'));
    const other = newLaunch();
    writeFileSync(join(records, `${other.replica_id}.json`), JSON.stringify({ ...live, replica_id: other.replica_id, worker_id: `wrk_px${run}`, launch: other }));
    const reused = newLaunch();
    // The test process itself is alive, but it is not the process that was started: its start time differs.
    const forged = { ...live, replica_id: reused.replica_id, pid: process.pid, start_ticks: processStartTicks(process.pid)! + 1, launch: reused };
    writeFileSync(join(records, `${reused.replica_id}.json`), JSON.stringify(forged));

    const next = newRuntime(t, dir);
    const found = (await next.recover(workerId)).sort((a, b) => a.handle.replicaId.localeCompare(b.handle.replicaId));
    assert.deepEqual(
      found.map((r) => [r.handle.replicaId, r.running]),
      [
        [launch.replica_id, true],
        [reused.replica_id, false],
      ],
      'the replica of another worker is not listed',
    );
    assert.deepEqual(found[0]!.handle, { replicaId: launch.replica_id, runtime: 'process', containerId: null, pid: handle.pid, port });
    assert.deepEqual(found[0]!.launch, launch);
    assert.equal(await next.isRunning(found[0]!.handle), true);
    assert.equal(await next.isRunning(found[1]!.handle), false);
    assert.equal((await next.recover(`wrk_px${run}`))[0]?.handle.replicaId, other.replica_id);

    await rt.stop(handle, 5000);
    next.forget(reused.replica_id);
    next.forget(other.replica_id);
  });

  it('an adopted replica: wait resolves when it dies (exit code unknown), and the new runtime can stop one', async (t) => {
    const dir = tempDir('ik-process-');
    const rt = newRuntime(t, dir);
    const first = await startReplica(t, rt, runSpec(newLaunch(), await allocatePort()));
    const second = await startReplica(t, rt, runSpec(newLaunch(), await allocatePort()));
    await waitHealthy(first.port);
    await waitHealthy(second.port);

    const next = newRuntime(t, dir);
    const adopted = new Map((await next.recover(workerId)).map((r) => [r.handle.pid, r.handle]));
    const exited = next.wait(adopted.get(first.pid)!);
    process.kill(-first.pid!, 'SIGKILL');
    const exit = await exited;
    assert.equal(exit.code, null);
    assert.match(exit.reason, /exit code is unknown/);

    // Deleting the worker after an agent restart: the new runtime stops what the old one started.
    await next.stop(adopted.get(second.pid)!, 5000);
    assert.equal(await next.isRunning(adopted.get(second.pid)!), false);
    assert.match((await rt.wait(second)).reason, /exited with code 0|killed by SIGTERM/);
    await rt.stop(first, 1000);
  });

  it('a port that another listener holds: the backend exits with uvicorn\'s "address already in use"', async (t) => {
    const rt = newRuntime(t);
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    t.after(() => holder.close());
    const port = (holder.address() as AddressInfo).port;
    const handle = await startReplica(t, rt, runSpec(newLaunch(), port));
    const exit = await rt.wait(handle);
    assert.equal(exit.code, 1);
    assert.ok((await rt.lastLines(handle, 20)).some((l) => l.includes('address already in use')), 'the log says why');
    await rt.stop(handle, 1000);
  });

  it('refuses a program that does not exist, naming it and IK_PROCESS_MAP, and records nothing', async (t) => {
    const dir = tempDir('ik-process-');
    const rt = newRuntime(t, dir);
    const launch = newLaunch();
    const port = await allocatePort();
    await assert.rejects(rt.start(runSpec(launch, port, { argv: ['/nonexistent/bin/vllm', 'serve', 'm'] })), (err: Error) => {
      assert.match(err.message, /\/nonexistent\/bin\/vllm/);
      assert.match(err.message, /IK_PROCESS_MAP/);
      return true;
    });
    assert.deepEqual(readdirSync(join(dir, 'replicas')), []);
    await assert.rejects(rt.start(runSpec(newLaunch(), port, { argv: [] })), /the launch command is empty/);
  });
});
