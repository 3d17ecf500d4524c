// Pure parser tests: nvidia-smi fixture files and inline outputs in, inventory fields and warnings out.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { gpuSchema } from '../../../shared/inventory.ts';
import {
  buildGpuInventory,
  classifyNvidiaSmiFailure,
  describeUnexpectedOutput,
  estimateMigMemoryMib,
  isAbsentValue,
  parseListOutput,
  parsePlainHeader,
  parseQueryGpuCsv,
  parseQueryXml,
  parseRejectedQueryField,
  parseVersionOutput,
  type QueryGpuRecord,
} from '../../../agent/inventory/nvidia-smi-parse.ts';

const fixturesDir = new URL('../../fixtures/nvidia-smi/', import.meta.url);
const fixture = (scenario: string, file: string) => readFileSync(new URL(`${scenario}/${file}`, fixturesDir), 'utf8');

const fields = [
  'index', 'uuid', 'name', 'memory.total', 'memory.used', 'memory.free', 'utilization.gpu',
  'temperature.gpu', 'driver_version', 'pci.bus_id', 'compute_cap', 'mig.mode.current',
];

/** A scenario's query.csv as nvidia-smi prints it with noheader,nounits: its rows, without header and comments. */
function queryRows(scenario: string): string {
  const lines = fixture(scenario, 'query.csv').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
  assert.equal(lines[0]?.split(', ').join(','), fields.join(','), `${scenario}/query.csv header lists the probe's fields`);
  return lines.slice(1).join('\n');
}

const noVersions = { driver_version: null, cuda_version: null };

