// Integration: the tunnel refuses bad input (invalid, unknown or oversized messages) and keeps serving everyone else.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startHub, startAgent, type TestHub } from '../helpers/processes.ts';
import { listWorkers, waitForWorker } from '../helpers/api.ts';
import { sampleInventory } from '../helpers/inventory.ts';
import { PROTOCOL_VERSION } from '../../shared/version.ts';

let hub: TestHub;

before(async () => {
  hub = await startHub();
  // A real agent that must keep working while others misbehave.
  startAgent({ hub, name: 'bystander', smi: 'h100-x1' });
  await waitForWorker(hub.url, hub.adminToken, 'bystander', (w) => w.state === 'ready');
});
after(() => hub.stop());

interface Session {
  ws: WebSocket;
  messages: Array<Record<string, unknown>>;
  closed: Promise<{ code: number; reason: string }>;
  next(type: string): Promise<Record<string, unknown>>;
}

/** Opens a raw tunnel; `null` sends no token at all. */
function connect(token: string | null = hub.joinToken): Promise<Session> {
  const ws = new WebSocket(`${hub.url.replace('http', 'ws')}/agent/connect`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const messages: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data) => {
    messages.push(JSON.parse(data.toString()));
    for (const w of waiters) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const next = (type: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const m = messages.find((m) => m.type === type);
        if (m) resolve(m);
      };
      waiters.push(check);
      check();
      const fail = () => reject(new Error(`no ${type} message; got ${JSON.stringify(messages)}`));
      void closed.then(() => setTimeout(fail, 50));
      setTimeout(fail, 5000).unref();
    });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, messages, closed, next }));
    ws.once('error', reject);
  });
}

function hello(name: string, extra: Record<string, unknown> = {}) {
  return JSON.stringify({ type: 'hello', protocol_version: PROTOCOL_VERSION, agent_version: 'test', name, inventory: sampleInventory(1), ...extra });
}

async function bystanderStillFine(): Promise<void> {
  const since = Date.now();
  await waitForWorker(hub.url, hub.adminToken, 'bystander', (w) => w.state === 'ready' && Date.parse(w.last_heartbeat_at!) >= since - 100);
}

for (const [what, frame] of [
  ['a message that is not JSON', '{"type": "hello", '],
  ['an unknown message type', JSON.stringify({ type: 'launch_missiles' })],
  ['a heartbeat before hello', JSON.stringify({ type: 'heartbeat', seq: 0, gpus: [], gpu_error: null })],
  ['a hub-only message from an agent', JSON.stringify({ type: 'welcome', worker_id: 'wrk_AAAAAAAAAAAAAAAA', heartbeat_interval_ms: 1, config: { heartbeat_interval_ms: 1, inventory_interval_ms: 1, ping_interval_ms: 1 } })],
  ['a hello with an unknown field', hello('extra-field', { favourite_colour: 'green' })],
  ['a hello with a wrongly typed inventory', JSON.stringify({ type: 'hello', protocol_version: PROTOCOL_VERSION, agent_version: 'x', name: 'bad-inv', inventory: { gpus: 'many' } })],
] as const) {
  test(`${what} gets go_away protocol_error and a close; others keep being served`, async () => {
    const s = await connect();
    s.ws.send(frame);
    const goAway = await s.next('go_away');
    assert.equal(goAway.code, 'protocol_error');
    assert.ok(String(goAway.message).length > 0);
    assert.equal((await s.closed).code, 4002);
    await bystanderStillFine();
  });
}

test('a second hello on an accepted tunnel is a protocol error', async () => {
  const s = await connect();
  s.ws.send(hello('double-hello'));
  const welcome = await s.next('welcome');
  assert.match(String(welcome.worker_id), /^wrk_/);
  assert.match(String(welcome.credential), /^ik_agent_/);
  s.ws.send(hello('double-hello'));
  assert.equal((await s.next('go_away')).code, 'protocol_error');
  assert.equal((await s.closed).code, 4002);
});

test('a stream frame before hello is a protocol error', async () => {
  const s = await connect();
  s.ws.send(Buffer.from([0, 0, 0, 0, 0, 1]));
  assert.equal((await s.next('go_away')).code, 'protocol_error');
  assert.equal((await s.closed).code, 4002);
});

test('a stream frame too short to carry a header is a protocol error after welcome', async () => {
  const s = await connect();
  s.ws.send(hello('short-frame'));
  await s.next('welcome');
  s.ws.send(Buffer.from([0, 0, 1]));
  assert.equal((await s.next('go_away')).code, 'protocol_error');
  await bystanderStillFine();
});

test('an oversized frame is refused by the socket (1009) and the hub keeps serving', async () => {
  const s = await connect();
  s.ws.send('x'.repeat(2 * 1024 * 1024));
  assert.equal((await s.closed).code, 1009);
  await bystanderStillFine();
});

test('no token, a wrong token, an old protocol: reject with a code, and nothing is registered', async () => {
  const before = (await listWorkers(hub.url, hub.adminToken)).length;
  for (const [token, msg, code] of [
    [null, hello('no-token'), 'invalid_token'],
    ['ik_join_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB', hello('wrong-token'), 'invalid_token'],
    [hub.adminToken, hello('admin-token'), 'invalid_token'],
    [hub.joinToken, hello('old-agent', { protocol_version: 999 }), 'protocol_version'],
  ] as const) {
    const s = await connect(token);
    s.ws.send(msg);
    const reject = await s.next('reject');
    assert.equal(reject.code, code);
    assert.equal((await s.closed).code, 4003);
  }
  assert.equal((await listWorkers(hub.url, hub.adminToken)).length, before);
});

test('an unknown path on the WebSocket port is refused', async () => {
  const ws = new WebSocket(`${hub.url.replace('http', 'ws')}/agent/nope`);
  const err = await new Promise<Error>((resolve) => ws.once('error', resolve));
  assert.match(err.message, /404/);
});
