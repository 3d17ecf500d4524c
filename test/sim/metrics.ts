// Prometheus text exposition of the engine's state under the real backends' names (vllm:* or sglang:*), model_name label.
import type { Engine, Histogram } from './engine.ts';

export interface MetricsSource {
  flavour: 'vllm' | 'vllm-omni' | 'sglang';
  modelName: string;
  engine: Engine;
}

export function renderMetrics(src: MetricsSource): string {
  return src.flavour === 'sglang' ? renderSglang(src) : renderVllm(src);
}

function renderVllm({ modelName, engine }: MetricsSource): string {
  const l = { model_name: modelName };
  const c = engine.counters;
  const out: string[] = [];
  gauge(out, 'vllm:num_requests_running', 'Number of requests in model execution batches.', l, engine.numRunning);
  gauge(out, 'vllm:num_requests_waiting', 'Number of requests waiting to be processed.', l, engine.numWaiting);
  gauge(out, 'vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', l, engine.kvUsage);
  gauge(out, 'vllm:gpu_cache_usage_perc', 'GPU KV-cache usage. 1 means 100 percent usage (older name).', l, engine.kvUsage);
  counter(out, 'vllm:prompt_tokens_total', 'Number of prefill tokens processed.', l, c.promptTokens);
  counter(out, 'vllm:generation_tokens_total', 'Number of generation tokens processed.', l, c.generationTokens);
  counter(out, 'vllm:prefix_cache_queries_total', 'Prefix cache queries, in terms of number of queried tokens.', l, c.prefixQueries);
  counter(out, 'vllm:prefix_cache_hits_total', 'Prefix cache hits, in terms of number of cached tokens.', l, c.prefixHits);
  header(out, 'vllm:request_success_total', 'Count of successfully processed requests.', 'counter');
  for (const reason of ['stop', 'length', 'abort'] as const) {
    sample(out, 'vllm:request_success_total', { finished_reason: reason, model_name: modelName }, c.finished[reason]);
  }
  histogram(out, 'vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', l, engine.ttft);
  histogram(out, 'vllm:e2e_request_latency_seconds', 'Histogram of e2e request latency in seconds.', l, engine.e2e);
  return out.join('\n') + '\n';
}

// gen_throughput is computed between scrapes, like SGLang's periodic log of the decode rate.
const lastScrape = new WeakMap<Engine, { at: number; tokens: number; rate: number }>();

function renderSglang({ modelName, engine }: MetricsSource): string {
  const l = { model_name: modelName };
  const c = engine.counters;
  const now = performance.now();
  const prev = lastScrape.get(engine);
  let rate = prev?.rate ?? 0;
  if (prev && now - prev.at > 0) rate = ((c.generationTokens - prev.tokens) * 1000) / (now - prev.at);
  lastScrape.set(engine, { at: now, tokens: c.generationTokens, rate });
  const out: string[] = [];
  counter(out, 'sglang:prompt_tokens_total', 'Number of prefill tokens processed.', l, c.promptTokens);
  counter(out, 'sglang:generation_tokens_total', 'Number of generation tokens processed.', l, c.generationTokens);
  counter(out, 'sglang:num_requests_total', 'Number of requests processed.', l, c.finished.stop + c.finished.length + c.finished.abort);
  counter(out, 'sglang:num_aborted_requests_total', 'Number of requests aborted.', l, c.finished.abort);
  gauge(out, 'sglang:num_running_reqs', 'The number of running requests.', l, engine.numRunning);
  gauge(out, 'sglang:num_queue_reqs', 'The number of requests in the waiting queue.', l, engine.numWaiting);
  gauge(out, 'sglang:token_usage', 'The token usage.', l, engine.kvUsage);
  gauge(out, 'sglang:cache_hit_rate', 'The prefix cache hit rate.', l, engine.prefixHitRate);
  gauge(out, 'sglang:gen_throughput', 'The generation throughput (token/s).', l, rate);
  histogram(out, 'sglang:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', l, engine.ttft);
  histogram(out, 'sglang:e2e_request_latency_seconds', 'Histogram of End-to-end request latency in seconds.', l, engine.e2e);
  return out.join('\n') + '\n';
}

type Labels = Record<string, string>;

function header(out: string[], name: string, help: string, type: string): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
}

function sample(out: string[], name: string, labels: Labels, value: number): void {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  out.push(`${name}{${parts.join(',')}} ${formatValue(value)}`);
}

function gauge(out: string[], name: string, help: string, labels: Labels, value: number): void {
  header(out, name, help, 'gauge');
  sample(out, name, labels, value);
}

function counter(out: string[], name: string, help: string, labels: Labels, value: number): void {
  header(out, name, help, 'counter');
  sample(out, name, labels, value);
}

function histogram(out: string[], name: string, help: string, labels: Labels, h: Histogram): void {
  header(out, name, help, 'histogram');
  h.buckets.forEach((le, i) => sample(out, `${name}_bucket`, { le: formatValue(le), ...labels }, h.counts[i]!));
  sample(out, `${name}_bucket`, { le: '+Inf', ...labels }, h.count);
  sample(out, `${name}_count`, labels, h.count);
  sample(out, `${name}_sum`, labels, h.sum);
}

/** Python's prometheus_client writes floats: 3 → "3.0". */
function formatValue(v: number): string {
  return Number.isInteger(v) ? `${v}.0` : String(v);
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}