describe('parseQueryGpuCsv', () => {
  it('reads one H100 row into typed fields', () => {
    const { rows, warnings } = parseQueryGpuCsv(queryRows('h100-x1'), fields);
    assert.deepEqual(warnings, []);
    assert.equal(rows.length, 1);
    const { cells, ...typed } = rows[0] as QueryGpuRecord;
    assert.deepEqual(typed, {
      index: 0, uuid: 'GPU-3a1c9f52-7e0b-4d8a-9c61-2f5e8b0d4a17', name: 'NVIDIA H100 80GB HBM3',
      memory_total_mib: 81559, memory_used_mib: 0, memory_free_mib: 81081, utilization_pct: 0, temperature_c: 41,
      driver_version: '590.48.01', pci_bus_id: '00000000:00:09.0', compute_capability: '9.0', mig_mode: 'disabled',
    });
    assert.equal(cells['compute_cap'], '9.0');
  });

  it('reads every GPU of a multi-GPU box with its own usage', () => {
    const two = parseQueryGpuCsv(queryRows('h100-x2'), fields);
    assert.deepEqual(two.rows.map((r) => [r.index, r.memory_used_mib, r.memory_free_mib, r.utilization_pct, r.temperature_c]), [
      [0, 0, 81081, 0, 41],
      [1, 19818, 61263, 100, 59],
    ]);
    const four = parseQueryGpuCsv(queryRows('l4-x4'), fields);
    assert.equal(new Set(four.rows.map((r) => r.uuid)).size, 4);
    assert.deepEqual(four.rows.map((r) => r.utilization_pct), [0, 87, 41, 100]);
  });

  it('turns every absent-value token into null, never 0, without warnings', () => {
    const { rows, warnings } = parseQueryGpuCsv(queryRows('mixed-absent'), fields);
    assert.deepEqual(warnings, []);
    const [a, b, c] = rows;
    assert.equal(a?.utilization_pct, null); // [N/A]
    assert.equal(a?.temperature_c, null); // [Unknown Error]
    assert.equal(b?.memory_used_mib, null); // [Insufficient Permissions]
    assert.equal(b?.memory_free_mib, null); // bare N/A
    assert.equal(b?.utilization_pct, null); // [Not Supported]
    assert.equal(b?.compute_capability, null); // [Requested functionality has been deprecated]
    assert.equal(b?.mig_mode, null); // [N/A]
    assert.equal(c?.name, null); // empty cell
    assert.equal(c?.memory_free_mib, null); // [GPU requires reset]
    assert.equal(c?.pci_bus_id, null); // N/A
    assert.equal(c?.memory_used_mib, 12);
    for (const token of ['[N/A]', 'N/A', '[Not Supported]', '[Unknown Error]', '[Insufficient Permissions]',
      '[Requested functionality has been deprecated]', '[GPU requires reset]', '', '  ', '[Some Future Reason]']) {
      assert.equal(isAbsentValue(token), true, `'${token}' is absent`);
    }
    assert.equal(isAbsentValue('0'), false);
  });

  it('keeps unified-memory GPUs with unknown memory', () => {
    const { rows, warnings } = parseQueryGpuCsv(queryRows('unified-memory'), fields);
    assert.deepEqual(warnings, []);
    assert.deepEqual([rows[0]?.memory_total_mib, rows[0]?.memory_used_mib, rows[0]?.memory_free_mib], [null, null, null]);
    assert.equal(rows[0]?.compute_capability, '12.1');
  });

  it('leaves a non-numeric or out-of-range cell unknown and says so', () => {
    const line = '0, GPU-aa11bb22-0000-4000-8000-000000000001, NVIDIA L4, 23034MB!, 12, 22564, 140, hot, 570.1, 00000000:38:00.0, 8.9, Maybe';
    const { rows, warnings } = parseQueryGpuCsv(line, fields);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.memory_total_mib, null);
    assert.equal(rows[0]?.utilization_pct, null);
    assert.equal(rows[0]?.temperature_c, null);
    assert.equal(rows[0]?.mig_mode, null);
    assert.equal(rows[0]?.memory_used_mib, 12);
    assert.equal(warnings.length, 4);
    assert.match(warnings.join('\n'), /memory\.total '23034MB!'/);
    assert.match(warnings.join('\n'), /temperature\.gpu 'hot'/);
  });

  it('keeps a row with the wrong cell count when it names a GPU uuid, and drops it otherwise', () => {
    const text = [
      '0, GPU-aa11bb22-0000-4000-8000-000000000001, NVIDIA L4, 23034',
      'WARNING: infoROM is corrupted at gpu 0000:38:00.0',
      queryRows('h100-x1').replace(/^0, /, '1, '),
    ].join('\n');
    const { rows, warnings } = parseQueryGpuCsv(text, fields);
    assert.deepEqual(rows.map((r) => r.uuid), ['GPU-aa11bb22-0000-4000-8000-000000000001', 'GPU-3a1c9f52-7e0b-4d8a-9c61-2f5e8b0d4a17']);
    assert.deepEqual([rows[0]?.index, rows[0]?.name, rows[0]?.memory_total_mib], [null, null, null]);
    assert.equal(rows[1]?.memory_total_mib, 81559);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0] ?? '', /kept GPU-aa11bb22/);
    assert.match(warnings[1] ?? '', /row dropped: WARNING: infoROM/);
  });

  it('glues a GPU name that contains a comma back together', () => {
    const line = '0, GPU-aa11bb22-0000-4000-8000-000000000001, Accelerator, Rev B, 1024, 0, 1000, 0, 30, 590.48.01, 00000000:01:00.0, 9.0, Disabled';
    const { rows, warnings } = parseQueryGpuCsv(line, fields);
    assert.deepEqual(warnings, []);
    assert.equal(rows[0]?.name, 'Accelerator, Rev B');
    assert.equal(rows[0]?.memory_total_mib, 1024);
  });

  it('tolerates a header line and units, following the header column order', () => {
    const asked = ['index', 'uuid', 'memory.total', 'utilization.gpu', 'temperature.gpu'];
    const text = [
      'uuid, index, memory.total [MiB], utilization.gpu [%], temperature.gpu',
      'GPU-aa11bb22-0000-4000-8000-000000000001, 0, 81559 MiB, 41 %, 40',
      'GPU-aa11bb22-0000-4000-8000-000000000002, 1, [N/A], [N/A], 39',
    ].join('\n');
    const { rows, warnings } = parseQueryGpuCsv(text, asked);
    assert.deepEqual(warnings, []);
    assert.deepEqual(rows.map((r) => [r.index, r.uuid, r.memory_total_mib, r.utilization_pct, r.temperature_c]), [
      [0, 'GPU-aa11bb22-0000-4000-8000-000000000001', 81559, 41, 40],
      [1, 'GPU-aa11bb22-0000-4000-8000-000000000002', null, null, 39],
    ]);
  });

  it('finds no GPU in output it has never seen, and says why', () => {
    const { rows, warnings } = parseQueryGpuCsv(fixture('garbage', 'query.txt'), fields);
    assert.deepEqual(rows, []);
    assert.equal(warnings.length, 2);
  });

  it('names the field an old binary rejects', () => {
    assert.equal(parseRejectedQueryField('Field "compute_cap" is not a valid field to query.\n\n'), 'compute_cap');
    assert.equal(parseRejectedQueryField('No devices were found'), null);
  });
});

