import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sumMetric } from '../../shared/prometheus-text.ts';

const VLLM = `# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="Qwen/Qwen2.5-0.5B-Instruct"} 3.0
vllm:num_requests_waiting{engine="1",model_name="Qwen/Qwen2.5-0.5B-Instruct"} 4.0
vllm:num_requests_waiting_total{model_name="x"} 99
vllm:num_requests_running{model_name="Qwen/Qwen2.5-0.5B-Instruct"} 16.0
`;

test('sums every label set of the named metric, and only that metric', () => {
  assert.equal(sumMetric(VLLM, 'vllm:num_requests_waiting'), 7);
  assert.equal(sumMetric(VLLM, 'vllm:num_requests_running'), 16);
});

test('a metric without labels, with a timestamp, and label values holding "}" and spaces', () => {
  assert.equal(sumMetric('sglang:num_queue_reqs 5 1700000000000\n', 'sglang:num_queue_reqs'), 5);
  assert.equal(sumMetric('m{a="x } y",b="q\\"}"} 2\nm{a="z"} 1.5\n', 'm'), 3.5);
});

test('absent, NaN, garbage and truncated lines give null or are skipped, never a throw', () => {
  assert.equal(sumMetric(VLLM, 'vllm:nope'), null);
  assert.equal(sumMetric('', 'm'), null);
  assert.equal(sumMetric('m NaN\nm +Inf\nm{a="1" 3\nm abc\n', 'm'), null);
  assert.equal(sumMetric('m{a="1"} 2\nm{broken 9\nm 1e1', 'm'), 12);
  assert.equal(sumMetric('\u0000\u0001 m 1\n{}{}{} \n', 'm'), null);
});
