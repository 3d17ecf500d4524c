// Pure parsers for nvidia-smi's text outputs (--query-gpu CSV, --version, the plain header, -L) and their merge into a GpuInventory.
import { gpuSchema, type Gpu, type GpuInventory, type MigDevice } from '../../shared/inventory.ts';
import { presentText, readMigMode, readNumber, readVersion } from './nvidia-smi-values.ts';
import type { XmlGpu, XmlInventory } from './nvidia-smi-xml.ts';

export { parseQueryXml, type XmlGpu, type XmlInventory, type XmlMigDevice } from './nvidia-smi-xml.ts';
export { classifyNvidiaSmiFailure, describeUnexpectedOutput, type NvidiaSmiFailure } from './nvidia-smi-errors.ts';
export { isAbsentValue } from './nvidia-smi-values.ts';

/** One GPU as a --query-gpu row reports it; null where the field was absent, not asked for, or not understood. */
export interface QueryGpuRecord {
  index: number | null;
  uuid: string | null;
  name: string | null;
  memory_total_mib: number | null;
  memory_used_mib: number | null;
  memory_free_mib: number | null;
  utilization_pct: number | null;
  temperature_c: number | null;
  driver_version: string | null;
  pci_bus_id: string | null;
  compute_capability: string | null;
  mig_mode: 'enabled' | 'disabled' | null;
  /** Every requested field's cell by field name (absent tokens as null), including fields without a typed slot above. */
  cells: Record<string, string | null>;
}

export interface QueryGpuResult {
  rows: QueryGpuRecord[];
  /** What was not understood, for the caller to log; a warning never loses a GPU whose uuid is readable. */
  warnings: string[];
}

export interface DriverVersions {
  driver_version: string | null;
  cuda_version: string | null;
}

export interface ListedMigDevice {
  device_index: number;
  profile: string;
  uuid: string;
}

export interface ListedGpu {
  index: number;
  name: string;
  uuid: string;
  mig_devices: ListedMigDevice[];
}

type TypedKey = Exclude<keyof QueryGpuRecord, 'cells'>;
type CellKind = 'index' | 'mib' | 'percent' | 'celsius' | 'text' | 'uuid' | 'version' | 'compute-cap' | 'mig-mode';

// Field names as --query-gpu takes them, with the aliases nvidia-smi accepts for the same values.
const fieldSlots: Record<string, { key: TypedKey; kind: CellKind }> = {
  index: { key: 'index', kind: 'index' },
  uuid: { key: 'uuid', kind: 'uuid' },
  gpu_uuid: { key: 'uuid', kind: 'uuid' },
  name: { key: 'name', kind: 'text' },
  gpu_name: { key: 'name', kind: 'text' },
  'memory.total': { key: 'memory_total_mib', kind: 'mib' },
  'memory.used': { key: 'memory_used_mib', kind: 'mib' },
  'memory.free': { key: 'memory_free_mib', kind: 'mib' },
  'utilization.gpu': { key: 'utilization_pct', kind: 'percent' },
  'temperature.gpu': { key: 'temperature_c', kind: 'celsius' },
  driver_version: { key: 'driver_version', kind: 'version' },
  kmd_version: { key: 'driver_version', kind: 'version' },
  'pci.bus_id': { key: 'pci_bus_id', kind: 'text' },
  gpu_bus_id: { key: 'pci_bus_id', kind: 'text' },
  compute_cap: { key: 'compute_capability', kind: 'compute-cap' },
  'mig.mode.current': { key: 'mig_mode', kind: 'mig-mode' },
};

const gpuUuidPattern = /GPU-[0-9a-fA-F][0-9a-fA-F-]*/;

function emptyRecord(): QueryGpuRecord {
  return {
    index: null, uuid: null, name: null, memory_total_mib: null, memory_used_mib: null, memory_free_mib: null,
    utilization_pct: null, temperature_c: null, driver_version: null, pci_bus_id: null, compute_capability: null,
    mig_mode: null, cells: {},
  };
}

// The header that `--format=csv` prints names each field, with units in brackets: `memory.total [MiB]`.
function headerName(cell: string): string {
  return cell.replace(/\s*\[[^\]]*\]\s*$/, '').trim().toLowerCase();
}

