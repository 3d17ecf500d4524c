// The SDK's public types and enums as users write them (checked by `tsc -p .`), and the camelCase ↔ snake_case renaming.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Backend,
  DataClient,
  ExecutionPolicy,
  ManagementClient,
  OnDrift,
  TaskType,
  type Camelize,
  type WorkloadSpecInput,
  type WorkloadView,
} from 'ikhub';
import { toCamelKeys, toSnakeKeys } from '../../sdk/case.ts';
import { backends, executionPolicies, taskTypes } from '../../shared/spec/workload-spec.ts';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): T | void {}

// EXAMPLES.md, "The SDK calls users copy", verbatim: only type-checked here (test/sdk/management.test.ts and
// data.test.ts run it against a hub and a stand-in data plane).
async function examplesSnippet() {
  const mgmt = ManagementClient.fromEnv({ project: "acme" });          // reads IK_HUB_URL and IK_TOKEN
  const ref = await mgmt.ensure({ name: "Support bot", slug: "support-bot",
    model: "meta-llama/Llama-3.1-8B-Instruct", backend: Backend.Vllm, taskType: "text2text",
    command: "vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192",
    executionPolicy: ExecutionPolicy.Fixed, executionPolicyConfig: { replicas: 1 } });
  console.log(ref.projectSlug, ref.workloadSlug);                       // acme support-bot

  const data = DataClient.fromEnv({ project: "acme" });
  const ep = data.endpoint("support-bot", { apiKey: process.env.SUPPORT_IK_LIVE });
  const out = await ep.generateText({ prompt: "Hola, ¿cuál es mi saldo?", temperature: 0.2, maxTokens: 300 });
  console.log(out.text, out.model);
  const emb = await data.endpoint("billing", { apiKey: "ik_live_..." }).embed({ input: ["invoice #42", "refund policy"] });
  console.log(emb.embeddings.length, "vectors", emb.model);
}
void examplesSnippet;

// Other spellings users write: upper-case enum members, plain string literals, the camelCase policy configs.
async function otherSpellings(mgmt: ManagementClient) {
  await mgmt.ensure({ name: 'a', slug: 'a', model: 'm', backend: Backend.VLLM, taskType: TaskType.TEXT2TEXT, command: 'vllm serve m',
    executionPolicy: ExecutionPolicy.FIXED, executionPolicyConfig: { replicas: 2, inactiveTimeoutS: 600 } });
  await mgmt.ensure({ name: 'b', slug: 'b', model: 'm', backend: 'vllm', taskType: 'embedding', command: 'vllm serve m --task embed',
    executionPolicy: 'scheduled', executionPolicyConfig: { cron: '0 2 * * *' } }, { onDrift: OnDrift.Fail });
  await mgmt.ensure({ name: 'c', slug: 'c', model: 'm', backend: Backend.VllmOmni, taskType: TaskType.Text2Image, command: 'vllm-omni serve m',
    vllmVersion: '0.6.3', env: { HF_TOKEN: 'x', myCamelVar: 'y' },
    executionPolicy: ExecutionPolicy.Autoscaling, executionPolicyConfig: { minWorkers: 0, maxWorkers: 3, maxHourlyCostUsd: 5,
      workers: { source: 'cloud', cloudPool: { gpuPool: ['NVIDIA A100-SXM4-80GB'], maxInstances: 3, allowedCudaVersions: ['13.0'] } } } },
    { onDrift: 'ignore' });
  await mgmt.ensure({ name: 'd', slug: 'd', model: 'm', backend: Backend.Ollama, workerId: 'wrk_1',
    executionPolicy: ExecutionPolicy.Autoscaling, executionPolicyConfig: { minWorkers: 1, maxWorkers: 4, workers: { source: 'private', privateWorkerIds: ['wrk_1'] } } });
  await mgmt.ensure({ name: 'e', slug: 'e', model: 'm', backend: Backend.SGLANG, executionPolicy: ExecutionPolicy.Scheduled,
    executionPolicyConfig: { window: 'Mon-Fri 08:00-20:00 Europe/Madrid' } });

  // @ts-expect-error: not a backend
  await mgmt.ensure({ name: 'x', slug: 'x', model: 'm', backend: 'tensorrt' });
  // @ts-expect-error: wire (snake_case) names are not the SDK's input names
  await mgmt.ensure({ name: 'x', slug: 'x', model: 'm', backend: 'ollama', task_type: 'text2text' });
  // @ts-expect-error: not a drift mode
  await mgmt.ensure({ name: 'x', slug: 'x', model: 'm', backend: 'ollama' }, { onDrift: 'overwrite' });

  const view: WorkloadView = await mgmt.getWorkload('c');
  const generation: number = view.generation;
  const policy: ExecutionPolicy = view.executionPolicy;
  const env: Record<string, string> | undefined = view.env;
  const updated: string = view.updatedAt;
  void [generation, policy, env, updated];
}
void otherSpellings;