describe('parseVersionOutput', () => {
  it('reads the old wording', () => {
    assert.deepEqual(parseVersionOutput(fixture('h100-x1', 'version.txt')), { driver_version: '590.48.01', cuda_version: '13.1' });
  });

  it('reads R610 from the KMD and CUDA UMD keys, never from a Deprecated note', () => {
    assert.deepEqual(parseVersionOutput(fixture('l40s-r610', 'version.txt')), { driver_version: '610.57.04', cuda_version: '13.3' });
    const onlyDeprecated = 'DRIVER version      : Deprecated, see "KMD version" instead\nCUDA version        : Deprecated, see "CUDA UMD version" instead\n';
    assert.deepEqual(parseVersionOutput(onlyDeprecated), noVersions);
    // -q text keeps a version before its note.
    assert.deepEqual(parseVersionOutput(fixture('l40s-r610', 'query-text.txt')), { driver_version: '610.57.04', cuda_version: '13.3' });
  });

  it('gives nulls for output without versions', () => {
    assert.deepEqual(parseVersionOutput(fixture('garbage', 'version.txt')), noVersions);
    assert.deepEqual(parseVersionOutput("ERROR: Option --version is not recognized. Please run 'nvidia-smi -h'."), noVersions);
  });
});

describe('parsePlainHeader', () => {
  it('reads Driver Version and CUDA Version, R470 to R590', () => {
    assert.deepEqual(parsePlainHeader(fixture('h100-x1', 'plain.txt')), { driver_version: '590.48.01', cuda_version: '13.1' });
    assert.deepEqual(parsePlainHeader(fixture('old-no-compute-cap', 'plain.txt')), { driver_version: '470.256.02', cuda_version: '11.4' });
  });

  it("reads R610's KMD Version and CUDA UMD Version", () => {
    assert.deepEqual(parsePlainHeader(fixture('l40s-r610', 'plain.txt')), { driver_version: '610.57.04', cuda_version: '13.3' });
  });

  it('gives null for N/A and for a page without a header', () => {
    assert.deepEqual(parsePlainHeader('| NVIDIA-SMI 535.54   Driver Version: 535.54.03   CUDA Version: N/A |'), { driver_version: '535.54.03', cuda_version: null });
    assert.deepEqual(parsePlainHeader(fixture('garbage', 'plain.txt')), noVersions);
  });
});