function readHeader(cells: string[], fields: readonly string[]): string[] | null {
  const wanted = new Set(fields.map((f) => f.toLowerCase()));
  const names = cells.map(headerName);
  if (names.length !== fields.length || !names.every((n) => wanted.has(n))) return null;
  return names;
}

type CellValue = number | string | 'enabled' | 'disabled' | null;

function readCell(kind: CellKind, cell: string): { value: CellValue; problem?: string } {
  const text = presentText(cell);
  if (text === null) return { value: null };
  const numeric = (min: number, max: number, integer: boolean) => {
    const n = readNumber(text);
    if (n === undefined || n === null || n < min || n > max) return { value: null, problem: 'is not a number in range' };
    return { value: integer ? Math.round(n) : n };
  };
  switch (kind) {
    case 'index':
      return numeric(0, 1_000_000, true);
    case 'mib':
      return numeric(0, Number.MAX_SAFE_INTEGER, true);
    case 'percent':
      return numeric(0, 100, false);
    case 'celsius':
      return numeric(-100, 200, false);
    case 'uuid':
      return /^GPU-[0-9a-fA-F][0-9a-fA-F-]*$/.test(text) && text.length <= 128
        ? { value: text }
        : { value: null, problem: 'is not a GPU uuid' };
    case 'version': {
      const version = readVersion(text);
      return version ? { value: version } : { value: null, problem: 'is not a version' };
    }
    case 'compute-cap':
      return /^\d+\.\d+$/.test(text) ? { value: text } : { value: null, problem: 'is not a compute capability' };
    case 'mig-mode': {
      const mode = readMigMode(text);
      return mode ? { value: mode } : { value: null, problem: 'is not a MIG mode' };
    }
    case 'text':
      return { value: text.slice(0, 256) };
  }
}

function assign(record: QueryGpuRecord, key: TypedKey, value: CellValue): void {
  // Each slot has one kind, so the value read for it has the slot's type.
  (record as unknown as Record<TypedKey, CellValue>)[key] = value;
}

/**
 * Parses `--query-gpu=<fields> --format=csv,noheader,nounits` output for any field list. Tolerates a header
 * line (and then follows its column order) and units in the cells, in case the binary ignored the format flags.
 */
export function parseQueryGpuCsv(output: string, fields: readonly string[]): QueryGpuResult {
  const rows: QueryGpuRecord[] = [];
  const warnings: string[] = [];
  let columns = fields.map((f) => f.toLowerCase());
  const lines = output.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  lines.forEach((line, lineIndex) => {
    const where = `line ${lineIndex + 1}`;
    let cells = line.split(',').map((c) => c.trim());
    const header = readHeader(cells, fields);
    if (header) {
      columns = header;
      return;
    }
    const nameColumn = columns.findIndex((c) => fieldSlots[c]?.key === 'name');
    if (cells.length > columns.length && nameColumn >= 0) {
      // A GPU name with a comma splits into extra cells; glue them back when the rest then lines up.
      const extra = cells.length - columns.length;
      const glued = [...cells.slice(0, nameColumn), cells.slice(nameColumn, nameColumn + extra + 1).join(', '), ...cells.slice(nameColumn + extra + 1)];
      const uuidColumn = columns.findIndex((c) => fieldSlots[c]?.key === 'uuid');
      if (uuidColumn < 0 || gpuUuidPattern.test(glued[uuidColumn] ?? '')) cells = glued;
    }
    if (cells.length !== columns.length) {
      const uuid = gpuUuidPattern.exec(line)?.[0];
      if (uuid) {
        warnings.push(`${where}: ${cells.length} cells where ${columns.length} were asked for; kept ${uuid} with its other fields unknown`);
        rows.push({ ...emptyRecord(), uuid });
      } else {
        warnings.push(`${where}: ${cells.length} cells where ${columns.length} were asked for and no GPU uuid; row dropped: ${line.slice(0, 120)}`);
      }
      return;
    }
    const record = emptyRecord();
    columns.forEach((column, i) => {
      const cell = cells[i] ?? '';
      record.cells[column] = presentText(cell);
      const slot = fieldSlots[column];
      if (!slot) return;
      const { value, problem } = readCell(slot.kind, cell);
      if (problem) warnings.push(`${where}: ${column} '${cell.slice(0, 60)}' ${problem}; left unknown`);
      if (value !== null || record[slot.key] === null) assign(record, slot.key, value);
    });
    rows.push(record);
  });
  return { rows, warnings };
}

