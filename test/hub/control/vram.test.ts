// The VRAM estimate: model sizes read from ids, bytes per parameter from flags and hints, parallel sizes, engine claims.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultSglangMemFraction, estimateVram, parseModelSize, quantizationHint } from '../../../hub/control/vram.ts';
import type { Backend } from '../../../shared/spec/backends.ts';

describe('parseModelSize', () => {
  const cases: Array<[string, number | null]> = [
    ['meta-llama/Llama-3.1-8B-Instruct', 8], // 3.1 is a version, not the size
    ['Qwen/Qwen2.5-0.5B-Instruct', 0.5],
    ['Qwen/Qwen2.5-1.5B', 1.5],
    ['hexgrad/Kokoro-82M', 0.082],
    ['meta-llama/Meta-Llama-3-70b', 70],
    ['mistralai/Mixtral-8x7B-Instruct-v0.1', 56],
    ['mistralai/Mixtral-8x22B-v0.1', 176],
    ['Qwen/Qwen3-30B-A3B', 30], // total parameters; A3B (active) is glued to a letter
    ['facebook/opt-125m', 0.125],
    ['llama3.1:8b', 8],
    ['qwen2.5:0.5b', 0.5],
    ['llama3.1:70b-instruct-q4_K_M', 70],
    ['hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M', 1],
    ['BAAI/bge-large-en-v1.5', null],
    ['openai/whisper-large-v3', null],
    ['stabilityai/stable-diffusion-3.5-large', null],
    ['llama3.1', null],
    ['sentence-transformers/all-MiniLM-L6-v2', null],
  ];
  for (const [model, size] of cases) {
    it(`${model} → ${size === null ? 'unknown' : `${size}B`}`, () => assert.equal(parseModelSize(model), size));
  }
});

describe('quantizationHint', () => {
  const cases: Array<[string, number | null]> = [
    ['fp8', 1],
    ['awq', 0.5],
    ['gptq_marlin', 0.5],
    ['Qwen2.5-7B-Instruct-GPTQ-Int8', 1], // the bit width beats the method
    ['Llama-2-13B-chat-AWQ', 0.5],
    ['Meta-Llama-3.1-405B-Instruct-FP8', 1],
    ['Llama-3.1-8B-Instruct-bnb-4bit', 0.5],
    ['llama3.1:8b-instruct-q8_0', 1],
    ['llama3.1:8b-instruct-q5_K_M', 0.625],
    ['llama3.1:70b-instruct-fp16', 2],
    ['Qwen2.5-7B-Instruct', null], // "qwen" is not q-anything
    ['bge-large-en-v1.5', null],
  ];
  for (const [text, bytes] of cases) {
    it(`${text} → ${bytes ?? 'no hint'}`, () => assert.equal(quantizationHint(text)?.bytes ?? null, bytes));
  }
});

function estimate(backend: Backend, model: string, command?: string) {
  return estimateVram({ backend, model, command });
}

