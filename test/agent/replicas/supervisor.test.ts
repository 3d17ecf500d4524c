// The replica supervisor with the real process runtime and the backend simulator: the states it reports, failures with
// their reasons and last log lines, restarts with doubling delays, stop and detach, adoption, and Ollama's model pull.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { backendDriver } from '../../../agent/backends/index.ts';
import { ReplicaSupervisor, type SupervisorDeps } from '../../../agent/replicas/supervisor.ts';
import { ProcessRuntime } from '../../../agent/runtime/process.ts';
import type { PullProgress, RecoveredReplica } from '../../../agent/runtime/types.ts';
import type { ReplicaLaunch, ReplicaReport } from '../../../shared/protocol/replicas.ts';
import { workloadSpecSchema, type WorkloadSpecInput } from '../../../shared/spec/workload-spec.ts';
import { IK_SIM, killProcessReplicas, SIM_PROCESS_MAP, tempDir } from '../../helpers/processes.ts';

const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
const workerId = `wrk_st${run}`;
const silent = pino({ level: 'silent' });
let replicaCount = 0;

// The runtime unrefs its children (in the agent, the hub connection keeps the loop alive): so does this timer here.
const keepAlive = setInterval(() => {}, 60_000);
const dataDirs = new Set<string>();
after(() => {
  clearInterval(keepAlive);
  for (const dir of dataDirs) killProcessReplicas(dir);
});

function newLaunch(spec: Partial<WorkloadSpecInput> = {}, backoffMs = 100): ReplicaLaunch {
  replicaCount += 1;
  const replica_id = `rep_${run}${String(replicaCount).padStart(4, '0')}`;
  const parsed = workloadSpecSchema.parse({ slug: 'sup-test', model: 'ik-sim/model', backend: 'vllm', command: 'vllm serve ik-sim/model', ...spec });
  return { replica_id, project: 'prj_sup_test', workload: 'sup-test', generation: 2, spec: parsed, gpu_uuids: [], restart_backoff_base_ms: backoffMs };
}

interface Entry {
  report: ReplicaReport;
  lastLog: string[] | undefined;
  at: number;
  index: number;
}

/** The supervisor's reports as the manager would send them, with a wait for the next one that matches. */
class Reports {
  readonly entries: Entry[] = [];
  private waiters = new Set<() => void>();

  readonly report = (report: ReplicaReport, lastLog?: string[]): void => {
    this.entries.push({ report: { ...report }, lastLog, at: performance.now(), index: this.entries.length });
    for (const w of this.waiters) w();
  };

  states(): string[] {
    return this.entries.map((e) => e.report.state);
  }

