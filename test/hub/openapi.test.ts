// The OpenAPI document a real hub serves: every admin route with its method, {id} params, and the worker contract of DESIGN §4.3.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadHubConfig } from '../../hub/config.ts';
import { startHub, type RunningHub } from '../../hub/main.ts';
import { openApiPath } from '../../hub/api/openapi.ts';

type Json = Record<string, any>;

describe('openApiPath', () => {
  it('turns fastify params into OpenAPI params and an escaped colon into a colon', () => {
    assert.equal(openApiPath('/a/:id/b::plan'), '/a/{id}/b:plan');
    assert.equal(openApiPath('/api/v1/projects/:p/workloads/:slug/keys/:id'), '/api/v1/projects/{p}/workloads/{slug}/keys/{id}');
    assert.equal(openApiPath('/api/v1/projects/:p/workloads::plan'), '/api/v1/projects/{p}/workloads:plan');
    assert.equal(openApiPath('/api/v1/workers'), '/api/v1/workers');
  });
});

describe('GET /api/v1/openapi.json', () => {
  let dataDir: string;
  let hub: RunningHub;
  let doc: Json;
  let status: number;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'ik-openapi-'));
    hub = await startHub(loadHubConfig({ IK_PORT: '0', IK_HOST: '127.0.0.1', IK_DATA_DIR: dataDir, IK_LOG_LEVEL: 'silent' }));
    const res = await fetch(`${hub.url}/api/v1/openapi.json`);
    status = res.status;
    doc = (await res.json()) as Json;
  });
  after(async () => {
    await hub?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** The JSON schema of a response, with local $refs resolved. */
  const resolve = (schema: Json): Json => {
    if (typeof schema?.$ref === 'string') {
      const path = schema.$ref.replace(/^#\//, '').split('/');
      return resolve(path.reduce((node: Json, key: string) => node?.[key], doc));
    }
    return schema;
  };
  const op = (path: string, method: string): Json => {
    const o = doc.paths?.[path]?.[method];
    assert.ok(o, `${method.toUpperCase()} ${path} is missing from the document`);
    return o;
  };
  const responseSchema = (path: string, method: string, code = '200') =>
    resolve(op(path, method).responses?.[code]?.content?.['application/json']?.schema);

  it('is served without a token as OpenAPI 3.1.0', () => {
    assert.equal(status, 200);
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(typeof doc.info?.title, 'string');
    assert.equal(typeof doc.info?.version, 'string');
  });

  it('lists every admin route with its method', () => {
    const expected: Array<[string, string]> = [
      ['/api/v1/join-tokens', 'get'],
      ['/api/v1/join-tokens', 'post'],
      ['/api/v1/join-tokens/{id}', 'delete'],
      ['/api/v1/workers', 'get'],
      ['/api/v1/workers/{id}', 'get'],
      ['/api/v1/workers/{id}', 'patch'],
      ['/api/v1/workers/{id}', 'delete'],
      ['/api/v1/workers/{id}/cordon', 'post'],
      ['/api/v1/workers/{id}/uncordon', 'post'],
      ['/api/v1/workers/{id}/drain', 'post'],
    ];
    for (const [path, method] of expected) op(path, method);
  });

  it('also lists the public paths', () => {
    for (const path of ['/api/v1/health', '/api/v1/openapi.json', '/metrics', '/install.sh', '/agent/bundle']) {
      assert.ok(doc.paths[path]?.get, `GET ${path} is missing`);
    }
  });

  it('writes path parameters as {id}, never fastify\'s :id, and declares them', () => {
    for (const path of Object.keys(doc.paths)) {
      assert.doesNotMatch(path, /\/:/, `path ${path} uses fastify syntax`);
      for (const [, name] of path.matchAll(/\{(\w+)\}/g)) {
        for (const [method, o] of Object.entries(doc.paths[path] as Json)) {
          const param = (o as Json).parameters?.find((p: Json) => p.in === 'path' && p.name === name);
          assert.ok(param, `${method.toUpperCase()} ${path} does not declare path parameter ${name}`);
          assert.equal(param.required, true);
        }
      }
    }
  });

  it('gives every operation a unique operationId', () => {
    const ids = Object.values(doc.paths as Json)
      .flatMap((methods) => Object.values(methods as Json))
      .map((o) => (o as Json).operationId)
      .filter((id) => id !== undefined);
    assert.equal(new Set(ids).size, ids.length, `duplicate operationIds: ${ids.join(', ')}`);
  });

  it('describes a worker with exactly the field names of DESIGN §4.3', () => {
    const worker = responseSchema('/api/v1/workers/{id}', 'get');
    assert.deepEqual(Object.keys(worker.properties ?? {}).sort(), [
      'agent_version',
      'cordoned',
      'cuda_version',
      'draining',
      'gpu_driver_version',
      'gpu_error',
      'gpu_hourly_cost_usd',
      'gpus',
      'host',
      'id',
      'labels',
      'last_heartbeat_at',
      'name',
      'project',
      'replicas',
      'runtime',
      'state',
    ]);
    assert.deepEqual([...(resolve(worker.properties.state).enum ?? [])].sort(), ['disconnected', 'down', 'ready']);
  });

  it('describes a GPU with the fields nvidia-smi fills in', () => {
    const worker = responseSchema('/api/v1/workers/{id}', 'get');
    const gpu = resolve(resolve(worker.properties.gpus).items);
    assert.deepEqual(Object.keys(gpu.properties ?? {}).sort(), [
      'compute_capability',
      'index',
      'memory_free_mib',
      'memory_total_mib',
      'memory_used_mib',
      'mig_devices',
      'mig_mode',
      'name',
      'pci_bus_id',
      'temperature_c',
      'utilization_pct',
      'uuid',
    ]);
    const mig = resolve(resolve(gpu.properties.mig_devices).items);
    assert.deepEqual(Object.keys(mig.properties ?? {}).sort(), ['memory_total_mib', 'profile', 'uuid']);
  });

  it('describes the host with the fields of DESIGN §4.3', () => {
    const worker = responseSchema('/api/v1/workers/{id}', 'get');
    assert.deepEqual(Object.keys(resolve(worker.properties.host).properties ?? {}).sort(), [
      'arch',
      'cpu_cores',
      'disk_free_mib',
      'hostname',
      'memory_total_mib',
      'os',
    ]);
  });

  it('lists workers as {items, next}', () => {
    const list = responseSchema('/api/v1/workers', 'get');
    assert.deepEqual(Object.keys(list.properties ?? {}).sort(), ['items', 'next']);
  });

  it('forbids unknown fields in the PATCH body and offers labels and gpu_hourly_cost_usd', () => {
    const body = resolve(op('/api/v1/workers/{id}', 'patch').requestBody?.content?.['application/json']?.schema);
    assert.equal(body.additionalProperties, false);
    assert.deepEqual(Object.keys(body.properties ?? {}).sort(), ['gpu_hourly_cost_usd', 'labels']);
  });

  it('forbids unknown fields in the join-token create body', () => {
    const body = resolve(op('/api/v1/join-tokens', 'post').requestBody?.content?.['application/json']?.schema);
    assert.equal(body.additionalProperties, false);
    for (const field of ['project', 'labels', 'expires_in_s']) assert.ok(body.properties?.[field], `field ${field} missing`);
  });

  it('shows the join-token secret only in the create response', () => {
    const created = responseSchema('/api/v1/join-tokens', 'post', '201');
    assert.ok(created.properties?.secret, 'the create response has no secret');
    const listed = resolve(responseSchema('/api/v1/join-tokens', 'get').properties.items).items;
    assert.equal(resolve(listed).properties?.secret, undefined, 'the list shows secrets');
    assert.ok(resolve(listed).properties?.prefix);
  });

  it('documents the error shape for 4xx answers', () => {
    const err = resolve(op('/api/v1/workers/{id}', 'get').responses?.['4XX']?.content?.['application/json']?.schema);
    assert.deepEqual(Object.keys(resolve(err.properties.error).properties ?? {}).sort(), ['code', 'details', 'message']);
  });

  it('asks for the bearer token on admin routes but not on health', () => {
    assert.deepEqual(op('/api/v1/workers', 'get').security, [{ bearer: [] }]);
    assert.deepEqual(op('/api/v1/health', 'get').security, []);
    assert.equal(doc.components?.securitySchemes?.bearer?.scheme, 'bearer');
  });
});