describe('parseQueryXml', () => {
  it('reads versions, GPU identity and MIG devices with their frame-buffer size (not BAR1)', () => {
    const xml = parseQueryXml(fixture('a100-mig', 'query.xml'));
    assert.deepEqual(xml.warnings, []);
    assert.equal(xml.driver_version, '510.47.03');
    assert.equal(xml.cuda_version, '11.6');
    assert.deepEqual(xml.gpus, [{
      uuid: 'GPU-27b94a00-7c1e-4f5d-b2a8-1054085de32a', name: 'NVIDIA A100-SXM4-40GB', pci_bus_id: '00000000:00:04.0',
      mig_mode: 'enabled', memory_total_mib: 40960,
      mig_devices: [{ index: 0, memory_total_mib: 19968, uuid: null }, { index: 1, memory_total_mib: 19968, uuid: null }],
    }]);
  });

  it('reads <mig_devices>None</mig_devices> and MIG N/A as no MIG', () => {
    const xml = parseQueryXml(fixture('rtx4080-x1', 'query.xml'));
    assert.deepEqual(xml.warnings, []);
    assert.equal(xml.gpus[0]?.mig_mode, null);
    assert.deepEqual(xml.gpus[0]?.mig_devices, []);
    assert.equal(xml.gpus[0]?.memory_total_mib, 16376);
  });

  it('prefers R610 kmd_version and cuda_umd_version', () => {
    const xml = parseQueryXml(fixture('l40s-r610', 'query.xml').replace('<driver_version>610.57.04', '<driver_version>Deprecated'));
    assert.deepEqual([xml.driver_version, xml.cuda_version], ['610.57.04', '13.3']);
  });

  it('copes with drifted element names, entities, comments and self-closing tags', () => {
    const xml = parseQueryXml(`<?xml version="1.0"?><!-- drift --><nvidia_smi_log><driver_version>999.1</driver_version>
      <gpu id="0000:17:00.0"><name>Acme &amp; Co &#x41;1</name><uuid>GPU-aa11bb22-0000-4000-8000-000000000001</uuid>
      <mig_mode><current>Enabled</current></mig_mode><extra/><mig_devices><mig_device><device_index>2</device_index>
      <memory_usage><total>4864 MiB</total></memory_usage></mig_device></mig_devices></gpu></nvidia_smi_log>`);
    assert.deepEqual(xml.warnings, []);
    assert.equal(xml.cuda_version, null);
    assert.deepEqual(xml.gpus[0], {
      uuid: 'GPU-aa11bb22-0000-4000-8000-000000000001', name: 'Acme & Co A1', pci_bus_id: '0000:17:00.0', mig_mode: 'enabled',
      memory_total_mib: null, mig_devices: [{ index: 2, memory_total_mib: 4864, uuid: null }],
    });
  });

  it('never throws on broken XML, and says what is missing', () => {
    for (const text of [fixture('garbage', 'query.xml'), '', '<<<>>>', '<gpu><uuid>GPU-1</uuid>']) {
      const xml = parseQueryXml(text);
      assert.deepEqual(xml.gpus, []);
      assert.ok(xml.warnings.length > 0);
    }
  });
});

describe('parseListOutput', () => {
  it('reads GPUs and their MIG devices with profile, device index and uuid', () => {
    const { gpus, warnings } = parseListOutput(fixture('h100-mig', 'list.txt'));
    assert.deepEqual(warnings, []);
    assert.deepEqual(gpus.map((g) => [g.index, g.uuid, g.mig_devices.length]), [
      [0, 'GPU-c7e21d94-3b58-4a0f-9e16-8d4b2a7f5c03', 4],
      [1, 'GPU-1e8a4f37-6c92-4d0b-a573-0f9c2e6b8d41', 0],
    ]);
    assert.deepEqual(gpus[0]?.mig_devices.map((m) => [m.profile, m.device_index]), [['3g.40gb', 0], ['2g.20gb', 1], ['1g.10gb', 2], ['1g.10gb', 3]]);
    assert.equal(gpus[0]?.mig_devices[0]?.uuid, 'MIG-0a6f3e21-5b7c-5d84-9e02-3c1f7a8b6d90');
  });

  it('reads R450-era MIG uuids and reports lines it does not know', () => {
    const { gpus, warnings } = parseListOutput([
      'GPU 0: A100-SXM4-40GB (UUID: GPU-aa11bb22-0000-4000-8000-000000000001)',
      '  MIG 1g.5gb Device 0: (UUID: MIG-GPU-aa11bb22-0000-4000-8000-000000000001/7/0)',
      'something else',
    ].join('\n'));
    assert.equal(gpus[0]?.mig_devices[0]?.uuid, 'MIG-GPU-aa11bb22-0000-4000-8000-000000000001/7/0');
    assert.equal(warnings.length, 1);
  });
});