describe('estimateVram', () => {
  it('bf16 by default: weights × 1.2 + 2 GiB on one GPU, vLLM claiming 90%', () => {
    const e = estimate('vllm', 'meta-llama/Llama-3.1-8B-Instruct', 'vllm serve meta-llama/Llama-3.1-8B-Instruct');
    assert.deepEqual(
      [e.params_b, e.bytes_per_param, e.weights_gib, e.need_gib_per_gpu, e.gpus, e.claim, e.known],
      [8, 2, 14.9, 19.88, 1, { kind: 'fraction', fraction: 0.9 }, true],
    );
  });

  it('reads --dtype: float32 is 4 bytes, half and auto are 2', () => {
    const m = 'Qwen/Qwen2.5-0.5B-Instruct';
    assert.equal(estimate('vllm', m, `vllm serve ${m} --dtype float32`).bytes_per_param, 4);
    assert.equal(estimate('vllm', m, `vllm serve ${m} --dtype=half`).bytes_per_param, 2);
    assert.equal(estimate('vllm', m, `vllm serve ${m} --dtype auto`).bytes_per_param, 2);
  });

  it('reads --quantization before hints in the model id, and those before --dtype', () => {
    const m = 'meta-llama/Llama-3.1-8B-Instruct';
    assert.equal(estimate('vllm', m, `vllm serve ${m} --quantization fp8 --dtype float32`).bytes_per_param, 1);
    assert.equal(estimate('vllm', m, `vllm serve ${m} -q awq`).bytes_per_param, 0.5);
    const awqModel = 'TheBloke/Llama-2-13B-chat-AWQ';
    const e = estimate('vllm', awqModel, `vllm serve ${awqModel} --dtype float16`);
    assert.deepEqual([e.bytes_per_param, e.need_gib_per_gpu], [0.5, 9.26]);
  });

  it('divides the need over tensor × pipeline parallel GPUs; data parallel adds GPUs, not memory per GPU', () => {
    const m = 'meta-llama/Llama-3.1-70B-Instruct';
    const tp4 = estimate('vllm', m, `vllm serve ${m} --tensor-parallel-size 4`);
    assert.deepEqual([tp4.gpus, tp4.need_gib_per_gpu], [4, 39.62]);
    const short = estimate('vllm', m, `vllm serve ${m} -tp 2 -pp 2 -dp 2`);
    assert.deepEqual([short.gpus, short.need_gib_per_gpu], [8, 39.62]);
    const underscore = estimate('vllm', m, `vllm serve ${m} --tensor_parallel_size=2`);
    assert.equal(underscore.gpus, 2);
  });

  it('reads --gpu-memory-utilization as the vLLM claim, and vllm-omni the same way', () => {
    const m = 'Qwen/Qwen2.5-0.5B-Instruct';
    assert.deepEqual(estimate('vllm', m, `vllm serve ${m} --gpu-memory-utilization 0.35`).claim, { kind: 'fraction', fraction: 0.35 });
    const omni = estimate('vllm-omni', 'Qwen/Qwen2.5-Omni-7B', 'vllm-omni serve Qwen/Qwen2.5-Omni-7B --gpu-memory-utilization 0.8');
    assert.deepEqual([omni.claim, omni.params_b], [{ kind: 'fraction', fraction: 0.8 }, 7]);
  });

  it('ignores a fraction out of range, with a note', () => {
    const m = 'Qwen/Qwen2.5-0.5B-Instruct';
    const e = estimate('vllm', m, `vllm serve ${m} --gpu-memory-utilization 1.5`);
    assert.deepEqual(e.claim, { kind: 'fraction', fraction: 0.9 });
    assert.ok(e.notes.some((n) => n.startsWith('--gpu-memory-utilization 1.5 is not a fraction')), e.notes.join(' | '));
  });

  it('SGLang: --tp-size/--tp and --dp-size/--dp; --mem-fraction-static, default by tp size', () => {
    const m = 'Qwen/Qwen2.5-7B-Instruct';
    const base = `python3 -m sglang.launch_server --model-path ${m}`;
    assert.deepEqual(estimate('sglang', m, base).claim, { kind: 'fraction', fraction: 0.88 });
    const tp = estimate('sglang', m, `${base} --tp 2 --dp 2`);
    assert.deepEqual([tp.gpus, tp.need_gib_per_gpu, tp.claim], [4, 8.82, { kind: 'fraction', fraction: 0.87 }]);
    assert.deepEqual(estimate('sglang', m, `${base} --tp-size 8`).claim, { kind: 'fraction', fraction: defaultSglangMemFraction(8) });
    assert.deepEqual([1, 2, 4, 8, 16].map(defaultSglangMemFraction), [0.88, 0.87, 0.85, 0.81, 0.79]);
    assert.deepEqual(estimate('sglang', m, `${base} --mem-fraction-static 0.6`).claim, { kind: 'fraction', fraction: 0.6 });
    assert.deepEqual(estimate('sglang', m).claim, { kind: 'fraction', fraction: 0.88 }, 'sglang without a command takes the defaults');
  });

  it('Ollama: 4-bit unless the tag says otherwise, and it claims the estimate itself', () => {
    const q4 = estimate('ollama', 'llama3.1:8b');
    assert.deepEqual([q4.bytes_per_param, q4.need_gib_per_gpu, q4.claim], [0.5, 6.47, { kind: 'estimate' }]);
    assert.equal(estimate('ollama', 'llama3.1:8b-instruct-fp16').bytes_per_param, 2);
    assert.equal(estimate('ollama', 'llama3.1:8b-instruct-q8_0').bytes_per_param, 1);
    assert.equal(estimate('ollama', 'qwen2.5:0.5b').params_b, 0.5);
  });

  it('an unknown size: need unknown, the claim decides, and a note says so', () => {
    const bge = estimate('vllm', 'BAAI/bge-large-en-v1.5', 'vllm serve BAAI/bge-large-en-v1.5');
    assert.deepEqual([bge.params_b, bge.weights_gib, bge.need_gib_per_gpu, bge.known], [null, null, null, false]);
    assert.ok(bge.notes.some((n) => n.includes('carries no size') && n.includes("vllm's claim of 90% of each GPU alone decides")), bge.notes.join(' | '));
    // Ollama without a size reserves what vLLM would, so it never overcommits a GPU.
    assert.deepEqual(estimate('ollama', 'llama3.1').claim, { kind: 'fraction', fraction: 0.9 });
  });
});