/** The field that nvidia-smi rejected (`Field "compute_cap" is not a valid field to query.`), else null. */
export function parseRejectedQueryField(output: string): string | null {
  return /Field\s+"([^"]+)"\s+is not a valid field to query/i.exec(output)?.[1] ?? null;
}

/**
 * Parses `nvidia-smi --version` (and also works on `-q` text). R610 keeps the old keys with a `Deprecated, see …`
 * note in place of the value, so the new keys (KMD version, CUDA UMD version) win and notes never pass for versions.
 */
export function parseVersionOutput(output: string): DriverVersions {
  const values = new Map<string, string>();
  for (const line of output.split(/\r?\n/)) {
    const match = /^\s*([^:]+?)\s*:\s*(.*?)\s*$/.exec(line);
    if (!match?.[1] || match[2] === undefined) continue;
    const key = match[1].toLowerCase().replace(/\s+/g, ' ');
    if (!values.has(key)) values.set(key, match[2]);
  }
  return {
    driver_version: readVersion(values.get('kmd version')) ?? readVersion(values.get('driver version')),
    cuda_version: readVersion(values.get('cuda umd version')) ?? readVersion(values.get('cuda version')),
  };
}

/** Parses the plain `nvidia-smi` table's header: `Driver Version: X  CUDA Version: Y`, or R610's `KMD Version:` / `CUDA UMD Version:`. */
export function parsePlainHeader(output: string): DriverVersions {
  const after = (label: string) => readVersion(new RegExp(`\\b${label}:\\s*(\\S+)`, 'i').exec(output)?.[1]);
  return {
    driver_version: after('KMD Version') ?? after('Driver Version'),
    cuda_version: after('CUDA UMD Version') ?? after('CUDA Version'),
  };
}

/** Parses `nvidia-smi -L`: GPUs with their uuids, and under a MIG-enabled GPU its MIG devices with profile and uuid. */
export function parseListOutput(output: string): { gpus: ListedGpu[]; warnings: string[] } {
  const gpus: ListedGpu[] = [];
  const warnings: string[] = [];
  for (const [i, raw] of output.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '') continue;
    const gpu = /^GPU\s+(\d+):\s*(.*?)\s*\(UUID:\s*(GPU-[^)\s]+)\s*\)/.exec(line);
    if (gpu?.[1] && gpu[3]) {
      gpus.push({ index: Number(gpu[1]), name: gpu[2] ?? '', uuid: gpu[3], mig_devices: [] });
      continue;
    }
    // Profiles vary (`3g.40gb`, `1g.10gb+me`, `1c.3g.40gb`), and R450-era MIG uuids look like `MIG-GPU-…/1/0`.
    const mig = /^MIG\s+(\S+)\s+Device\s+(\d+):\s*\(UUID:\s*(MIG-[^)\s]+)\s*\)/.exec(line);
    const owner = gpus.at(-1);
    if (mig?.[1] && mig[2] && mig[3] && owner) {
      owner.mig_devices.push({ profile: mig[1], device_index: Number(mig[2]), uuid: mig[3] });
      continue;
    }
    warnings.push(`-L line ${i + 1} not understood: ${line.slice(0, 120)}`);
  }
  return { gpus, warnings };
}

/**
 * VRAM of a MIG device from its profile name, for when `-q -x` did not say: `3g.40gb` → 40 × 1024 MiB.
 * An estimate: the profile's nominal size is a little above what the device really has (3g.40gb has 40448 MiB).
 */
export function estimateMigMemoryMib(profile: string | null): number | null {
  const gb = profile ? /(\d+)gb(?:\+\w+)?$/i.exec(profile)?.[1] : undefined;
  return gb ? Number(gb) * 1024 : null;
}

