// Integration: the tunnel notices dead peers: the hub cuts an agent that stops answering pings, and an agent
// whose hub freezes reconnects on its own once the hub answers again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startHub, startAgent } from '../helpers/processes.ts';
import { waitForWorker } from '../helpers/api.ts';
import { sampleInventory } from '../helpers/inventory.ts';
import { PROTOCOL_VERSION } from '../../shared/version.ts';

test('an agent that stops answering pings is cut off and shows as disconnected', async () => {
  // Heartbeats slower than the test, so only the missing pong can end the session.
  const hub = await startHub({ env: { IK_HEARTBEAT_INTERVAL_MS: '60000', IK_PING_INTERVAL_MS: '200' } });
  const ws = new WebSocket(`${hub.url.replace('http', 'ws')}/agent/connect`, {
    headers: { authorization: `Bearer ${hub.joinToken}` },
    autoPong: false,
  });
  await new Promise((resolve) => ws.once('open', resolve));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.send(JSON.stringify({ type: 'hello', protocol_version: PROTOCOL_VERSION, agent_version: 'test', name: 'deaf', inventory: sampleInventory(1) }));
  await waitForWorker(hub.url, hub.adminToken, 'deaf', (w) => w.state === 'ready');
  assert.equal(await closed, 1006, 'terminated, not closed politely');
  await waitForWorker(hub.url, hub.adminToken, 'deaf', (w) => w.state === 'disconnected', 5000);
  await hub.stop();
});

test('a frozen hub: the agent notices the silence, and reconnects by itself when the hub resumes', async () => {
  const hub = await startHub({ env: { IK_PING_INTERVAL_MS: '300' } });
  const agent = startAgent({ hub, name: 'watchful', smi: 'h100-x1' });
  const before = await waitForWorker(hub.url, hub.adminToken, 'watchful', (w) => w.state === 'ready');
  hub.child.proc.kill('SIGSTOP');
  try {
    await agent.child.waitForLine(/no word from the hub; reconnecting/, 10_000);
  } finally {
    hub.child.proc.kill('SIGCONT');
  }
  const after = await waitForWorker(hub.url, hub.adminToken, 'watchful', (w) => w.state === 'ready' && Date.parse(w.last_heartbeat_at!) > Date.now() - 1000, 30_000);
  assert.equal(after.id, before.id);
  await hub.stop();
});
