// The WorkloadSpec schema: every documented example is accepted and normalized; every broken spec is refused with paths.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import {
  asyncOnlyTaskTypes,
  backendTaskTypes,
  backends,
  diffWorkloadSpecs,
  parseWorkloadSpec,
  taskTypes,
  workloadSpecSchema,
  type WorkloadSpec,
} from '../../../shared/spec/workload-spec.ts';
import { billing, exampleSpecs, posterMaker, supportBot, voiceOver as voiceOverFor, type Spec } from '../../fixtures/specs/examples.ts';

const workerId = 'wrk_7Yc2AbCdEfGh1234';
const a100 = 'NVIDIA A100-SXM4-80GB';
const cloud = (max: number, extra: Spec = {}) => ({
  min_workers: 0,
  max_workers: max,
  max_hourly_cost_usd: 5.0,
  workers: { source: 'cloud', cloud_pool: { gpu_pool: [a100], max_hourly_cost_usd: 5.0, max_instances: max, ...extra } },
});
const voiceOver = voiceOverFor(workerId);
const { execution_policy_config: _omitted, ...supportBotWithoutConfig } = supportBot;

/** EXAMPLES.md: every spec, and every variation built on its base as the file describes (shared with the hub tests). */
const examples: Array<[string, Spec]> = exampleSpecs(workerId).map(({ title, spec }) => [title, spec]);

function accept(input: unknown): WorkloadSpec {
  const result = parseWorkloadSpec(input);
  assert.ok(result.ok, `expected the spec to be accepted, got ${JSON.stringify(result.ok ? null : result.details, null, 2)}`);
  return result.spec;
}

