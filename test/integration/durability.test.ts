// Integration: kill -9 of the hub in the middle of a burst of writes loses no acknowledged write and leaves a
// consistent database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startHub } from '../helpers/processes.ts';
import { api } from '../helpers/api.ts';
import { DATABASE_FILE } from '../../hub/main.ts';

test('kill -9 during a burst of ensure() and key writes: every acknowledged write survives', async () => {
  const hub = await startHub();
  const acked = new Map<string, number>(); // slug → generation the hub acknowledged
  const ackedKeys: string[] = [];
  let killed = false;
  let next = 0;

  const worker = async () => {
    while (!killed) {
      const i = next++;
      const slug = `burst-${i}`;
      try {
        const spec = { slug, model: 'llama3.2', backend: 'ollama', execution_policy_config: { replicas: i % 3 } };
        const res = await api(hub.url, hub.adminToken, 'PUT', `/api/v1/projects/default/workloads/${slug}`, spec);
        if (res.status === 201) acked.set(slug, res.body.generation);
        const again = await api(hub.url, hub.adminToken, 'PUT', `/api/v1/projects/default/workloads/${slug}`, { ...spec, execution_policy_config: { replicas: 5 } });
        if (again.status === 200) acked.set(slug, again.body.generation);
        const key = await api(hub.url, hub.adminToken, 'POST', `/api/v1/projects/default/workloads/${slug}/keys`, {});
        if (key.status === 201) ackedKeys.push(`${slug}/${key.body.id}`);
      } catch {
        // The hub died under this request: it was never acknowledged.
        return;
      }
      if (acked.size >= 60 && !killed) {
        killed = true;
        await hub.stop('SIGKILL');
      }
    }
  };
  await Promise.all(Array.from({ length: 12 }, worker));
  assert.ok(acked.size >= 60, `burst acknowledged ${acked.size} workloads`);

  const db = new Database(join(hub.dataDir, DATABASE_FILE));
  assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  assert.deepEqual(db.pragma('foreign_key_check'), []);
  db.close();

  const again = await hub.restart();
  for (const [slug, generation] of acked) {
    const res = await api(again.url, again.adminToken, 'GET', `/api/v1/projects/default/workloads/${slug}`);
    assert.equal(res.status, 200, slug);
    assert.ok(res.body.generation >= generation, `${slug}: generation ${res.body.generation} < acknowledged ${generation}`);
  }
  for (const entry of ackedKeys) {
    const [slug, id] = entry.split('/') as [string, string];
    const keys = await api(again.url, again.adminToken, 'GET', `/api/v1/projects/default/workloads/${slug}/keys`);
    assert.ok(keys.body.items.some((k: { id: string }) => k.id === id), `key ${id} of ${slug}`);
  }
  await again.stop();
});
