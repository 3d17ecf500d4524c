// ManagementClient against a real hub: the EXAMPLES.md code as written, drift modes, camelCase on the wire, typed errors.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  AuthenticationError,
  Backend,
  ExecutionPolicy,
  HubUnreachableError,
  IkHubError,
  ManagementClient,
  NotFoundError,
  OnDrift,
  TaskType,
  WorkloadDriftError,
  WorkloadSpecInvalidError,
  type WorkloadSpecInput,
} from 'ikhub';
import { startHub, type TestHub } from '../helpers/processes.ts';
import { api } from '../helpers/api.ts';

let hub: TestHub;
const savedEnv = { IK_HUB_URL: process.env.IK_HUB_URL, IK_TOKEN: process.env.IK_TOKEN, IK_PROJECT: process.env.IK_PROJECT };

function restoreEnv() {
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

before(async () => {
  hub = await startHub();
  const created = await api(hub.url, hub.adminToken, 'POST', '/api/v1/projects', { slug: 'acme' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  process.env.IK_HUB_URL = hub.url;
  process.env.IK_TOKEN = hub.adminToken;
  delete process.env.IK_PROJECT;
});
after(async () => {
  restoreEnv();
  await hub.stop();
});

/** The rejection of `promise`, which must reject. */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => assert.fail('expected the call to fail'),
    (err: unknown) => err,
  );
}

const acmeClient = () => new ManagementClient({ hubUrl: hub.url, token: hub.adminToken, project: 'acme' });

const supportBot = {
  name: 'Support bot',
  slug: 'support-bot',
  model: 'meta-llama/Llama-3.1-8B-Instruct',
  backend: Backend.Vllm,
  taskType: 'text2text',
  command: 'vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192',
  executionPolicy: ExecutionPolicy.Fixed,
  executionPolicyConfig: { replicas: 1 },
} satisfies WorkloadSpecInput;

describe('ensure()', () => {
  it('runs the EXAMPLES.md ManagementClient code as written: created, generation 1', async () => {
    // --- EXAMPLES.md, "The SDK calls users copy" (console.log replaced by assertions) ---
    const mgmt = ManagementClient.fromEnv({ project: "acme" });          // reads IK_HUB_URL and IK_TOKEN
    const ref = await mgmt.ensure({ name: "Support bot", slug: "support-bot",
      model: "meta-llama/Llama-3.1-8B-Instruct", backend: Backend.Vllm, taskType: "text2text",
      command: "vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192",
      executionPolicy: ExecutionPolicy.Fixed, executionPolicyConfig: { replicas: 1 } });
    assert.equal(`${ref.projectSlug} ${ref.workloadSlug}`, 'acme support-bot');
    // --- end of the snippet ---
    assert.equal(ref.created, true);
    assert.equal(ref.outcome, 'created');
    assert.equal(ref.generation, 1);
    assert.equal(ref.workload.state, 'creating');
    assert.equal(ref.workload.executionPolicy, 'fixed');
  });

  it('is idempotent: the same spec again is not created and keeps its generation', async () => {
    const ref = await ManagementClient.fromEnv({ project: 'acme' }).ensure(supportBot);
    assert.deepEqual([ref.projectSlug, ref.workloadSlug, ref.created, ref.outcome, ref.generation], ['acme', 'support-bot', false, 'unchanged', 1]);
  });

  const changed = {
    ...supportBot,
    command: 'vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 4096',
    executionPolicyConfig: { replicas: 2 },
  } satisfies WorkloadSpecInput;

  it('OnDrift.FAIL throws WorkloadDriftError listing the changed fields, and changes nothing', async () => {
    const err = await failure(acmeClient().ensure(changed, { onDrift: OnDrift.FAIL }));
    assert.ok(err instanceof WorkloadDriftError, String(err));
    assert.ok(err instanceof IkHubError);
    assert.equal(err.status, 409);
    assert.equal(err.code, 'WORKLOAD_DRIFT');
    assert.deepEqual([...err.fields].sort(), ['command', 'execution_policy_config.replicas']);
    assert.match(err.message, /differs in/);
    assert.equal(err.details.length, 2);
    assert.equal((await acmeClient().getWorkload('support-bot')).generation, 1);
  });

  it('OnDrift.IGNORE keeps the stored spec and its generation', async () => {
    const ref = await acmeClient().ensure(changed, { onDrift: OnDrift.IGNORE });
    assert.deepEqual([ref.created, ref.outcome, ref.generation], [false, 'ignored', 1]);
    assert.equal(ref.workload.command, supportBot.command);
  });

  it('reconciles by default: the new spec is stored under generation 2', async () => {
    const ref = await acmeClient().ensure(changed);
    assert.deepEqual([ref.created, ref.outcome, ref.generation], [false, 'reconciled', 2]);
    const shown = await acmeClient().getWorkload('support-bot');
    assert.equal(shown.command, changed.command);
    assert.deepEqual(shown.executionPolicyConfig, { replicas: 2 });
    assert.equal((await acmeClient().ensure(changed, { onDrift: OnDrift.Reconcile })).generation, 2);
  });

  it('sends camelCase fields as snake_case on the wire, but never renames env keys (their values come back masked)', async () => {
    const spec: WorkloadSpecInput = {
      name: 'Transcriber',
      slug: 'transcriber',
      model: 'openai/whisper-large-v3',
      backend: Backend.VllmOmni,
      taskType: TaskType.Audio2Text,
      command: 'vllm-omni serve openai/whisper-large-v3',
      vllmVersion: '0.6.3',
      env: { HF_TOKEN: 'hf_secret_value', myCamelVar: 'camelValue', snake_var: 'x' },
      executionPolicy: ExecutionPolicy.Autoscaling,
      executionPolicyConfig: {
        minWorkers: 0,
        maxWorkers: 6,
        maxHourlyCostUsd: 5,
        workers: { source: 'cloud', cloudPool: { gpuPool: ['NVIDIA A100-SXM4-80GB'], maxInstances: 6 } },
      },
    };
    const ref = await acmeClient().ensure(spec);
    assert.equal(ref.created, true);

    const raw = await api(hub.url, hub.adminToken, 'GET', '/api/v1/projects/acme/workloads/transcriber');
    assert.equal(raw.status, 200);
    assert.equal(raw.body.task_type, 'audio2text');
    assert.equal(raw.body.vllm_version, '0.6.3');
    assert.equal(raw.body.execution_policy, 'autoscaling');
    assert.equal(raw.body.execution_policy_config.max_hourly_cost_usd, 5);
    assert.equal(raw.body.execution_policy_config.min_workers, 0);
    assert.equal(raw.body.execution_policy_config.max_workers, 6);
    assert.deepEqual(raw.body.execution_policy_config.workers.cloud_pool.gpu_pool, ['NVIDIA A100-SXM4-80GB']);
    assert.equal(raw.body.execution_policy_config.workers.cloud_pool.max_instances, 6);
    assert.deepEqual(raw.body.env, { HF_TOKEN: '********', myCamelVar: '********', snake_var: '********' });
    assert.ok(!JSON.stringify(raw.body).includes('hf_secret_value'));

    // The SDK's view is camelCase, with env keys as the user wrote them.
    const view = await acmeClient().getWorkload('transcriber');
    assert.equal(view.taskType, 'audio2text');
    assert.deepEqual(view.env, { HF_TOKEN: '********', myCamelVar: '********', snake_var: '********' });
    assert.ok(view.executionPolicyConfig && 'maxHourlyCostUsd' in view.executionPolicyConfig);
    assert.equal(view.executionPolicyConfig.maxHourlyCostUsd, 5);
    assert.equal(view.desiredReplicas, 0);
    assert.equal(view.project, 'acme');

    // The same spec (real env values) again is unchanged.
    const again = await acmeClient().ensure(spec, { onDrift: OnDrift.Fail });
    assert.deepEqual([again.created, again.generation], [false, 1]);
  });

  it('an invalid spec is WorkloadSpecInvalidError with the hub message and the offending paths', async () => {
    const err = await failure(
      acmeClient().ensure({
        name: 'Poster maker',
        slug: 'poster-maker',
        model: 'stabilityai/stable-diffusion-3.5-large',
        backend: Backend.Ollama,
        taskType: TaskType.Text2Image,
        executionPolicy: ExecutionPolicy.Autoscaling,
        executionPolicyConfig: { minWorkers: 0, maxWorkers: 3, workers: { source: 'cloud', cloudPool: { gpuPool: ['NVIDIA A100-SXM4-80GB'] } } },
      }),
    );
    assert.ok(err instanceof WorkloadSpecInvalidError, String(err));
    assert.equal(err.status, 422);
    assert.equal(err.code, 'WORKLOAD_SPEC_INVALID');
    assert.match(err.message, /the workload spec is invalid/);
    const paths = err.details.map((d) => d.path);
    assert.ok(paths.includes('execution_policy_config.max_hourly_cost_usd'), paths.join(', '));
    assert.ok(paths.includes('task_type'), paths.join(', '));
    assert.equal((await api(hub.url, hub.adminToken, 'GET', '/api/v1/projects/acme/workloads/poster-maker')).status, 404, 'nothing was stored');
  });
});

describe('workloads, lifecycle and keys', () => {
  it('lists, shows and deletes workloads; a deleted one is NotFoundError', async () => {
    const mgmt = acmeClient();
    await mgmt.ensure({ name: 'Temp', slug: 'temp', model: 'qwen2.5:0.5b', backend: Backend.OLLAMA });
    const slugs = (await mgmt.listWorkloads()).map((w) => w.slug);
    assert.ok(slugs.includes('support-bot') && slugs.includes('temp'), slugs.join(', '));
    const temp = await mgmt.getWorkload('temp');
    assert.deepEqual([temp.backend, temp.taskType, temp.executionPolicy, temp.generation], ['ollama', 'text2text', 'fixed', 1]);
    assert.equal(await mgmt.deleteWorkload('temp'), undefined);
    assert.ok(!(await mgmt.listWorkloads()).some((w) => w.slug === 'temp'));
    const err = await failure(mgmt.getWorkload('temp'));
    assert.ok(err instanceof NotFoundError, String(err));
    assert.equal(err.code, 'WORKLOAD_NOT_FOUND');
    assert.match(err.message, /no workload "temp" in project acme/);
    assert.ok((await failure(mgmt.deleteWorkload('temp'))) instanceof NotFoundError);
  });

  it('deactivates and activates a workload', async () => {
    const mgmt = acmeClient();
    const off = await mgmt.deactivate('support-bot');
    assert.deepEqual([off.desiredState, off.state, off.desiredReplicas], ['inactive', 'inactive', 0]);
    const on = await mgmt.activate('support-bot');
    assert.deepEqual([on.desiredState, on.desiredReplicas], ['active', 2]);
  });

  it('creates a data key (secret once), lists it masked, and revokes it', async () => {
    const mgmt = acmeClient();
    const key = await mgmt.createKey('support-bot', { name: 'support app', rateLimitPerMinute: 60, expiresInS: 3600 });
    assert.match(key.secret, /^ik_live_/);
    assert.deepEqual([key.name, key.workload, key.project, key.rateLimitPerMinute], ['support app', 'support-bot', 'acme', 60]);
    assert.ok(key.expiresAt !== null && key.secret.startsWith(key.prefix));

    const listed = await mgmt.listKeys('support-bot');
    const mine = listed.find((k) => k.id === key.id);
    assert.ok(mine, 'the new key is listed');
    assert.equal('secret' in mine, false);
    assert.equal(mine.rateLimitPerMinute, 60);
    const raw = await api(hub.url, hub.adminToken, 'GET', '/api/v1/projects/acme/workloads/support-bot/keys');
    assert.equal(raw.body.items.find((k: { id: string }) => k.id === key.id).rate_limit_per_minute, 60);

    const revoked = await mgmt.revokeKey('support-bot', key.id);
    assert.notEqual(revoked.revokedAt, null);
    assert.ok((await failure(mgmt.revokeKey('support-bot', 'key_nope'))) instanceof NotFoundError);

    const plain = await mgmt.createKey('support-bot');
    assert.equal(plain.rateLimitPerMinute, null);
  });

  it('manages projects and project-scoped tokens; a project token cannot see another project', async () => {
    const admin = new ManagementClient({ hubUrl: hub.url, token: hub.adminToken, project: 'other' });
    assert.equal((await admin.createProject({ slug: 'other', name: 'Other team' })).name, 'Other team');
    const token = await admin.createToken({ name: 'ci' });
    assert.match(token.secret, /^ik_sdk_/);
    assert.ok((await admin.listTokens()).some((t) => t.id === token.id));

    const scoped = new ManagementClient({ hubUrl: hub.url, token: token.secret, project: 'other' });
    assert.deepEqual((await scoped.listProjects()).map((p) => p.slug), ['other']);
    const err = await failure(new ManagementClient({ hubUrl: hub.url, token: token.secret, project: 'acme' }).listWorkloads());
    assert.ok(err instanceof NotFoundError, String(err));
    assert.equal(err.code, 'PROJECT_NOT_FOUND');

    assert.notEqual((await admin.revokeToken(token.id)).revokedAt, null);
    assert.ok((await failure(scoped.listWorkloads())) instanceof AuthenticationError);
  });
});

describe('errors and configuration', () => {
  it('a wrong token is AuthenticationError with the hub message', async () => {
    const mgmt = new ManagementClient({ hubUrl: hub.url, token: 'ik_sdk_thisisnotarealtoken0000000000000000000000', project: 'acme' });
    const err = await failure(mgmt.listWorkloads());
    assert.ok(err instanceof AuthenticationError, String(err));
    assert.equal(err.status, 401);
    assert.equal(err.code, 'UNAUTHORIZED');
    assert.match(err.message, /invalid token/);
  });

  it('a hub nobody answers on is HubUnreachableError', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const err = await failure(new ManagementClient({ hubUrl: `http://127.0.0.1:${port}`, token: hub.adminToken }).ensure(supportBot));
    assert.ok(err instanceof HubUnreachableError, String(err));
    assert.ok(err instanceof IkHubError);
    assert.equal(err.code, 'HUB_UNREACHABLE');
    assert.match(err.message, new RegExp(`cannot reach the hub at http://127\\.0\\.0\\.1:${port}`));
  });

  it('a hub that never answers is HubUnreachableError once the timeout passes', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const err = await failure(new ManagementClient({ hubUrl: url, token: hub.adminToken, timeoutMs: 200 }).listWorkloads());
      assert.ok(err instanceof HubUnreachableError, String(err));
      assert.equal(err.code, 'HUB_TIMEOUT');
      assert.match(err.message, /no answer within 200 ms/);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('fromEnv names the missing variable; explicit options win; the project defaults to IK_PROJECT, then default', () => {
    try {
      delete process.env.IK_TOKEN;
      assert.throws(() => ManagementClient.fromEnv({ project: 'acme' }), /IK_TOKEN is not set/);
      assert.equal(ManagementClient.fromEnv({ project: 'acme', token: hub.adminToken }).hubUrl, hub.url);
      process.env.IK_TOKEN = hub.adminToken;
      delete process.env.IK_HUB_URL;
      assert.throws(() => ManagementClient.fromEnv(), /IK_HUB_URL is not set/);
      process.env.IK_HUB_URL = 'http://127.0.0.1:1';
      assert.equal(ManagementClient.fromEnv({ hubUrl: hub.url }).hubUrl, hub.url);
      assert.equal(ManagementClient.fromEnv().project, 'default');
      process.env.IK_PROJECT = 'acme';
      assert.equal(ManagementClient.fromEnv().project, 'acme');
      assert.equal(ManagementClient.fromEnv({ project: 'other' }).project, 'other');
      assert.throws(() => ManagementClient.fromEnv({ hubUrl: 'hub.example.com' }), /hubUrl is not a URL/);
    } finally {
      process.env.IK_HUB_URL = hub.url;
      process.env.IK_TOKEN = hub.adminToken;
      delete process.env.IK_PROJECT;
    }
  });
});
