// Control messages of the tunnel: what each side accepts, and the one-line errors that end a bad session.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  agentMessageSchema,
  controlMessageSchema,
  hubMessageSchema,
  parseControlMessage,
} from '../../shared/protocol/control.ts';
import type { Gpu } from '../../shared/inventory.ts';
import { sampleInventory } from '../helpers/inventory.ts';

const inventory = sampleInventory(1);
const gpu = inventory.gpus[0]!;

const replica = {
  replica_id: 'rep_AbCdEfGh12345678',
  generation: 2,
  state: 'ready',
  port: 40001,
  runtime: 'docker',
  container_id: 'c0ffee',
  pid: null,
  restarts: 1,
  reason: null,
};
const hello = { type: 'hello', protocol_version: 1, agent_version: '0.1.0', name: 'gpu-box-1', inventory, replicas: [] };
const heartbeat = {
  type: 'heartbeat',
  seq: 7,
  gpus: [{ uuid: gpu.uuid, memory_used_mib: 1024, memory_free_mib: 80000, utilization_pct: 55, temperature_c: 60 }],
  gpu_error: null,
  replicas: [replica],
};
const inventoryUpdate = { type: 'inventory', inventory };
const welcome = {
  type: 'welcome',
  worker_id: 'wrk_AbCdEfGh12345678',
  credential: `ik_agent_${'x'.repeat(40)}`,
  heartbeat_interval_ms: 5000,
  config: { heartbeat_interval_ms: 5000, inventory_interval_ms: 5000, ping_interval_ms: 15000, restart_backoff_base_ms: 10_000 },
};
const reject = { type: 'reject', code: 'token_revoked', message: 'this join token was revoked; ask the operator for a new one' };
const goAway = { type: 'go_away', code: 'protocol_error', message: 'unknown message type' };

/** Parses and returns the error line, failing the test if the message was accepted. */
function errorOf(schema: Parameters<typeof parseControlMessage>[0], value: unknown): string {
  const result = parseControlMessage(schema, typeof value === 'string' ? value : JSON.stringify(value));
  assert.equal(result.ok, false, `expected ${JSON.stringify(value).slice(0, 200)} to be refused`);
  return result.ok ? '' : result.error;
}

describe('valid control messages parse', () => {
  for (const [name, schema, message] of [
    ['hello (agent)', agentMessageSchema, hello],
    ['hello with a worker id (agent, reconnect)', agentMessageSchema, { ...hello, worker_id: 'wrk_AbCdEfGh12345678' }],
    ['heartbeat (agent)', agentMessageSchema, heartbeat],
    ['heartbeat with a GPU error (agent)', agentMessageSchema, { ...heartbeat, gpus: [], gpu_error: { code: 'NVIDIA_SMI_TIMEOUT', message: 'nvidia-smi did not answer in 10 s' } }],
    ['inventory (agent)', agentMessageSchema, inventoryUpdate],
    ['go_away (agent)', agentMessageSchema, { ...goAway, code: 'shutdown' }],
    ['replica.status with the last log lines (agent)', agentMessageSchema, { type: 'replica.status', replica: { ...replica, state: 'failed', reason: 'exited with code 1' }, last_log: ['Traceback …'] }],
    ['image.pull.progress (agent)', agentMessageSchema, { type: 'image.pull.progress', replica_id: replica.replica_id, image: 'vllm/vllm-openai:v0.6.3', status: 'downloading', percent: 42.5 }],
    ['logs.chunk and logs.end (agent)', agentMessageSchema, { type: 'logs.chunk', reply_to: 'r1', lines: ['INFO: ready'] }],
    ['reply (agent)', agentMessageSchema, { type: 'reply', reply_to: 'r1', ok: false, error: { code: 'not_found', message: 'no such replica' } }],
    ['replica.stop (hub)', hubMessageSchema, { type: 'replica.stop', id: 'r2', replica_id: replica.replica_id, reason: 'scaled down', grace_ms: 30_000 }],
    ['logs.read (hub)', hubMessageSchema, { type: 'logs.read', id: 'r3', replica_id: replica.replica_id, tail: 100, since: null, follow: true }],
    ['welcome (hub)', hubMessageSchema, welcome],
    ['welcome without a credential (hub, reconnect)', hubMessageSchema, { ...welcome, credential: undefined }],
    ['reject (hub)', hubMessageSchema, reject],
    ['go_away (hub)', hubMessageSchema, goAway],
  ] as const) {
    it(name, () => {
      const result = parseControlMessage(schema as Parameters<typeof parseControlMessage>[0], JSON.stringify(message));
      assert.equal(result.ok, true, result.ok ? '' : result.error);
      assert.deepEqual(result.ok && result.message, JSON.parse(JSON.stringify(message)));
    });
  }

  it('the union of both sides accepts every kind', () => {
    for (const m of [hello, heartbeat, inventoryUpdate, welcome, reject, goAway]) {
      assert.equal(controlMessageSchema.safeParse(m).success, true, m.type);
    }
  });

  it('a GPU with absent values (null) and MIG devices is accepted', () => {
    const migGpu: Gpu = {
      ...gpu,
      name: null,
      utilization_pct: null,
      temperature_c: null,
      compute_capability: null,
      mig_mode: 'enabled',
      mig_devices: [{ uuid: 'MIG-1234', profile: '3g.40gb', memory_total_mib: 40448 }],
    };
    const result = parseControlMessage(agentMessageSchema, JSON.stringify({ ...hello, inventory: { ...inventory, gpus: [migGpu] } }));
    assert.equal(result.ok, true, result.ok ? '' : result.error);
  });
});