describe('buildGpuInventory', () => {
  it('joins MIG devices by GPU uuid and device index: profile and uuid from -L, memory from -q -x', () => {
    const rows = parseQueryGpuCsv(queryRows('h100-mig'), fields).rows;
    const list = parseListOutput(fixture('h100-mig', 'list.txt')).gpus;
    const xml = parseQueryXml(fixture('h100-mig', 'query.xml'));
    // Device order in -q -x must not matter: reverse it.
    xml.gpus[0]?.mig_devices.reverse();
    const { inventory, warnings } = buildGpuInventory({ rows, versions: parseVersionOutput(fixture('h100-mig', 'version.txt')), list, xml });
    assert.deepEqual(warnings, []);
    assert.equal(inventory.gpu_driver_version, '590.48.01');
    assert.equal(inventory.cuda_version, '13.1');
    const [mig, plain] = inventory.gpus;
    assert.equal(mig?.mig_mode, 'enabled');
    assert.equal(mig?.utilization_pct, null);
    assert.deepEqual(mig?.mig_devices, [
      { uuid: 'MIG-0a6f3e21-5b7c-5d84-9e02-3c1f7a8b6d90', profile: '3g.40gb', memory_total_mib: 40448 },
      { uuid: 'MIG-1b7a4f32-6c8d-5e95-af13-4d2a8b9c7ea1', profile: '2g.20gb', memory_total_mib: 20096 },
      { uuid: 'MIG-2c8b5a43-7d9e-5fa6-b024-5e3b9cad8fb2', profile: '1g.10gb', memory_total_mib: 9984 },
      { uuid: 'MIG-3d9c6b54-8eaf-50b7-c135-6f4cadbe90c3', profile: '1g.10gb', memory_total_mib: 9984 },
    ]);
    assert.equal(plain?.mig_mode, 'disabled');
    assert.deepEqual(plain?.mig_devices, []);
  });

  it('estimates MIG memory from the profile when -q -x gave none', () => {
    const rows = parseQueryGpuCsv(queryRows('h100-mig'), fields).rows;
    const list = parseListOutput(fixture('h100-mig', 'list.txt')).gpus;
    const { inventory } = buildGpuInventory({ rows, versions: noVersions, list, xml: null });
    assert.deepEqual(inventory.gpus[0]?.mig_devices.map((m) => m.memory_total_mib), [40960, 20480, 10240, 10240]);
    assert.equal(inventory.gpu_driver_version, '590.48.01', 'falls back to the query driver_version');
    assert.equal(estimateMigMemoryMib('1g.10gb+me'), 10240);
    assert.equal(estimateMigMemoryMib('7g.80gb'), 81920);
    assert.equal(estimateMigMemoryMib('odd'), null);
  });

  it('sorts by index, fills a missing index, drops rows without uuid and duplicates', () => {
    const text = [
      '3, GPU-aa11bb22-0000-4000-8000-000000000003, NVIDIA L4, 23034, 0, 22564, 0, 30, 570.1, 00000000:3E:00.0, 8.9, [N/A]',
      '0, GPU-aa11bb22-0000-4000-8000-000000000000, NVIDIA L4, 23034, 0, 22564, 0, 30, 570.1, 00000000:38:00.0, 8.9, [N/A]',
      '[N/A], GPU-aa11bb22-0000-4000-8000-000000000001, NVIDIA L4, 23034, 0, 22564, 0, 30, 570.1, 00000000:3A:00.0, 8.9, [N/A]',
      '2, [N/A], NVIDIA L4, 23034, 0, 22564, 0, 30, 570.1, 00000000:3C:00.0, 8.9, [N/A]',
      '4, GPU-aa11bb22-0000-4000-8000-000000000000, NVIDIA L4, 23034, 0, 22564, 0, 30, 570.1, 00000000:40:00.0, 8.9, [N/A]',
    ].join('\n');
    const { inventory, warnings } = buildGpuInventory({ rows: parseQueryGpuCsv(text, fields).rows, versions: noVersions, list: null, xml: null });
    assert.deepEqual(inventory.gpus.map((g) => [g.index, g.uuid.slice(-1)]), [[0, '0'], [2, '1'], [3, '3']]);
    assert.equal(warnings.length, 2);
    for (const gpu of inventory.gpus) assert.equal(gpuSchema.safeParse(gpu).success, true);
  });

  it('produces schema-valid GPUs from every fixture', () => {
    for (const scenario of ['h100-x1', 'h100-x2', 'h100-mig', 'a100-mig', 'l40s-r610', 'rtx4080-x1', 'l4-x4', 'mixed-absent', 'unified-memory']) {
      const { inventory } = buildGpuInventory({ rows: parseQueryGpuCsv(queryRows(scenario), fields).rows, versions: noVersions, list: null, xml: null });
      assert.ok(inventory.gpus.length > 0, scenario);
      for (const gpu of inventory.gpus) assert.equal(gpuSchema.safeParse(gpu).success, true, `${scenario} ${gpu.uuid}`);
    }
  });
});

