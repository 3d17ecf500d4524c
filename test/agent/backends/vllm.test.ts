// The vLLM driver's launch line and environment: LoRA on (runtime updates allowed) for the task types that take adapters.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { vllm } from '../../../agent/backends/vllm.ts';
import { parseWorkloadSpec, type WorkloadSpec } from '../../../shared/spec/workload-spec.ts';

function spec(fields: Record<string, unknown>): WorkloadSpec {
  const parsed = parseWorkloadSpec({ slug: 'w', model: 'org/M', backend: 'vllm', command: 'vllm serve org/M', ...fields });
  assert.ok(parsed.ok, JSON.stringify(parsed));
  return parsed.spec;
}

describe('vllm driver', () => {
  for (const taskType of ['text2text', 'classification', 'reranker', 'score']) {
    it(`${taskType}: starts with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`, () => {
      const s = spec({ task_type: taskType });
      assert.deepEqual(vllm.argv(s, 40001), [
        'vllm', 'serve', 'org/M', '--host', '127.0.0.1', '--port', '40001', '--served-model-name', 'org/M', '--enable-lora',
      ]);
      assert.deepEqual(vllm.env(s, 40001), { VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True' });
    });
  }

  it('does not add --enable-lora twice when the command has it', () => {
    const s = spec({ command: 'vllm serve org/M --enable-lora --max-loras 4' });
    assert.equal(vllm.argv(s, 40001).filter((w) => w === '--enable-lora').length, 1);
    assert.deepEqual(vllm.argv(s, 40001).slice(0, 6), ['vllm', 'serve', 'org/M', '--enable-lora', '--max-loras', '4']);
  });

  it('leaves LoRA off when the command says --no-enable-lora (a model without LoRA support)', () => {
    const argv = vllm.argv(spec({ command: 'vllm serve org/M --no-enable-lora' }), 40001);
    assert.ok(!argv.includes('--enable-lora'), argv.join(' '));
  });

  it('task types without adapters start as before: no flag, no environment', () => {
    for (const taskType of ['embedding', 'image2text', 'reward', 'audio2text']) {
      const s = spec({ task_type: taskType });
      assert.ok(!vllm.argv(s, 40001).includes('--enable-lora'), taskType);
      assert.deepEqual(vllm.env(s, 40001), {}, taskType);
    }
  });
});
