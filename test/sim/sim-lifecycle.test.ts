// The simulator's process behaviour: start time, startup delay, bad commands, port taken, signals, queueing, disconnects,
// prefix cache and injected failures.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { seededRandom } from './text.ts';
import { freePort, metric, postJson, runSim, spawnSim, startSim, waitFor, type SimProcess } from './harness.ts';

const chatBody = (content: string, extra: Record<string, unknown> = {}) => ({ model: 'm', messages: [{ role: 'user', content }], ...extra });

async function metrics(sim: SimProcess): Promise<{ running: number; waiting: number; generated: number }> {
  const text = await (await fetch(`${sim.url}/metrics`)).text();
  return {
    running: metric(text, 'vllm:num_requests_running'),
    waiting: metric(text, 'vllm:num_requests_waiting'),
    generated: metric(text, 'vllm:generation_tokens_total'),
  };
}

/** Opens a streamed chat with node:http, resolves once the first chunk arrived; `close()` drops the connection. */
function openStream(sim: SimProcess, content: string, maxTokens: number): Promise<{ close(): void }> {
  return new Promise((resolve, reject) => {
    const req = request(`${sim.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.once('data', () => resolve({ close: () => req.destroy() }));
    });
    req.once('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err);
    });
    req.end(JSON.stringify(chatBody(content, { stream: true, max_tokens: maxTokens })));
  });
}

describe('ik-sim lifecycle', () => {
  test('starts well under a second with a warm bundle', async (t) => {
    await runSim(['--build']);
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const sim = await startSim(['vllm', 'serve', 'm']);
      times.push(performance.now() - started);
      await sim.stop('SIGKILL');
    }
    const best = Math.min(...times);
    t.diagnostic(`spawn → /health 200: ${times.map((ms) => ms.toFixed(0)).join(', ')} ms`);
    assert.ok(best < 1000, `start took ${best} ms`);
  });

  test('startup delay: /health 503 and no model listed, then 200', async () => {
    const sim = await spawnSim(['vllm', 'serve', 'm'], { IK_SIM_STARTUP_MS: '700' });
    await waitFor(async () => (await fetch(`${sim.url}/health`).catch(() => null)) !== null, 5000, sim.output);
    assert.equal((await fetch(`${sim.url}/health`)).status, 503);
    assert.deepEqual(((await (await fetch(`${sim.url}/v1/models`)).json()) as { data: unknown[] }).data, []);
    assert.equal((await postJson(`${sim.url}/v1/chat/completions`, chatBody('hi'))).status, 503);
    await waitFor(async () => (await fetch(`${sim.url}/health`)).status === 200, 3000, sim.output);
    assert.equal(((await (await fetch(`${sim.url}/v1/models`)).json()) as { data: unknown[] }).data.length, 1);
    assert.match(sim.output(), /Application startup complete/);
    await sim.stop();
  });

  test('exit-at-start exits 1 at once with a message', async () => {
    const r = await runSim(['vllm', 'serve', 'm', '--port', String(await freePort())], { IK_SIM_FAIL: 'exit-at-start' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /exit-at-start/);
  });

  test('malformed commands exit 2 with argparse-style messages', async () => {
    const noModel = await runSim(['vllm', 'serve']);
    assert.equal(noModel.code, 2);
    assert.match(noModel.stderr, /the following arguments are required: model_tag/);
    const sglang = await runSim(['python3', '-m', 'sglang.launch_server', '--port', '1']);
    assert.equal(sglang.code, 2);
    assert.match(sglang.stderr, /--model-path/);
    const port = await runSim(['vllm', 'serve', 'm', '--port', 'abc']);
    assert.equal(port.code, 2);
    assert.match(port.stderr, /argument --port: invalid int value: 'abc'/);
    const knob = await runSim(['vllm', 'serve', 'm'], { IK_SIM_FAIL: 'explode' });
    assert.equal(knob.code, 2);
    assert.match(knob.stderr, /IK_SIM_FAIL: unknown item 'explode'/);
  });

  test('port taken: exits 1 with uvicorn\'s "address already in use" message', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await runSim(['vllm', 'serve', 'm', '--port', String(port)]);
      assert.equal(r.code, 1);
      assert.ok(
        r.stderr.includes(`[Errno 98] error while attempting to bind on address ('127.0.0.1', ${port}): address already in use`),
        r.stderr,
      );
    } finally {
      blocker.close();
    }
  });

  test('SIGTERM exits 0 after uvicorn\'s shutdown lines', async () => {
    const sim = await startSim(['vllm', 'serve', 'm']);
    const { code } = await sim.stop('SIGTERM');
    assert.equal(code, 0);
    assert.match(sim.output(), /Finished server process/);
  });

  test('max-num-seqs: extra requests wait (num_requests_waiting); disconnects free the slots at once', async () => {
    const sim = await startSim(['vllm', 'serve', 'm', '--max-num-seqs', '64'], { IK_SIM_MAX_NUM_SEQS: '2', IK_SIM_ITL_MS: '20' });
    const first = await Promise.all([openStream(sim, 'a', 500), openStream(sim, 'b', 500)]);
    // Three more queue behind them (their first bytes only come when a slot frees, so don't wait for them).
    const queued = [0, 1, 2].map(() => new AbortController());
    const pending = queued.map((c, i) => postJson(`${sim.url}/v1/chat/completions`, chatBody(`q${i}`, { max_tokens: 500 }), { signal: c.signal }).catch(() => null));
    await waitFor(async () => (await metrics(sim)).waiting === 3, 3000, sim.output);
    assert.equal((await metrics(sim)).running, 2);
    for (const c of queued) c.abort();
    await Promise.all(pending);
    await waitFor(async () => (await metrics(sim)).waiting === 0, 1000, sim.output);
    for (const s of first) s.close();
    const closedAt = Date.now();
    await waitFor(async () => (await metrics(sim)).running === 0, 1000, sim.output);
    assert.ok(Date.now() - closedAt < 1000);
    // Generation really stopped: the token counter no longer moves.
    const { generated } = await metrics(sim);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await metrics(sim)).generated, generated);
    assert.ok(generated < 2 * 500);
    await sim.stop();
  });

  test('prefix cache: a repeated prompt prefix gets a fifth of the TTFT', async () => {
    const sim = await startSim(['vllm', 'serve', 'm'], { IK_SIM_TTFT_MS: '300' });
    const timed = async (content: string) => {
      const t0 = performance.now();
      await (await postJson(`${sim.url}/v1/chat/completions`, chatBody(content, { max_tokens: 1 }))).json();
      return performance.now() - t0;
    };
    const cold = await timed('a long shared system prompt, then question one');
    const warm = await timed('a long shared system prompt, then question one');
    assert.ok(cold >= 290, `cold ${cold}`);
    assert.ok(warm < 200, `warm ${warm}`);
    await sim.stop();
  });

  test('http500: the seeded fraction of inference requests fails, the same way on every run', async () => {
    const sim = await startSim(['vllm', 'serve', 'm'], { IK_SIM_FAIL: 'http500=0.5' });
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await postJson(`${sim.url}/v1/chat/completions`, chatBody('x', { max_tokens: 1 }))).status);
    const draw = seededRandom(42);
    assert.deepEqual(statuses, statuses.map(() => (draw() < 0.5 ? 500 : 200)));
    assert.ok(statuses.includes(500) && statuses.includes(200));
    assert.equal((await fetch(`${sim.url}/health`)).status, 200);
    await sim.stop();
  });

  test('hang, never-ready, crash-after', async () => {
    const [hang, never, crash] = await Promise.all([
      spawnSim(['vllm', 'serve', 'm'], { IK_SIM_FAIL: 'hang' }),
      spawnSim(['vllm', 'serve', 'm'], { IK_SIM_FAIL: 'never-ready' }),
      spawnSim(['vllm', 'serve', 'm'], { IK_SIM_FAIL: 'crash-after=0.5' }),
    ]);
    await waitFor(() => hang.output().includes('Uvicorn running'), 5000, hang.output);
    await assert.rejects(fetch(`${hang.url}/health`, { signal: AbortSignal.timeout(300) }), /timeout|abort/i);
    await waitFor(() => never.output().includes('Uvicorn running'), 5000, never.output);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await fetch(`${never.url}/health`)).status, 503);
    const { code } = await crash.exited;
    assert.equal(code, 1);
    assert.match(crash.output(), /simulated crash/);
    await Promise.all([hang.stop('SIGKILL'), never.stop()]);
  });
});
