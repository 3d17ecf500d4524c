// Runner tests: the nvidia-smi probe against the fake binary, one fixture scenario at a time.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { execa } from 'execa';
import { createLogger } from '../../../shared/logger.ts';
import { inventorySchema, type GpuInventory } from '../../../shared/inventory.ts';
import { createNvidiaSmiProbe } from '../../../agent/inventory/nvidia-smi.ts';
import { parseQueryGpuCsv } from '../../../agent/inventory/nvidia-smi-parse.ts';

const fakeSmi = fileURLToPath(new URL('../../fake-nvidia-smi/nvidia-smi', import.meta.url));
const fixturesDir = fileURLToPath(new URL('../../fixtures/nvidia-smi/', import.meta.url));

let workDir = '';
let callLog = '';
let logLines: Array<Record<string, unknown>> = [];

beforeEach(() => {
  workDir = mkdtempSync(path.join(tmpdir(), 'ik-smi-'));
  callLog = path.join(workDir, 'calls.log');
  logLines = [];
});
afterEach(() => rmSync(workDir, { recursive: true, force: true }));

function probeFor(scenario: string, opts: { timeoutMs?: number; binary?: string } = {}) {
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return createNvidiaSmiProbe({
    binary: opts.binary ?? fakeSmi,
    timeoutMs: opts.timeoutMs ?? 10_000,
    log: createLogger({ level: 'debug', name: 'test', destination }),
    env: { IK_FAKE_SMI: scenario, IK_FAKE_SMI_LOG: callLog },
  });
}

/** The fake's argument lines, one per call (an empty line is the plain `nvidia-smi`). */
function callLines(): string[] {
  try {
    return readFileSync(callLog, 'utf8').split('\n').slice(0, -1);
  } catch {
    return [];
  }
}

/** The calls, shortened: `query+cc` / `query` for --query-gpu with or without compute_cap, `plain` for no arguments. */
function calls(): string[] {
  return callLines().map((line) => {
    if (line.startsWith('--query-gpu=')) return line.includes('compute_cap') ? 'query+cc' : 'query';
    return line === '' ? 'plain' : line;
  });
}

/** A scenario copied into the test's temp dir, so a test can change it between polls. */
function copyScenario(name: string): string {
  const dir = path.join(workDir, name);
  cpSync(path.join(fixturesDir, name), dir, { recursive: true });
  return dir;
}

function assertValid(inventory: GpuInventory): void {
  const full = inventorySchema.pick({ gpu_driver_version: true, cuda_version: true, gpu_error: true, gpus: true });
  assert.equal(full.safeParse(inventory).success, true, JSON.stringify(inventory));
}

