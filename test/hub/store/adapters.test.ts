// The adapter store over a real SQLite database: put's three outcomes, listing by name, delete, and cascade.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { openDatabase } from '../../../hub/db/open.ts';
import { createStore, type Store } from '../../../hub/store/index.ts';
import { FakeClock, isoTime } from '../../../shared/clock.ts';
import { parseWorkloadSpec } from '../../../shared/spec/workload-spec.ts';
import { testSecretBox } from '../../helpers/inventory.ts';

describe('adapter store', () => {
  let clock: FakeClock;
  let store: Store;
  let workloadId: string;
  let otherId: string;

  beforeEach(() => {
    clock = new FakeClock();
    store = createStore(openDatabase(':memory:'), clock, testSecretBox());
    const project = store.projects.ensure('default', 'Default');
    const add = (slug: string) => {
      const parsed = parseWorkloadSpec({ slug, model: 'org/M', backend: 'vllm', command: 'vllm serve org/M' });
      assert.ok(parsed.ok);
      return store.workloads.insert(project.id, parsed.spec).id;
    };
    workloadId = add('chat');
    otherId = add('other');
  });

  it('put creates, then is unchanged for the same source, then updated for a new one', () => {
    const t0 = isoTime(clock.now());
    assert.equal(store.adapters.put(workloadId, 'sql', 'org/sql-lora'), 'created');
    assert.deepEqual(store.adapters.get(workloadId, 'sql'), { workload_id: workloadId, name: 'sql', source: 'org/sql-lora', created_at: t0, updated_at: t0 });
    clock.advance(1000);
    assert.equal(store.adapters.put(workloadId, 'sql', 'org/sql-lora'), 'unchanged');
    assert.equal(store.adapters.get(workloadId, 'sql')!.updated_at, t0, 'unchanged keeps updated_at');
    assert.equal(store.adapters.put(workloadId, 'sql', '/models/sql'), 'updated');
    const row = store.adapters.get(workloadId, 'sql')!;
    assert.deepEqual([row.source, row.created_at, row.updated_at], ['/models/sql', t0, isoTime(clock.now())]);
  });

  it('lists one workload\'s adapters by name; names are per workload', () => {
    store.adapters.put(workloadId, 'b', 'org/b');
    store.adapters.put(workloadId, 'a', 'org/a');
    store.adapters.put(otherId, 'a', 'org/other-a');
    assert.deepEqual(store.adapters.list(workloadId).map((r) => [r.name, r.source]), [['a', 'org/a'], ['b', 'org/b']]);
    assert.deepEqual(store.adapters.list(otherId).map((r) => r.source), ['org/other-a']);
    assert.equal(store.adapters.get(workloadId, 'missing'), undefined);
  });

  it('delete answers whether there was one', () => {
    store.adapters.put(workloadId, 'sql', 'org/sql-lora');
    assert.equal(store.adapters.delete(workloadId, 'sql'), true);
    assert.equal(store.adapters.delete(workloadId, 'sql'), false);
    assert.deepEqual(store.adapters.list(workloadId), []);
  });

  it('a deleted workload takes its adapters with it', () => {
    store.adapters.put(workloadId, 'sql', 'org/sql-lora');
    store.workloads.delete(workloadId);
    assert.deepEqual(store.adapters.list(workloadId), []);
  });
});