  /** Resolves with the first report at or after index `from` that matches. */
  next(pred: (r: ReplicaReport) => boolean, from = 0, timeoutMs = 20_000): Promise<Entry> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.entries.slice(from).find((e) => pred(e.report));
        if (!found) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`no matching report within ${timeoutMs} ms; reports: ${JSON.stringify(this.entries.map((e) => [e.report.state, e.report.reason]))}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  state(state: ReplicaReport['state'], from = 0, timeoutMs?: number): Promise<Entry> {
    return this.next((r) => r.state === state, from, timeoutMs);
  }
}

interface Harness {
  supervisor: ReplicaSupervisor;
  reports: Reports;
  runtime: ProcessRuntime;
  dataDir: string;
  progress: Array<{ replicaId: string; image: string; progress: PullProgress }>;
  restartsSaved: Map<string, number>;
  deps: SupervisorDeps;
}

function supervise(
  t: TestContext,
  launch: ReplicaLaunch,
  opts: { startTimeoutS?: number; processMap?: Record<string, string>; dataDir?: string; recovered?: RecoveredReplica } = {},
): Harness {
  const dataDir = opts.dataDir ?? tempDir('ik-sup-');
  dataDirs.add(dataDir);
  const runtime = new ProcessRuntime(dataDir);
  const reports = new Reports();
  const progress: Harness['progress'] = [];
  const restartsSaved = new Map<string, number>();
  const deps: SupervisorDeps = {
    runtime,
    workerId,
    config: {
      imageMap: {},
      processMap: opts.processMap ?? JSON.parse(SIM_PROCESS_MAP),
      replicaStartTimeoutS: opts.startTimeoutS ?? 30,
      hfCacheDir: join(dataDir, 'hf-cache'),
    },
    log: silent,
    report: reports.report,
    pullProgress: (replicaId, image, p) => progress.push({ replicaId, image, progress: p }),
    saveRestarts: (replicaId, n) => restartsSaved.set(replicaId, n),
    usedPorts: new Set(),
  };
  const supervisor = new ReplicaSupervisor(launch, deps, opts.recovered);
  t.after(async () => {
    await supervisor.stop(1000, 'the test is over');
    killProcessReplicas(dataDir);
    runtime.close();
  });
  return { supervisor, reports, runtime, dataDir, progress, restartsSaved, deps };
}

/** Runs the garbage collector every 100 ms until cleared (what a long-running agent does now and then). */
function collectGarbageOften(): NodeJS.Timeout {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  return setInterval(gc, 100);
}

function continueProcess(pid: number): void {
  try {
    process.kill(pid, 'SIGCONT');
  } catch {
    // already gone
  }
}

function processExists(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

async function backendGet(port: number, path: string): Promise<{ status: number; body: any; replica: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, replica: res.headers.get('x-ik-sim-replica') };
}

// The health-check test waits out three probe rounds (~25 s, the intervals are fixed): it runs beside the others.
describe('replica supervisor', { concurrency: true }, () => {
  it(
    'a replica whose backend stops answering fails its health checks',
    { timeout: 60_000 },
    async (t) => {
      const { supervisor, reports } = supervise(t, newLaunch({}, 60_000));
      supervisor.start();
      const ready = await reports.state('ready');
      process.kill(ready.report.pid!, 'SIGSTOP'); // a wedged engine: connections are accepted, nothing answers
      t.after(() => continueProcess(ready.report.pid!));
      const collecting = collectGarbageOften(); // as a long-running agent does, every now and then
      t.after(() => clearInterval(collecting));
      // Three probes, each after 5 s and given up after 3 s: about 24 s.
      const failed = await reports.state('failed', ready.index, 35_000);
      continueProcess(ready.report.pid!); // so the cleanup's SIGTERM ends it at once
      assert.equal(failed.report.reason, 'health checks failed 3 times in a row (/health: no answer within the probe timeout)');
    },
  );

  describe('one replica at a time', () => {
    it('starts a replica: starting, then ready on its port with its pid, served by the backend', async (t) => {
      const launch = newLaunch();
      const { supervisor, reports } = supervise(t, launch);
      assert.equal(supervisor.report().state, 'pulling', 'before anything runs the replica is pulling (what the manager sends first)');
      supervisor.start();
      const ready = await reports.state('ready');
      assert.deepEqual(reports.states(), ['starting', 'ready']);
      const r = ready.report;
      assert.equal(r.replica_id, launch.replica_id);
      assert.equal(r.generation, 2);
      assert.equal(r.runtime, 'process');
      assert.equal(r.container_id, null);
      assert.equal(r.restarts, 0);
      assert.equal(r.reason, null);
      assert.ok(r.port && r.pid, 'a ready replica has a port and a pid');
      assert.ok(processExists(r.pid!));
      const models = await backendGet(r.port!, '/v1/models');
      assert.equal(models.replica, launch.replica_id, 'the backend knows its replica id');
      assert.deepEqual(models.body.data.map((m: { id: string }) => m.id), ['ik-sim/model'], 'served under the spec model name');
      assert.deepEqual(supervisor.report(), r);
    });

    it('a backend that exits at once: failed with its last log lines, then restarts with the same id after doubling delays', async (t) => {
      const launch = newLaunch({ env: { IK_SIM_FAIL: 'exit-at-start' } }, 150);
      const { supervisor, reports, restartsSaved } = supervise(t, launch);
      supervisor.start();
      const failures: Entry[] = [];
      const restarts: Entry[] = [];
      for (let n = 1; n <= 3; n++) {
        failures.push(await reports.state('failed', restarts.at(-1)?.index ?? 0));
        restarts.push(await reports.next((r) => r.state === 'pulling' && r.restarts === n, failures.at(-1)!.index));
      }
      const first = failures[0]!;
      assert.equal(first.report.reason, 'it exited with code 1 before it became ready');
      assert.equal(first.report.restarts, 0);
      assert.ok(first.lastLog?.some((l) => l.includes('RuntimeError: Engine core initialization failed')), `last log: ${JSON.stringify(first.lastLog)}`);
      assert.ok(reports.entries.every((e) => e.report.replica_id === launch.replica_id), 'restarts keep the id');
      assert.deepEqual(failures.map((f) => f.report.restarts), [0, 1, 2]);
      assert.equal(restartsSaved.get(launch.replica_id), 3, 'the count is saved for the next agent');

      // The wait between a failure and its restart doubles: 150, 300, 600 ms (plus the cleanup of the failed run).
      const waits = failures.map((f, i) => restarts[i]!.at - f.at);
      const shown = waits.map(Math.round).join(', ');
      waits.forEach((wait, i) => {
        const planned = 150 * 2 ** i;
        // Never shorter than planned (the doubling); the margin above absorbs cleanup on a loaded machine.
        assert.ok(wait >= planned - 5 && wait < planned + 2000, `waits ${shown} ms, planned 150, 300, 600`);
      });
    });

    it('a backend that never becomes ready fails after the start timeout with what was missing', async (t) => {
      const launch = newLaunch({ env: { IK_SIM_FAIL: 'never-ready' } }, 60_000);
      const { supervisor, reports } = supervise(t, launch, { startTimeoutS: 1 });
      const started = performance.now();
      supervisor.start();
      const failed = await reports.state('failed');
      assert.equal(failed.report.reason, 'not ready within 1 s (/health answers 503)');
      assert.ok(failed.at - started >= 1000);
      assert.ok(failed.lastLog?.some((l) => l.includes('Uvicorn running')));
      assert.ok(failed.report.port && failed.report.pid, 'the report names the run that failed');
    });

    it('a backend that cannot bind its port: failed, and the last lines say the address is in use', async (t) => {
      const holder = createServer();
      await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
      t.after(() => holder.close());
      const taken = (holder.address() as AddressInfo).port;
      // A stand-in for a port lost to a race: the wrapper makes the backend bind the taken port whatever it was given.
      const dir = tempDir('ik-sup-wrap-');
      const wrapper = join(dir, 'vllm-on-taken-port');
      writeFileSync(wrapper, `#!/bin/sh\nexec ${IK_SIM} vllm "$@" --port ${taken}\n`);
      chmodSync(wrapper, 0o755);
      const { supervisor, reports } = supervise(t, newLaunch({}, 60_000), { processMap: { vllm: wrapper } });
      supervisor.start();
      const failed = await reports.state('failed');
      assert.equal(failed.report.reason, 'it exited with code 1 before it became ready');
      assert.ok(failed.lastLog?.some((l) => /\[Errno 98\].*address already in use/.test(l)), `last log: ${JSON.stringify(failed.lastLog)}`);
    });

    it('a ready replica killed by a signal: failed with the signal, then ready again with a new pid', async (t) => {
      const { supervisor, reports } = supervise(t, newLaunch());
      supervisor.start();
      const ready = await reports.state('ready');
      process.kill(ready.report.pid!, 'SIGKILL');
      const failed = await reports.state('failed', ready.index);
      assert.equal(failed.report.reason, 'it was killed by SIGKILL');
      assert.ok(failed.lastLog?.some((l) => l.includes('Application startup complete')));
      const again = await reports.state('ready', failed.index);
      assert.equal(again.report.restarts, 1);
      assert.notEqual(again.report.pid, ready.report.pid);
      assert.equal(again.report.reason, null, 'a ready replica carries no failure reason');
      assert.equal((await backendGet(again.report.port!, '/health')).status, 200);
    });

    it('a ready replica that crashes later: the exit is noticed at once and reported with the crash message', async (t) => {
      const { supervisor, reports } = supervise(t, newLaunch({ env: { IK_SIM_FAIL: 'crash-after=1' } }, 60_000));
      supervisor.start();
      const ready = await reports.state('ready');
      const failed = await reports.state('failed', ready.index);
      assert.equal(failed.report.reason, 'it exited with code 1');
      assert.ok(failed.at - ready.at < 3000, 'well before the next health check');
      assert.ok(failed.lastLog?.some((l) => l.includes('simulated crash')));
    });

    it('stop: stopped with the reason, the process gone and its record removed', async (t) => {
      const { supervisor, reports, dataDir, deps } = supervise(t, newLaunch());
      supervisor.start();
      const ready = await reports.state('ready');
      const pid = ready.report.pid!;
      await supervisor.stop(5000, 'removed by the test');
      const last = reports.entries.at(-1)!.report;
      assert.equal(last.state, 'stopped');
      assert.equal(last.reason, 'removed by the test');
      assert.equal(processExists(pid), false, 'the process is gone (and reaped)');
      assert.equal(existsSync(join(dataDir, 'replicas', `${ready.report.replica_id}.json`)), false);
      assert.equal(deps.usedPorts.has(ready.report.port!), false, 'its port is given back');
    });

    it('stop while waiting to restart ends the restart schedule', async (t) => {
      const { supervisor, reports } = supervise(t, newLaunch({ env: { IK_SIM_FAIL: 'exit-at-start' } }, 60_000));
      supervisor.start();
      await reports.state('failed');
      await supervisor.stop(1000, 'removed by the test');
      assert.deepEqual(reports.states(), ['starting', 'failed', 'stopped']);
    });

    it('detach leaves the replica running and reports nothing more', async (t) => {
      const { supervisor, reports, runtime } = supervise(t, newLaunch());
      supervisor.start();
      const ready = await reports.state('ready');
      await supervisor.detach();
      const handle = supervisor.currentHandle!;
      assert.equal(await runtime.isRunning(handle), true);
      assert.equal((await backendGet(ready.report.port!, '/health')).status, 200, 'it still serves');
      const count = reports.entries.length;
      const exited = runtime.wait(handle);
      process.kill(-ready.report.pid!, 'SIGKILL');
      await exited;
      await new Promise((r) => setImmediate(r));
      assert.equal(reports.entries.length, count, 'a detached supervisor no longer watches');
    });

    it('an adopted replica that answers is ready at once, without a restart, and its exit is still noticed', async (t) => {
      const launch = newLaunch();
      const before = supervise(t, launch);
      before.supervisor.start();
      const ready = await before.reports.state('ready');
      await before.supervisor.detach(); // the agent goes away

      const runtime = new ProcessRuntime(before.dataDir); // the next agent
      t.after(() => runtime.close());
      const [recovered] = await runtime.recover(workerId);
      assert.ok(recovered?.running);
      const adopted = supervise(t, launch, { dataDir: before.dataDir, recovered });
      await adopted.supervisor.probeOnce();
      const report = adopted.supervisor.report();
      assert.equal(report.state, 'ready');
      assert.equal(report.pid, ready.report.pid, 'the same process');
      assert.equal(report.port, ready.report.port);
      assert.equal(report.restarts, 0);

      adopted.supervisor.start();
      process.kill(-ready.report.pid!, 'SIGKILL');
      const failed = await adopted.reports.state('failed');
      assert.equal(failed.index, 0, 'nothing was restarted before the process died');
      assert.equal(failed.report.pid, ready.report.pid);
      assert.match(failed.report.reason!, /exit code is unknown/);
      const again = await adopted.reports.state('ready', failed.index);
      assert.equal(again.report.restarts, 1);
    });

    it('an adopted replica whose process is gone is started again', async (t) => {
      const launch = newLaunch();
      const before = supervise(t, launch);
      before.supervisor.start();
      const ready = await before.reports.state('ready');
      await before.supervisor.detach();
      const exited = before.runtime.wait(before.supervisor.currentHandle!);
      process.kill(-ready.report.pid!, 'SIGKILL'); // died while no agent was running
      await exited;

      const runtime = new ProcessRuntime(before.dataDir);
      t.after(() => runtime.close());
      const [recovered] = await runtime.recover(workerId);
      assert.equal(recovered?.running, false);
      const adopted = supervise(t, launch, { dataDir: before.dataDir, recovered });
      await adopted.supervisor.probeOnce();
      adopted.supervisor.start();
      const again = await adopted.reports.state('ready');
      assert.notEqual(again.report.pid, ready.report.pid);
    });

    it(
      'a probe of a backend that accepts connections but never answers gives up after its timeout',
      {},
      async (t) => {
        const sockets = new Set<Socket>();
        const silent = createServer((socket) => sockets.add(socket)); // accepts, never answers
        await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
        t.after(() => {
          for (const socket of sockets) socket.destroy();
          silent.close();
        });
        const collecting = collectGarbageOften();
        t.after(() => clearInterval(collecting));
        const port = (silent.address() as AddressInfo).port;
        const probe = backendDriver('vllm').probe(newLaunch().spec, port, new AbortController().signal);
        let waited: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([probe, new Promise<'no answer'>((resolve) => (waited = setTimeout(() => resolve('no answer'), 6000)))]);
        clearTimeout(waited);
        assert.deepEqual(outcome, { ready: false, detail: '/health: no answer within the probe timeout' }, 'the probe gave up within its 3 s');
      },
    );

    describe('ollama', () => {
      it('pulls the model with progress, and is ready once /api/tags lists it', async (t) => {
        const launch = newLaunch({ slug: 'ollama-test', model: 'qwen2.5:0.5b', backend: 'ollama', command: undefined });
        const { supervisor, reports, progress } = supervise(t, launch);
        supervisor.start();
        const ready = await reports.state('ready');
        assert.deepEqual(reports.states(), ['starting', 'ready']);
        const percents = progress.map((p) => p.progress.percent).filter((p): p is number => p !== null);
        assert.ok(progress.every((p) => p.replicaId === launch.replica_id && p.image === 'qwen2.5:0.5b'));
        assert.ok(progress.some((p) => p.progress.status === 'pulling manifest'));
        assert.ok(percents.some((p) => p > 0 && p < 100), `percentages on the way: ${percents.join(', ')}`);
        assert.equal(percents.at(-1), 100);
        const tags = await backendGet(ready.report.port!, '/api/tags');
        assert.deepEqual(tags.body.models.map((m: { name: string }) => m.name), ['qwen2.5:0.5b']);
      });

      it('a model the registry does not have: failed with ollama\'s error', async (t) => {
        const { supervisor, reports } = supervise(t, newLaunch({ slug: 'ollama-test', model: 'missing-model', backend: 'ollama', command: undefined }, 60_000));
        supervisor.start();
        const failed = await reports.state('failed');
        assert.equal(failed.report.reason, 'ollama pull of missing-model failed: pull model manifest: file does not exist');
      });

      it(
        'a server that never becomes ready fails after the start timeout',
        {},
        async (t) => {
          const { supervisor, reports } = supervise(t, newLaunch({ slug: 'ollama-test', model: 'qwen2.5:0.5b', backend: 'ollama', command: undefined, env: { IK_SIM_FAIL: 'never-ready' } }, 60_000), {
            startTimeoutS: 1,
          });
          supervisor.start();
          const failed = await reports.state('failed', 0, 5000);
          assert.match(failed.report.reason!, /not ready within 1 s/);
        },
      );
    });
  });
});