describe('nvidia-smi probe on healthy boxes', () => {
  it('reports one H100 and asks the versions only once', async () => {
    const probe = probeFor('h100-x1');
    const first = await probe.poll();
    assert.deepEqual(first, {
      gpu_driver_version: '590.48.01',
      cuda_version: '13.1',
      gpu_error: null,
      gpus: [{
        index: 0, uuid: 'GPU-3a1c9f52-7e0b-4d8a-9c61-2f5e8b0d4a17', name: 'NVIDIA H100 80GB HBM3',
        memory_total_mib: 81559, memory_used_mib: 0, memory_free_mib: 81081, utilization_pct: 0, temperature_c: 41,
        compute_capability: '9.0', pci_bus_id: '00000000:00:09.0', mig_mode: 'disabled', mig_devices: [],
      }],
    });
    assert.deepEqual(calls(), ['query+cc', '--version']);
    assert.deepEqual(await probe.poll(), first);
    assert.deepEqual(calls(), ['query+cc', '--version', 'query+cc']);
    assert.match(callLines()[0] ?? '', /^--query-gpu=index,uuid,name,memory\.total,.*,compute_cap,mig\.mode\.current --format=csv,noheader,nounits$/);
  });

  it('reports every GPU of multi-GPU boxes', async () => {
    const two = await probeFor('h100-x2').poll();
    assert.deepEqual(two.gpus.map((g) => [g.index, g.memory_used_mib, g.utilization_pct]), [[0, 0, 0], [1, 19818, 100]]);
    const four = await probeFor('l4-x4').poll();
    assert.deepEqual(four.gpus.map((g) => g.memory_free_mib), [22564, 5002, 14304, 414]);
    assert.deepEqual([four.gpu_driver_version, four.cuda_version], ['570.195.03', '12.8']);
    assertValid(four);
  });

  it('fills MIG devices from -L and -q -x only when a GPU has MIG enabled', async () => {
    const inventory = await probeFor('h100-mig').poll();
    assertValid(inventory);
    assert.deepEqual(calls(), ['query+cc', '--version', '-L', '-q -x']);
    assert.deepEqual(inventory.gpus[0]?.mig_devices.map((m) => [m.profile, m.memory_total_mib]), [
      ['3g.40gb', 40448], ['2g.20gb', 20096], ['1g.10gb', 9984], ['1g.10gb', 9984],
    ]);
    assert.equal(inventory.gpus[0]?.mig_devices[2]?.uuid, 'MIG-2c8b5a43-7d9e-5fa6-b024-5e3b9cad8fb2');
    assert.deepEqual(inventory.gpus[1]?.mig_devices, []);

    const a100 = await probeFor('a100-mig').poll();
    assert.deepEqual(a100.gpus[0]?.mig_devices.map((m) => [m.profile, m.memory_total_mib]), [['3g.20gb', 19968], ['3g.20gb', 19968]]);
    assert.deepEqual([a100.gpu_driver_version, a100.cuda_version], ['510.47.03', '11.6']);
  });

  it('estimates MIG memory from the profile when -q -x fails', async () => {
    const dir = copyScenario('h100-mig');
    rmSync(path.join(dir, 'query.xml'));
    const inventory = await probeFor(dir).poll();
    assert.equal(inventory.gpu_error, null);
    assert.deepEqual(inventory.gpus[0]?.mig_devices.map((m) => m.memory_total_mib), [40960, 20480, 10240, 10240]);
  });

  it('takes the versions from -q -x when neither --version nor the plain header tells them, asking -q -x once', async () => {
    const dir = copyScenario('a100-mig');
    writeFileSync(path.join(dir, 'scenario.json'), '{"no_version_flag": true}');
    const inventory = await probeFor(dir).poll();
    assert.deepEqual([inventory.gpu_driver_version, inventory.cuda_version], ['510.47.03', '11.6']);
    assert.deepEqual(calls(), ['query+cc', '--version', 'plain', '-q -x', '-L']);
    assert.equal(inventory.gpus[0]?.mig_devices[0]?.memory_total_mib, 19968);
  });

  it('reads the R610 wording', async () => {
    const inventory = await probeFor('l40s-r610').poll();
    assert.deepEqual([inventory.gpu_driver_version, inventory.cuda_version], ['610.57.04', '13.3']);
    assert.equal(inventory.gpus[0]?.mig_mode, null);
  });

  it('reports absent values as null, never 0', async () => {
    const absent = await probeFor('mixed-absent').poll();
    assertValid(absent);
    assert.equal(absent.gpu_error, null);
    assert.deepEqual(absent.gpus.map((g) => [g.utilization_pct, g.temperature_c]), [[null, null], [null, 33], [3, null]]);
    const unified = await probeFor('unified-memory').poll();
    assert.deepEqual([unified.gpus[0]?.memory_total_mib, unified.gpus[0]?.memory_free_mib], [null, null]);
    const desktop = await probeFor('rtx4080-x1').poll();
    assert.deepEqual([desktop.gpus[0]?.name, desktop.gpus[0]?.mig_mode, desktop.cuda_version], ['NVIDIA GeForce RTX 4080 SUPER', null, '13.2']);
  });

  it('asks an old binary without compute_cap once, then never again, and reads CUDA from the plain header', async () => {
    const probe = probeFor('old-no-compute-cap');
    const first = await probe.poll();
    assert.equal(first.gpu_error, null);
    assert.deepEqual(first.gpus.map((g) => [g.name, g.compute_capability]), [['Tesla V100-SXM2-16GB', null], ['Tesla V100-SXM2-16GB', null]]);
    assert.deepEqual([first.gpu_driver_version, first.cuda_version], ['470.256.02', '11.4']);
    assert.deepEqual(calls(), ['query+cc', 'query', '--version', 'plain']);
    await probe.poll();
    await probe.poll();
    assert.deepEqual(calls(), ['query+cc', 'query', '--version', 'plain', 'query', 'query']);
    assert.ok(logLines.some((l) => l.field === 'compute_cap' && l.msg === 'nvidia-smi does not know a query field; asking without it from now on'));
  });

  it('asks the versions again when the driver changes', async () => {
    const dir = copyScenario('h100-x1');
    const probe = probeFor(dir);
    await probe.poll();
    for (const file of ['query.csv', 'version.txt']) {
      const target = path.join(dir, file);
      writeFileSync(target, readFileSync(target, 'utf8').replaceAll('590.48.01', '595.71.05').replace('13.1', '13.2'));
    }
    const upgraded = await probe.poll();
    assert.deepEqual([upgraded.gpu_driver_version, upgraded.cuda_version], ['595.71.05', '13.2']);
    assert.deepEqual(calls(), ['query+cc', '--version', 'query+cc', '--version']);
  });

  it('shares one run between concurrent polls', async () => {
    const probe = probeFor('h100-x1');
    const [a, b] = await Promise.all([probe.poll(), probe.poll()]);
    assert.deepEqual(a, b);
    assert.deepEqual(calls(), ['query+cc', '--version']);
  });
});