describe('parseControlMessage: readable errors', () => {
  it('says when a frame is not JSON', () => {
    assert.equal(errorOf(agentMessageSchema, '{"type": "hello",'), 'message is not valid JSON');
    assert.equal(errorOf(agentMessageSchema, ''), 'message is not valid JSON');
  });

  it('names an unknown type', () => {
    const error = errorOf(agentMessageSchema, { type: 'replica.explode', id: 'r1' });
    assert.match(error, /"replica\.explode"/);
    assert.match(error, /at type/);
    // The error lists what would have been accepted.
    for (const known of ['hello', 'heartbeat', 'inventory', 'go_away']) assert.match(error, new RegExp(known));
  });

  it('says "type none" for JSON that is not an object or has no type', () => {
    assert.match(errorOf(agentMessageSchema, [1, 2, 3]), /type none/);
    assert.match(errorOf(agentMessageSchema, 'null'), /type none/);
    assert.match(errorOf(agentMessageSchema, '"hello"'), /type none/);
    assert.match(errorOf(agentMessageSchema, { seq: 1 }), /type none/);
  });

  it('names a missing field and says it is missing', () => {
    const { name: _name, ...noName } = hello;
    const error = errorOf(agentMessageSchema, noName);
    assert.match(error, /\(type "hello"\)/);
    assert.match(error, /at name/);
    assert.match(error, /undefined|required/i);
  });

  it('names a missing field deep inside the inventory with its path', () => {
    const { arch: _arch, ...host } = inventory.host;
    const error = errorOf(agentMessageSchema, { ...hello, inventory: { ...inventory, host } });
    assert.match(error, /at inventory\.host\.arch/);
  });

  it('refuses unknown extra keys (objects are strict) and names them', () => {
    const top = errorOf(agentMessageSchema, { ...heartbeat, extra: true });
    assert.match(top, /extra/);
    const nested = errorOf(agentMessageSchema, { ...hello, inventory: { ...inventory, gpus: [{ ...gpu, fan_pct: 30 }] } });
    assert.match(nested, /fan_pct/);
    assert.match(nested, /inventory\.gpus\.0/);
    const welcomeExtra = errorOf(hubMessageSchema, { ...welcome, config: { ...welcome.config, debug: true } });
    assert.match(welcomeExtra, /debug/);
  });

  it('names a field of the wrong type', () => {
    const error = errorOf(agentMessageSchema, { ...heartbeat, seq: '7' });
    assert.match(error, /at seq/);
    assert.match(error, /number/i);
    assert.match(errorOf(agentMessageSchema, { ...heartbeat, seq: -1 }), /at seq/);
    assert.match(errorOf(agentMessageSchema, { ...heartbeat, seq: 1.5 }), /at seq/);
    assert.match(errorOf(agentMessageSchema, { ...hello, protocol_version: 0 }), /at protocol_version/);
  });

  it('refuses values outside an enum', () => {
    assert.match(errorOf(hubMessageSchema, { ...reject, code: 'nope' }), /at code/);
    assert.match(errorOf(agentMessageSchema, { ...goAway, code: 'because' }), /at code/);
  });

  it('refuses oversized arrays (more than 64 GPUs)', () => {
    const many = Array.from({ length: 65 }, (_, i) => ({ ...heartbeat.gpus[0], uuid: `GPU-${i}` }));
    assert.match(errorOf(agentMessageSchema, { ...heartbeat, gpus: many }), /at gpus/);
    const manyGpus = Array.from({ length: 65 }, (_, i) => ({ ...gpu, index: i, uuid: `GPU-${i}` }));
    assert.match(errorOf(agentMessageSchema, { ...inventoryUpdate, inventory: { ...inventory, gpus: manyGpus } }), /at inventory\.gpus/);
    const exactly64 = Array.from({ length: 64 }, (_, i) => ({ ...heartbeat.gpus[0], uuid: `GPU-${i}` }));
    assert.equal(parseControlMessage(agentMessageSchema, JSON.stringify({ ...heartbeat, gpus: exactly64 })).ok, true);
  });

  it('refuses an over-long message string', () => {
    assert.match(errorOf(hubMessageSchema, { ...reject, message: 'x'.repeat(2001) }), /at message/);
  });

  it('refuses a malformed worker id, worker name or credential', () => {
    assert.match(errorOf(agentMessageSchema, { ...hello, worker_id: 'worker-1' }), /at worker_id/);
    assert.match(errorOf(agentMessageSchema, { ...hello, name: '-leading-dash' }), /at name/);
    assert.match(errorOf(agentMessageSchema, { ...hello, name: 'has space' }), /at name/);
    assert.match(errorOf(agentMessageSchema, { ...hello, name: 'a'.repeat(64) }), /at name/);
    assert.match(errorOf(hubMessageSchema, { ...welcome, credential: 'ik_join_abc' }), /at credential/);
  });
});

describe('each side accepts only its own messages', () => {
  it('the agent schema (what the hub reads) refuses hub-only messages', () => {
    for (const m of [welcome, reject]) {
      const error = errorOf(agentMessageSchema, m);
      assert.match(error, new RegExp(`"${m.type}"`));
    }
  });

  it('the hub schema (what the agent reads) refuses agent-only messages', () => {
    for (const m of [hello, heartbeat, inventoryUpdate]) {
      const error = errorOf(hubMessageSchema, m);
      assert.match(error, new RegExp(`"${m.type}"`));
    }
  });
});