export interface InventoryParts {
  rows: readonly QueryGpuRecord[];
  versions: DriverVersions;
  /** `-L`, asked only when a GPU has MIG enabled; null when not asked or when it failed. */
  list: readonly ListedGpu[] | null;
  /** `-q -x`, null when not asked or when it failed. */
  xml: XmlInventory | null;
  /** MIG devices last seen per GPU uuid, used when `-L` could not be read this time. */
  previousMigDevices?: ReadonlyMap<string, MigDevice[]>;
}

function migDevicesOf(gpu: { uuid: string; mig_mode: string | null }, parts: InventoryParts, xmlGpu: XmlGpu | undefined): MigDevice[] {
  if (gpu.mig_mode !== 'enabled') return [];
  if (!parts.list) return parts.previousMigDevices?.get(gpu.uuid) ?? [];
  const listed = parts.list.find((l) => l.uuid === gpu.uuid);
  return (listed?.mig_devices ?? []).slice(0, 64).map((device) => {
    const fromXml = xmlGpu?.mig_devices.find((m) => m.index === device.device_index);
    return {
      uuid: device.uuid.slice(0, 128),
      profile: device.profile.slice(0, 64),
      memory_total_mib: fromXml?.memory_total_mib ?? estimateMigMemoryMib(device.profile),
    };
  });
}

/**
 * Merges one poll's outputs into the GPU part of an inventory: GPUs sorted by index, MIG devices joined by GPU
 * uuid then device index (profile and uuid from -L, VRAM from -q -x). The result always satisfies gpuSchema.
 */
export function buildGpuInventory(parts: InventoryParts): { inventory: GpuInventory; warnings: string[] } {
  const warnings: string[] = [];
  const seen = new Set<string>();
  const kept: QueryGpuRecord[] = [];
  for (const row of parts.rows) {
    if (row.uuid === null) {
      warnings.push(`a GPU row without a readable uuid was left out (index ${row.index ?? 'unknown'})`);
    } else if (seen.has(row.uuid)) {
      warnings.push(`GPU ${row.uuid} appeared twice; the second row was left out`);
    } else {
      seen.add(row.uuid);
      kept.push(row);
    }
  }
  // A row whose index could not be read still needs one: nvidia-smi prints rows in index order, so take the
  // row's position, moved up past indexes that other rows claim.
  const taken = new Set(kept.flatMap((r) => (r.index === null ? [] : [r.index])));
  const gpus: Gpu[] = [];
  kept.forEach((row, position) => {
    let index = row.index;
    if (index === null) {
      index = position;
      while (taken.has(index)) index += 1;
      taken.add(index);
    }
    const uuid = row.uuid ?? '';
    const xmlGpu = parts.xml?.gpus.find((g) => g.uuid === uuid);
    const mig_mode = row.mig_mode ?? xmlGpu?.mig_mode ?? null;
    const gpu: Gpu = {
      index,
      uuid,
      name: row.name ?? xmlGpu?.name ?? null,
      memory_total_mib: row.memory_total_mib,
      memory_used_mib: row.memory_used_mib,
      memory_free_mib: row.memory_free_mib,
      utilization_pct: row.utilization_pct,
      temperature_c: row.temperature_c,
      compute_capability: row.compute_capability?.slice(0, 16) ?? null,
      pci_bus_id: (row.pci_bus_id ?? xmlGpu?.pci_bus_id ?? null)?.slice(0, 64) ?? null,
      mig_mode,
      mig_devices: migDevicesOf({ uuid, mig_mode }, parts, xmlGpu),
    };
    const checked = gpuSchema.safeParse(gpu);
    if (checked.success) gpus.push(checked.data);
    else warnings.push(`GPU ${uuid} left out: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  });
  gpus.sort((a, b) => a.index - b.index);
  if (gpus.length > 64) warnings.push(`${gpus.length} GPUs reported; only the first 64 are kept`);
  const queryDriver = parts.rows.find((r) => r.driver_version !== null)?.driver_version ?? null;
  return {
    inventory: {
      gpu_driver_version: parts.versions.driver_version ?? queryDriver ?? parts.xml?.driver_version ?? null,
      cuda_version: parts.versions.cuda_version ?? parts.xml?.cuda_version ?? null,
      gpu_error: null,
      gpus: gpus.slice(0, 64),
    },
    warnings,
  };
}