describe('nvidia-smi probe on broken boxes', () => {
  const failures: Array<[string, string, RegExp]> = [
    ['driver-not-loaded', 'DRIVER_NOT_LOADED', /couldn't communicate with the NVIDIA driver.*modprobe nvidia/],
    ['driver-mismatch', 'DRIVER_MISMATCH', /version mismatch.*reboot/],
    ['no-devices', 'NO_DEVICES', /no GPUs/],
  ];
  for (const [scenario, code, message] of failures) {
    it(`${scenario} → ${code}`, async () => {
      const inventory = await probeFor(scenario).poll();
      assert.equal(inventory.gpu_error?.code, code);
      assert.match(inventory.gpu_error?.message ?? '', message);
      assert.deepEqual(inventory.gpus, []);
      assert.deepEqual(calls(), ['query+cc'], 'a failed query ends the cycle');
      assertValid(inventory);
    });
  }

  it('a missing binary → NVIDIA_SMI_MISSING naming the path and IK_NVIDIA_SMI', async () => {
    const binary = path.join(workDir, 'no-such-nvidia-smi');
    const inventory = await probeFor('h100-x1', { binary }).poll();
    assert.deepEqual(inventory, {
      gpu_driver_version: null,
      cuda_version: null,
      gpu_error: { code: 'NVIDIA_SMI_MISSING', message: `nvidia-smi not found at '${binary}': install the NVIDIA driver or set IK_NVIDIA_SMI` },
      gpus: [],
    });
  });

  it('an unknown failure → NVIDIA_SMI_FAILED with what nvidia-smi said', async () => {
    const dir = copyScenario('h100-x1');
    writeFileSync(path.join(dir, 'scenario.json'), '{"exit": 3, "stderr": "Unable to determine the device handle for GPU0000:00:09.0: Unknown Error\\n"}');
    const inventory = await probeFor(dir).poll();
    assert.equal(inventory.gpu_error?.code, 'NVIDIA_SMI_FAILED');
    assert.match(inventory.gpu_error?.message ?? '', /exited with 3: "Unable to determine the device handle/);
  });

  it('a hang → NVIDIA_SMI_TIMEOUT within the timeout, the rest of the cycle skipped', async () => {
    const started = performance.now();
    const inventory = await probeFor('hang', { timeoutMs: 500 }).poll();
    const elapsed = performance.now() - started;
    assert.equal(inventory.gpu_error?.code, 'NVIDIA_SMI_TIMEOUT');
    assert.deepEqual(inventory.gpus, []);
    assert.deepEqual(calls(), ['query+cc']);
    // The timeout, plus at most the kill grace: a loaded CI machine must not make this flaky.
    assert.ok(elapsed >= 450 && elapsed < 4500, `poll took ${Math.round(elapsed)} ms`);
  });

  it('a hang after a good poll keeps the last known GPUs, marked by the error', async () => {
    const dir = copyScenario('h100-x2');
    // Long enough for the answering calls on a loaded machine; the hanging one still ends at the timeout.
    const probe = probeFor(dir, { timeoutMs: 3000 });
    const good = await probe.poll();
    writeFileSync(path.join(dir, 'scenario.json'), '{"hang": true}');
    const stale = await probe.poll();
    assert.equal(stale.gpu_error?.code, 'NVIDIA_SMI_TIMEOUT');
    assert.deepEqual({ ...stale, gpu_error: null }, good);
    rmSync(path.join(dir, 'scenario.json'));
    assert.deepEqual(await probe.poll(), good, 'recovers once nvidia-smi answers again');
  });

  it('a hang later in the cycle keeps the GPUs this cycle read and skips the remaining calls', async () => {
    const inventory = await probeFor('hang-after-query', { timeoutMs: 3000 }).poll();
    assert.equal(inventory.gpu_error?.code, 'NVIDIA_SMI_TIMEOUT');
    assert.match(inventory.gpu_error?.message ?? '', /--version' did not answer within 3000 ms/);
    assert.equal(inventory.gpus[0]?.uuid, 'GPU-3a1c9f52-7e0b-4d8a-9c61-2f5e8b0d4a17');
    assert.deepEqual(calls(), ['query+cc', '--version']);
  });

  it('garbage → NVIDIA_SMI_UNEXPECTED_OUTPUT and a warning, without throwing', async () => {
    const inventory = await probeFor('garbage').poll();
    assert.equal(inventory.gpu_error?.code, 'NVIDIA_SMI_UNEXPECTED_OUTPUT');
    assert.deepEqual(inventory.gpus, []);
    const warning = logLines.find((l) => l.msg === 'nvidia-smi output not understood');
    assert.ok(Array.isArray(warning?.warnings) && warning.warnings.length === 2);
  });

  it('a row it cannot fully read keeps the GPU with null fields and logs why', async () => {
    const dir = copyScenario('h100-x1');
    writeFileSync(path.join(dir, 'query.txt'), '0, GPU-3a1c9f52-7e0b-4d8a-9c61-2f5e8b0d4a17, NVIDIA H100 80GB HBM3, 81559\n');
    const inventory = await probeFor(dir).poll();
    assert.equal(inventory.gpu_error, null);
    assert.deepEqual(inventory.gpus.map((g) => [g.index, g.uuid, g.name, g.memory_total_mib]), [[0, 'GPU-3a1c9f52-7e0b-4d8a-9c61-2f5e8b0d4a17', null, null]]);
    assert.ok(logLines.some((l) => l.msg === 'nvidia-smi output not understood' && l.level === 40));
  });
});

describe('fake nvidia-smi', () => {
  it('prints a header and units without nounits, which the parser still reads', async () => {
    const fields = ['index', 'uuid', 'memory.total', 'utilization.gpu'];
    const result = await execa(fakeSmi, [`--query-gpu=${fields.join(',')}`, '--format=csv'], { env: { IK_FAKE_SMI: 'h100-x2' } });
    assert.match(result.stdout, /^index, uuid, memory\.total \[MiB\], utilization\.gpu \[%\]\n0, GPU-\S+, 81559 MiB, 0 %/);
    const { rows, warnings } = parseQueryGpuCsv(result.stdout, fields);
    assert.deepEqual(warnings, []);
    assert.deepEqual(rows.map((r) => [r.memory_total_mib, r.utilization_pct]), [[81559, 0], [81559, 100]]);
  });

  it('rejects unknown fields and options like the real tool', async () => {
    const field = await execa(fakeSmi, ['--query-gpu=index,bogus', '--format=csv'], { env: { IK_FAKE_SMI: 'h100-x1' }, reject: false });
    assert.deepEqual([field.exitCode, field.stdout, field.stderr], [2, 'Field "bogus" is not a valid field to query.\n', '']);
    const help = await execa(fakeSmi, ['--help-query-gpu'], { env: { IK_FAKE_SMI: 'old-no-compute-cap' } });
    assert.match(help.stdout, /"mig\.mode\.current"/);
    assert.doesNotMatch(help.stdout, /"compute_cap"/);
  });
});