describe('classifyNvidiaSmiFailure', () => {
  const failure = { binary: '/usr/bin/nvidia-smi', args: ['-L'], exitCode: 0, stdout: '', stderr: '', timedOut: false, timeoutMs: 10000 };

  it('names the failure and what the operator should do', () => {
    const cases: Array<[Partial<typeof failure> & { spawnErrorCode?: string }, string, RegExp]> = [
      [{ exitCode: 9, stdout: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." }, 'DRIVER_NOT_LOADED', /modprobe nvidia/],
      [{ exitCode: 18, stdout: 'Failed to initialize NVML: Driver/library version mismatch' }, 'DRIVER_MISMATCH', /reboot/],
      [{ exitCode: 255, stderr: 'Failed to initialize NVML: Driver/library version mismatch' }, 'DRIVER_MISMATCH', /reboot/],
      [{ exitCode: undefined, spawnErrorCode: 'ENOENT' }, 'NVIDIA_SMI_MISSING', /not found at '\/usr\/bin\/nvidia-smi': install the NVIDIA driver or set IK_NVIDIA_SMI/],
      [{ exitCode: undefined, spawnErrorCode: 'EACCES' }, 'NVIDIA_SMI_FAILED', /EACCES/],
      [{ exitCode: undefined, timedOut: true }, 'NVIDIA_SMI_TIMEOUT', /within 10000 ms/],
      [{ exitCode: 6, stdout: 'No devices were found' }, 'NO_DEVICES', /visible/],
      [{ exitCode: 2, stdout: 'Field "index" is not a valid field to query.' }, 'NVIDIA_SMI_FAILED', /'index'.*update the NVIDIA driver/],
      [{ exitCode: 3, stderr: 'Unknown Error' }, 'NVIDIA_SMI_FAILED', /exited with 3: "Unknown Error"/],
    ];
    for (const [overrides, code, message] of cases) {
      const error = classifyNvidiaSmiFailure({ ...failure, ...overrides });
      assert.equal(error.code, code, JSON.stringify(overrides));
      assert.match(error.message, message);
    }
  });

  it('describes output it cannot read', () => {
    const error = describeUnexpectedOutput('nvidia-smi', ['-L'], fixture('garbage', 'query.txt'));
    assert.equal(error.code, 'NVIDIA_SMI_UNEXPECTED_OUTPUT');
    assert.match(error.message, /does not understand: "\{"gpus"/);
  });
});
