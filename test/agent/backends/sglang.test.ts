// The SGLang driver's launch line: metrics always on, LoRA on for the task types that take adapters.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sglang } from '../../../agent/backends/sglang.ts';
import { parseWorkloadSpec, type WorkloadSpec } from '../../../shared/spec/workload-spec.ts';

function spec(fields: Record<string, unknown>): WorkloadSpec {
  const parsed = parseWorkloadSpec({ slug: 'w', model: 'org/M', backend: 'sglang', ...fields });
  assert.ok(parsed.ok, JSON.stringify(parsed));
  return parsed.spec;
}

describe('sglang driver', () => {
  for (const taskType of ['text2text', 'classification', 'reranker', 'score']) {
    it(`${taskType}: starts with --enable-lora`, () => {
      assert.deepEqual(sglang.argv(spec({ task_type: taskType }), 40002), [
        'python3', '-m', 'sglang.launch_server', '--model-path', 'org/M',
        '--host', '127.0.0.1', '--port', '40002', '--served-model-name', 'org/M', '--enable-metrics', '--enable-lora',
      ]);
    });
  }

  it('does not repeat flags the command already has', () => {
    const argv = sglang.argv(spec({ command: 'python3 -m sglang.launch_server --model-path org/M --enable-lora --enable-metrics' }), 40002);
    assert.equal(argv.filter((w) => w === '--enable-lora').length, 1);
    assert.equal(argv.filter((w) => w === '--enable-metrics').length, 1);
  });

  it('task types without adapters get metrics only', () => {
    for (const taskType of ['embedding', 'image2text', 'reward']) {
      const argv = sglang.argv(spec({ task_type: taskType }), 40002);
      assert.ok(!argv.includes('--enable-lora'), taskType);
      assert.ok(argv.includes('--enable-metrics'), taskType);
    }
    assert.deepEqual(sglang.env(spec({}), 40002), {});
  });
});