// Camelize renames keys at every depth, keeps optionality, and leaves `env` alone.
expectType<Equal<
  Camelize<{ task_type?: 'a'; execution_policy_config: { max_workers: number; cloud_pool: { gpu_pool: string[] } }[]; env?: Record<string, string> }>,
  { taskType?: 'a'; executionPolicyConfig: { maxWorkers: number; cloudPool: { gpuPool: string[] } }[]; env?: Record<string, string> }
>>();
expectType<Equal<WorkloadSpecInput['env'], Record<string, string> | undefined>>();

describe('SDK enums', () => {
  it('spell every backend, task type, policy and drift mode both ways, with the wire values', () => {
    assert.equal(Backend.VLLM, 'vllm');
    assert.equal(Backend.Vllm, 'vllm');
    assert.equal(Backend.VLLM_OMNI, 'vllm-omni');
    assert.equal(Backend.VllmOmni, 'vllm-omni');
    assert.equal(Backend.SGLANG, 'sglang');
    assert.equal(Backend.Sglang, 'sglang');
    assert.equal(Backend.OLLAMA, 'ollama');
    assert.equal(Backend.Ollama, 'ollama');
    assert.equal(TaskType.TEXT2TEXT, 'text2text');
    assert.equal(TaskType.Text2Text, 'text2text');
    assert.equal(ExecutionPolicy.FIXED, 'fixed');
    assert.equal(ExecutionPolicy.Fixed, 'fixed');
    assert.equal(OnDrift.RECONCILE, 'reconcile');
    assert.equal(OnDrift.Ignore, 'ignore');
    assert.deepEqual(new Set(Object.values(Backend)), new Set(backends));
    assert.deepEqual(new Set(Object.values(TaskType)), new Set(taskTypes));
    assert.deepEqual(new Set(Object.values(ExecutionPolicy)), new Set(executionPolicies));
    assert.equal(Object.keys(TaskType).length, 24, '12 task types, two spellings each');
    for (const [name, value] of Object.entries(TaskType)) {
      assert.equal(name.toLowerCase().replace(/_/g, ''), value, `${name} spells ${value}`);
    }
  });
});

describe('field-name conversion', () => {
  it('snake_cases field names at every depth (objects in arrays too) and leaves values and env alone', () => {
    const spec = {
      taskType: 'text2text',
      executionPolicyConfig: { maxHourlyCostUsd: 5, workers: { source: 'cloud', cloudPool: { gpuPool: ['NVIDIA A100-SXM4-80GB'], maxInstances: 5 } } },
      env: { HF_TOKEN: 'hf_abc', myCamelVar: 'someValue', nested_Key: 'x' },
      list: [{ innerField: 'camelValue' }],
      command: 'vllm serve m --maxModelLen 1',
    };
    assert.deepEqual(toSnakeKeys(spec), {
      task_type: 'text2text',
      execution_policy_config: { max_hourly_cost_usd: 5, workers: { source: 'cloud', cloud_pool: { gpu_pool: ['NVIDIA A100-SXM4-80GB'], max_instances: 5 } } },
      env: { HF_TOKEN: 'hf_abc', myCamelVar: 'someValue', nested_Key: 'x' },
      list: [{ inner_field: 'camelValue' }],
      command: 'vllm serve m --maxModelLen 1',
    });
  });

  it('camelCases wire names back, round-tripping, with env untouched', () => {
    const wire = { desired_replicas: 1, replicas: [{ worker_id: 'wrk_1', gpu_uuids: ['GPU-1'] }], env: { HF_TOKEN: '********', my_var: 'v' }, placement: null };
    const camel = toCamelKeys(wire);
    assert.deepEqual(camel, { desiredReplicas: 1, replicas: [{ workerId: 'wrk_1', gpuUuids: ['GPU-1'] }], env: { HF_TOKEN: '********', my_var: 'v' }, placement: null });
    assert.deepEqual(toSnakeKeys(camel), wire);
  });

  it('leaves snake_case input as it is', () => {
    const wire = { task_type: 'embedding', execution_policy_config: { min_workers: 0 } };
    assert.deepEqual(toSnakeKeys(wire), wire);
  });
});