describe('the documented examples (EXAMPLES.md)', () => {
  for (const [title, spec] of examples) {
    it(`accepts ${title}, and its normalized form parses back to itself`, () => {
      const normalized = accept(spec);
      assert.deepEqual(accept(JSON.parse(JSON.stringify(normalized))), normalized);
    });
  }

  it('shows the fixed defaults: task_type, policy, replicas, the name from the slug', () => {
    const spec = accept({ slug: 'chat', model: 'llama3.1:8b', backend: 'ollama' });
    assert.deepEqual(spec, {
      name: 'chat',
      slug: 'chat',
      model: 'llama3.1:8b',
      backend: 'ollama',
      task_type: 'text2text',
      execution_policy: 'fixed',
      execution_policy_config: { replicas: 1 },
    });
  });

  it('fills an omitted autoscaling config: 0‥1 workers on the shared pool, the metric and delay defaults', () => {
    const spec = accept({ ...supportBotWithoutConfig, execution_policy: 'autoscaling' });
    assert.deepEqual(spec.execution_policy_config, {
      min_workers: 0,
      max_workers: 1,
      metric: 'concurrency',
      target: 16,
      upscale_delay_s: 0,
      downscale_delay_s: 300,
      scale_to_zero_delay_s: 600,
      cold_start_timeout_s: 300,
      max_queue: 100,
    });
  });

  it('fills the cron form of a schedule (duration, zone, replicas) and keeps the window form bare', () => {
    assert.deepEqual(accept(billing).execution_policy_config, { cron: '0 2 * * *', duration_s: 3600, timezone: 'UTC', replicas: 1 });
    const windowed = accept(examples[2]![1]);
    assert.deepEqual(windowed.execution_policy_config, { window: 'Mon-Fri 08:00-20:00 Europe/Madrid', replicas: 1 });
  });

  it('keeps a cloud pool as given and fills the per-metric targets', () => {
    const spec = accept(examples[1]![1]);
    assert.equal(spec.execution_policy, 'autoscaling');
    if (spec.execution_policy !== 'autoscaling') return;
    assert.deepEqual(spec.execution_policy_config.workers, {
      source: 'cloud',
      cloud_pool: { gpu_pool: [a100], max_hourly_cost_usd: 5, max_instances: 5, allowed_cuda_versions: ['13.0'] },
    });
    const rps = accept({ ...supportBot, execution_policy: 'autoscaling', execution_policy_config: { min_workers: 0, max_workers: 2, metric: 'rps' } });
    assert.equal(rps.execution_policy === 'autoscaling' && rps.execution_policy_config.target, 4);
    const backend = accept({ ...supportBot, execution_policy: 'autoscaling', execution_policy_config: { min_workers: 0, max_workers: 2, metric: 'backend' } });
    assert.ok(backend.execution_policy === 'autoscaling');
    assert.equal(backend.execution_policy_config.target, 2);
    assert.equal(backend.execution_policy_config.backend_metric, 'vllm:num_requests_waiting');
  });

  it('normalizes the legacy flat gpu_pool into workers.cloud_pool', () => {
    const spec = accept({ ...supportBot, execution_policy: 'autoscaling', execution_policy_config: { min_workers: 0, max_workers: 2, max_hourly_cost_usd: 3, gpu_pool: [a100] } });
    assert.ok(spec.execution_policy === 'autoscaling');
    assert.deepEqual(spec.execution_policy_config.workers, { source: 'cloud', cloud_pool: { gpu_pool: [a100] } });
    assert.equal('gpu_pool' in spec.execution_policy_config, false);
  });

  it('accepts an explicit autoscaling config without workers (the shared pool), sglang without a command, and allowed_cidrs', () => {
    accept({ ...supportBot, execution_policy: 'autoscaling', execution_policy_config: { min_workers: 0, max_workers: 3 } });
    accept({ slug: 'sg', model: 'Qwen/Qwen2.5-7B-Instruct', backend: 'sglang' });
    accept({ slug: 'sg', model: 'Qwen/Qwen2.5-7B-Instruct', backend: 'sglang', command: "python -m sglang.launch_server --model-path Qwen/Qwen2.5-7B-Instruct --tp 2" });
    accept({ ...supportBot, backend: 'vllm-omni', command: 'vllm serve meta-llama/Llama-3.1-8B-Instruct --omni' });
    accept({ ...supportBot, command: `vllm serve meta-llama/Llama-3.1-8B-Instruct --override-generation-config '{"temperature": 0.5}'` });
    accept({ ...supportBot, allowed_cidrs: ['10.0.0.0/8', '192.168.1.7/32', 'fd00::/8', '::ffff:10.0.0.0/104'], env: { HF_TOKEN: 'hf_x', VLLM_USE_V1: '1' } });
  });

  it('lists the constants the docs and the SDK show', () => {
    assert.deepEqual([...backends], ['vllm', 'vllm-omni', 'sglang', 'ollama']);
    assert.equal(taskTypes.length, 12);
    assert.deepEqual([...asyncOnlyTaskTypes], ['text2video', 'reranker', 'classification', 'reward', 'score']);
    assert.deepEqual([...backendTaskTypes.ollama], ['text2text', 'embedding']);
    for (const task of taskTypes) assert.ok(backends.some((b) => (backendTaskTypes[b] as readonly string[]).includes(task)), `${task} has a backend`);
  });

  it('turns into a JSON schema for OpenAPI, for both the request and the normalized spec', () => {
    const input = JSON.stringify(z.toJSONSchema(workloadSpecSchema, { io: 'input', unrepresentable: 'any' }));
    const output = JSON.stringify(z.toJSONSchema(workloadSpecSchema, { io: 'output', unrepresentable: 'any' }));
    assert.match(input, /"additionalProperties":false/);
    assert.match(input, /min_workers/);
    assert.match(output, /scale_to_zero_delay_s/);
    assert.doesNotMatch(output, /"gpu_pool":\{"description":"legacy/);
  });
});

const cfg = 'execution_policy_config';
const pool = `${cfg}.workers.cloud_pool`;
const policy = (execution_policy: string, config: unknown): Spec => ({ ...supportBot, execution_policy, execution_policy_config: config });
const withCommand = (command: string, extra: Spec = {}): Spec => ({ ...supportBot, command, ...extra });
const without = (spec: Spec, key: string): Spec => Object.fromEntries(Object.entries(spec).filter(([k]) => k !== key));
const cloudWith = (poolChange: Spec, configChange: Spec = {}): Spec =>
  policy('autoscaling', { ...cloud(2), ...configChange, workers: { source: 'cloud', cloud_pool: { gpu_pool: [a100], ...poolChange } } });
const privateWith = (ids: unknown): Spec => policy('autoscaling', { min_workers: 0, max_workers: 2, workers: { source: 'private', private_worker_ids: ids } });
const sglang: Spec = { slug: 'sg', model: 'Qwen/Qwen2.5-7B-Instruct', backend: 'sglang' };
const ollama: Spec = { slug: 'ol', model: 'llama3.1:8b', backend: 'ollama' };

/** [what is wrong, the spec, the path a detail must have, what its message must say]. */
const invalid: Array<[string, unknown, string, RegExp]> = [
  ['a unicode slug', { ...supportBot, slug: 'soporte-niño' }, 'slug', /outside a-z/],
  ['an overlong slug', { ...supportBot, slug: 'a'.repeat(64) }, 'slug', /64 characters long, at most 63/],
  ['an uppercase slug', { ...supportBot, slug: 'Support-Bot' }, 'slug', /lowercase: use "support-bot"/],
  ['a slug with a trailing dash', { ...supportBot, slug: 'support-bot-' }, 'slug', /start or end with "-"/],
  ['an empty slug', { ...supportBot, slug: '' }, 'slug', /must not be empty/],
  ['no model', without(supportBot, 'model'), 'model', /is required/],
  ['a model with spaces', { ...supportBot, model: 'my model' }, 'model', /spaces/],
  ['an unknown backend', { ...supportBot, backend: 'tgi' }, 'backend', /one of "vllm", "vllm-omni", "sglang", "ollama"/],
  ['an unknown task type', { ...supportBot, task_type: 'chat' }, 'task_type', /one of "text2text"/],
  ['an unknown policy', { ...supportBot, execution_policy: 'manual' }, 'execution_policy', /one of "fixed", "scheduled", "autoscaling"/],
  ['a spec that is an array', [supportBot], '', /JSON object/],
  ['a number given as a string', policy('fixed', { replicas: '2' }), `${cfg}.replicas`, /number, not the string "2": write 2 without quotes/],
  ['a fractional replica count', policy('fixed', { replicas: 1.5 }), `${cfg}.replicas`, /whole number/],
  ['a negative replica count', policy('fixed', { replicas: -1 }), `${cfg}.replicas`, /at least 0/],
  ['inactive_timeout_s 0', policy('fixed', { inactive_timeout_s: 0 }), `${cfg}.inactive_timeout_s`, /at least 1/],
  ['null where the config belongs', policy('fixed', null), cfg, /object, not null/],
  ['null where env belongs', { ...supportBot, env: null }, 'env', /object, not null/],
  ['an unknown top-level key', { ...supportBot, region: 'eu' }, 'region', /unknown key "region"; the keys here are name, slug/],
  ['a config key at the top level', { ...supportBot, replicas: 2 }, 'replicas', /goes in execution_policy_config/],
  ['an unknown key in a fixed config', policy('fixed', { replicas: 1, autoscale: true }), `${cfg}.autoscale`, /unknown key "autoscale"/],
  ['an unknown key in a scheduled config', policy('scheduled', { cron: '0 2 * * *', every: 'day' }), `${cfg}.every`, /unknown key "every"/],
  ['an unknown key in an autoscaling config', policy('autoscaling', { min_workers: 0, max_workers: 1, burst: 2 }), `${cfg}.burst`, /unknown key "burst"/],
  ['an unknown key in cloud_pool', cloudWith({ region: 'eu' }), `${pool}.region`, /unknown key "region"/],
  ['another policy\'s key', policy('fixed', { cron: '0 2 * * *' }), `${cfg}.cron`, /belongs to the scheduled policy, and execution_policy is fixed/],
  ['min_replicas', policy('autoscaling', { min_replicas: 0, max_workers: 2 }), `${cfg}.min_replicas`, /use min_workers/],
  ['max_replicas', policy('autoscaling', { min_workers: 0, max_replicas: 2 }), `${cfg}.max_replicas`, /use max_workers/],
  ['provider', { ...supportBot, provider: 'aws' }, 'provider', /there is no provider: placement is the platform's job/],
  ['min_vram_gb', { ...supportBot, min_vram_gb: 40 }, 'min_vram_gb', /there is no min_vram_gb: ikhub estimates VRAM from the model/],
  ['a camelCase key', { ...without(supportBot, 'task_type'), taskType: 'text2text' }, 'taskType', /use task_type \(the wire format is snake_case\)/],
  ['a camelCase config key', policy('autoscaling', { min_workers: 0, maxWorkers: 2 }), `${cfg}.maxWorkers`, /use max_workers/],
  ['no command for vllm', without(supportBot, 'command'), 'command', /required for backend vllm/],
  ['no command for vllm-omni', without(posterMaker, 'command'), 'command', /required for backend vllm-omni/],
  ['a command for ollama', { ...ollama, command: 'ollama serve' }, 'command', /ollama takes no command/],
  ['vllm_version for sglang', { ...sglang, vllm_version: '0.6.3' }, 'vllm_version', /vllm and vllm-omni only/],
  ['vllm_version for ollama', { ...ollama, vllm_version: '0.6.3' }, 'vllm_version', /vllm and vllm-omni only/],
  ['a vllm_version with a v', { ...supportBot, vllm_version: 'v0.6.3' }, 'vllm_version', /write "0.6.3", without the "v"/],
  ['the wrong program for vllm', withCommand('python -m vllm.entrypoints.openai.api_server --model x'), 'command', /starts with "vllm serve <model>"/],
  ['a command serving another model', withCommand('vllm serve other/model'), 'command', /serves "other\/model" but model is/],
  ['a flag where the model belongs', withCommand('vllm serve --max-model-len 8192'), 'command', /must be followed by the model/],
  ['a pipe', withCommand('vllm serve meta-llama/Llama-3.1-8B-Instruct | tee log'), 'command', /not run by a shell, so "\|" \(pipe\)/],
  ['a semicolon', withCommand('vllm serve meta-llama/Llama-3.1-8B-Instruct; echo'), 'command', /not run by a shell, so ";"/],
  ['&&', withCommand('pip install x && vllm serve meta-llama/Llama-3.1-8B-Instruct'), 'command', /not run by a shell, so "&&"/],
  ['||', withCommand('vllm serve meta-llama/Llama-3.1-8B-Instruct || true'), 'command', /"\|\|"/],
  ['a redirection', withCommand('vllm serve meta-llama/Llama-3.1-8B-Instruct > out.log'), 'command', /">" \(redirection\)/],
  ['an input redirection', withCommand('vllm serve meta-llama/Llama-3.1-8B-Instruct < in'), 'command', /"<" \(redirection\)/],
  ['$( )', withCommand('vllm serve meta-llama/Llama-3.1-8B-Instruct --seed $(date +%s)'), 'command', /"\$\(" \(command substitution\)/],
  ['backticks', withCommand('vllm serve meta-llama/Llama-3.1-8B-Instruct --seed `date`'), 'command', /backticks \(command substitution\)/],
  ['a variable', withCommand('vllm serve meta-llama/Llama-3.1-8B-Instruct --api-key "$KEY"'), 'command', /"\$KEY" are not expanded/],
  ['an unterminated quote', withCommand("vllm serve meta-llama/Llama-3.1-8B-Instruct --x 'y"), 'command', /unterminated single quote/],
  ['--port', withCommand('vllm serve meta-llama/Llama-3.1-8B-Instruct --port 8000'), 'command', /--port is set by ikhub/],
  ['--host=', withCommand('vllm serve meta-llama/Llama-3.1-8B-Instruct --host=0.0.0.0'), 'command', /--host is set by ikhub/],
  ['--served-model-name', withCommand('vllm serve meta-llama/Llama-3.1-8B-Instruct --served-model-name chat'), 'command', /--served-model-name is set by ikhub/],
  ['--omni on the vllm backend', withCommand('vllm serve meta-llama/Llama-3.1-8B-Instruct --omni'), 'command', /set backend to "vllm-omni"/],
  ['vllm serve without --omni for vllm-omni', { ...posterMaker, command: 'vllm serve stabilityai/stable-diffusion-3.5-large' }, 'command', /add --omni/],
  ['the wrong program for sglang', { ...sglang, command: 'sglang serve Qwen/Qwen2.5-7B-Instruct' }, 'command', /starts with "python3 -m sglang.launch_server"/],
  ['sglang without --model-path', { ...sglang, command: 'python3 -m sglang.launch_server --tp 2' }, 'command', /needs --model-path/],
  ['text2image on vllm', { ...supportBot, task_type: 'text2image' }, 'task_type', /backend vllm does not serve text2image .*needs vllm-omni/],
  ['reranker on ollama', { ...ollama, task_type: 'reranker' }, 'task_type', /backend ollama does not serve reranker \(it serves text2text, embedding\)/],
  ['text2video on sglang', { ...sglang, task_type: 'text2video' }, 'task_type', /needs vllm-omni/],
  ['both cron and window', policy('scheduled', { cron: '0 2 * * *', window: 'daily 00:00-06:00 UTC' }), cfg, /either cron .* or window, not both/],
  ['neither cron nor window', policy('scheduled', { replicas: 2 }), cfg, /either cron .* or window/],
  ['a scheduled policy without config', { ...without(supportBot, cfg), execution_policy: 'scheduled' }, cfg, /is required/],
  ['a cron with 4 fields', policy('scheduled', { cron: '0 2 * *' }), `${cfg}.cron`, /has 4 fields/],
  ['a cron hour of 24', policy('scheduled', { cron: '0 24 * * *' }), `${cfg}.cron`, /not a valid cron expression.*hour/i],
  ['a cron with seconds', policy('scheduled', { cron: '0 0 2 * * *' }), `${cfg}.cron`, /seconds is not accepted/],
  ['a bad cron timezone', policy('scheduled', { cron: '0 2 * * *', timezone: 'Europe/Nowhere' }), `${cfg}.timezone`, /not an IANA time zone/],
  ['a bad zone in a window', policy('scheduled', { window: 'Mon-Fri 08:00-20:00 Mars/Base' }), `${cfg}.window`, /not an IANA time zone/],
  ['a window that starts when it ends', policy('scheduled', { window: 'Mon 09:00-09:00 UTC' }), `${cfg}.window`, /starts and ends at 09:00/],
  ['a bad day name', policy('scheduled', { window: 'Mon-Fry 08:00-20:00 UTC' }), `${cfg}.window`, /unknown day "Fry"/],
  ['25:00 in a window', policy('scheduled', { window: 'daily 20:00-25:00 UTC' }), `${cfg}.window`, /"25:00"/],
  ['duration_s with a window', policy('scheduled', { window: 'daily 00:00-06:00 UTC', duration_s: 60 }), `${cfg}.duration_s`, /goes with cron only/],
  ['timezone with a window', policy('scheduled', { window: 'daily 00:00-06:00 UTC', timezone: 'UTC' }), `${cfg}.timezone`, /goes with cron only/],
  ['duration_s 0', policy('scheduled', { cron: '0 2 * * *', duration_s: 0 }), `${cfg}.duration_s`, /at least 1/],
  ['0 scheduled replicas', policy('scheduled', { cron: '0 2 * * *', replicas: 0 }), `${cfg}.replicas`, /at least 1/],
  ['cloud without max_hourly_cost_usd', policy('autoscaling', without(cloud(2), 'max_hourly_cost_usd')), `${cfg}.max_hourly_cost_usd`, /required when workers come from the cloud pool/],
  ['cloud with an empty gpu_pool', cloudWith({ gpu_pool: [] }), `${pool}.gpu_pool`, /at least one entry/],
  ['a blank GPU name', cloudWith({ gpu_pool: ['  '] }), `${pool}.gpu_pool[0]`, /must not be empty/],
  ['a negative cost cap', cloudWith({}, { max_hourly_cost_usd: -1 }), `${cfg}.max_hourly_cost_usd`, /greater than 0/],
  ['max_instances 0', cloudWith({ max_instances: 0 }), `${pool}.max_instances`, /at least 1/],
  ['max_workers below min_workers', policy('autoscaling', { min_workers: 3, max_workers: 2 }), `${cfg}.max_workers`, /at least min_workers \(3\), got 2/],
  ['max_workers 0', policy('autoscaling', { min_workers: 0, max_workers: 0 }), `${cfg}.max_workers`, /at least 1/],
  ['no max_workers', policy('autoscaling', { min_workers: 0 }), `${cfg}.max_workers`, /is required/],
  ['the legacy gpu_pool with allowed_cuda_versions', policy('autoscaling', { min_workers: 0, max_workers: 2, max_hourly_cost_usd: 2, gpu_pool: [a100], allowed_cuda_versions: ['12.4'] }), `${cfg}.allowed_cuda_versions`, /legacy flat gpu_pool cannot carry it/],
  ['the legacy gpu_pool without a cost cap', policy('autoscaling', { min_workers: 0, max_workers: 2, gpu_pool: [a100] }), `${cfg}.max_hourly_cost_usd`, /required when workers come from the cloud pool/],
  ['the legacy gpu_pool and workers', policy('autoscaling', { ...cloud(2), gpu_pool: [a100] }), `${cfg}.gpu_pool`, /not both/],
  ['a bad allowed_cuda_versions entry', cloudWith({ allowed_cuda_versions: ['12'] }), `${pool}.allowed_cuda_versions[0]`, /not a CUDA version such as "12.4"/],
  ['a CUDA version as a number', cloudWith({ allowed_cuda_versions: [12.4] }), `${pool}.allowed_cuda_versions[0]`, /must be a string, not 12.4/],
  ['an unknown workers source', policy('autoscaling', { ...cloud(2), workers: { source: 'aws' } }), `${cfg}.workers.source`, /"cloud" .* or "private"/],
  ['private with no worker ids', privateWith([]), `${cfg}.workers.private_worker_ids`, /at least one entry/],
  ['private with a bad worker id', privateWith(['worker-1']), `${cfg}.workers.private_worker_ids[0]`, /not a worker id/],
  ['a worker listed twice', privateWith([workerId, workerId]), `${cfg}.workers.private_worker_ids[1]`, /listed twice/],
  ['a bad worker_id', { ...supportBot, worker_id: 'wrk_7Yc2...' }, 'worker_id', /not a worker id: "wrk_" and 8 to 64/],
  ['a pinned worker outside the private list', { ...privateWith(['wrk_0000000000000000']), worker_id: workerId }, 'worker_id', /must be one of them/],
  ['an unknown metric', policy('autoscaling', { min_workers: 0, max_workers: 2, metric: 'latency' }), `${cfg}.metric`, /one of "concurrency", "rps", "backend"/],
  ['backend_metric without metric backend', policy('autoscaling', { min_workers: 0, max_workers: 2, backend_metric: 'vllm:x' }), `${cfg}.backend_metric`, /only with metric "backend"/],
  ['a target of 0', policy('autoscaling', { min_workers: 0, max_workers: 2, target: 0 }), `${cfg}.target`, /greater than 0/],
  ['max_queue as a string', policy('autoscaling', { min_workers: 0, max_workers: 2, max_queue: '100' }), `${cfg}.max_queue`, /not the string "100"/],
  ['a CIDR with a bad prefix', { ...supportBot, allowed_cidrs: ['10.0.0.0/8', '10.0.0.0/33'] }, 'allowed_cidrs[1]', /bad prefix length: 0 to 32/],
  ['an address without a prefix', { ...supportBot, allowed_cidrs: ['10.1.2.3'] }, 'allowed_cidrs[0]', /needs a prefix length, e.g. "10.1.2.3\/32"/],
  ['a host name as a CIDR', { ...supportBot, allowed_cidrs: ['example.com/24'] }, 'allowed_cidrs[0]', /not a CIDR/],
  ['an empty allowed_cidrs', { ...supportBot, allowed_cidrs: [] }, 'allowed_cidrs', /at least one entry/],
  ['CUDA_VISIBLE_DEVICES in env', { ...supportBot, env: { CUDA_VISIBLE_DEVICES: '0' } }, 'env.CUDA_VISIBLE_DEVICES', /set by the agent/],
  ['NVIDIA_VISIBLE_DEVICES in env', { ...supportBot, env: { NVIDIA_VISIBLE_DEVICES: 'all' } }, 'env.NVIDIA_VISIBLE_DEVICES', /set by the agent/],
  ['a bad env name', { ...supportBot, env: { '1FOO': 'x' } }, 'env.1FOO', /not an environment variable name/],
  ['an env value that is a number', { ...supportBot, env: { VLLM_USE_V1: 1 } }, 'env.VLLM_USE_V1', /must be a string, not 1/],
  ['an oversized env value', { ...supportBot, env: { BIG: 'x'.repeat(40_000) } }, 'env.BIG', /at most 32768 characters/],
  ['an empty name', { ...supportBot, name: ' ' }, 'name', /must not be empty/],
];

describe('invalid specs: each problem named by its path and rule', () => {
  it(`has a corpus of at least 40 cases (${invalid.length})`, () => assert.ok(invalid.length >= 40));

  for (const [title, input, path, message] of invalid) {
    it(`refuses ${title}`, () => {
      const result = parseWorkloadSpec(input);
      assert.ok(!result.ok, 'expected the spec to be refused');
      const atPath = result.details.filter((d) => d.path === path);
      assert.ok(atPath.length > 0, `no detail at "${path}"; got ${JSON.stringify(result.details, null, 2)}`);
      assert.ok(
        atPath.some((d) => message.test(d.message)),
        `no message at "${path}" matches ${message}; got ${JSON.stringify(atPath.map((d) => d.message))}`,
      );
      const keys = result.details.map((d) => `${d.path}: ${d.message}`);
      assert.equal(new Set(keys).size, keys.length, `duplicate details: ${JSON.stringify(keys)}`);
    });
  }

  it('reports every problem of a spec at once: structure and cross-field rules together', () => {
    const result = parseWorkloadSpec({
      ...without(supportBot, 'command'),
      slug: 'Bad Slug',
      provider: 'aws',
      env: { CUDA_VISIBLE_DEVICES: '0' },
      allowed_cidrs: ['10.0.0.0/8', 'nope'],
      execution_policy: 'scheduled',
      execution_policy_config: { cron: '0 2 * *', replicas: '2' },
    });
    assert.ok(!result.ok);
    const paths = result.details.map((d) => d.path).sort();
    assert.deepEqual(paths, ['allowed_cidrs[1]', 'command', 'env.CUDA_VISIBLE_DEVICES', `${cfg}.cron`, `${cfg}.replicas`, 'provider', 'slug']);
  });

  it('still reports the other fields when execution_policy itself is wrong', () => {
    const result = parseWorkloadSpec({ ...without(supportBot, 'command'), slug: 'UP', execution_policy: 'always', min_vram_gb: 8 });
    assert.ok(!result.ok);
    assert.deepEqual(result.details.map((d) => d.path).sort(), ['command', 'execution_policy', 'min_vram_gb', 'slug']);
  });
});

describe('diffWorkloadSpecs', () => {
  const stored = accept({ ...supportBot, env: { HF_TOKEN: 'hf_old_secret', KEEP: 'same' }, allowed_cidrs: ['10.0.0.0/8', '192.168.0.0/16'] });

  it('finds nothing between a spec and itself', () => {
    assert.deepEqual(diffWorkloadSpecs(stored, accept({ ...supportBot, env: { KEEP: 'same', HF_TOKEN: 'hf_old_secret' }, allowed_cidrs: ['10.0.0.0/8', '192.168.0.0/16'] })), []);
  });

  it('names nested leaves, array items and env keys, with env values masked', () => {
    const given = accept({
      ...supportBot,
      command: `${String(supportBot.command)} --enforce-eager`,
      env: { HF_TOKEN: 'hf_new_secret', KEEP: 'same', ADDED: 'added_secret' },
      allowed_cidrs: ['10.0.0.0/8'],
      execution_policy_config: { replicas: 3 },
    });
    const diff = diffWorkloadSpecs(stored, given);
    assert.deepEqual(diff, [
      { path: 'command', stored: supportBot.command, given: `${String(supportBot.command)} --enforce-eager` },
      { path: 'env.HF_TOKEN', stored: '********', given: '********' },
      { path: 'allowed_cidrs[1]', stored: '192.168.0.0/16', given: undefined },
      { path: `${cfg}.replicas`, stored: 1, given: 3 },
      { path: 'env.ADDED', stored: undefined, given: '********' },
    ]);
    assert.doesNotMatch(JSON.stringify(diff), /secret/);
  });

  it('reaches into autoscaling pools and policy changes', () => {
    const a = accept(examples[1]![1]);
    const b = accept({ ...examples[1]![1], execution_policy_config: cloud(5, { allowed_cuda_versions: ['12.4'] }) });
    assert.deepEqual(diffWorkloadSpecs(a, b), [{ path: `${pool}.allowed_cuda_versions[0]`, stored: '13.0', given: '12.4' }]);
    const paths = diffWorkloadSpecs(accept(supportBot), accept({ ...examples[2]![1], slug: supportBot.slug })).map((d) => d.path);
    assert.deepEqual(paths, ['execution_policy', `${cfg}.window`]);
  });
});
