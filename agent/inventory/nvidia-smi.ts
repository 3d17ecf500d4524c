// Polls nvidia-smi through execa, always under a timeout, and turns its outputs into the agent's GpuInventory.
import { execa } from 'execa';
import type { Gpu, GpuError, GpuInventory, MigDevice } from '../../shared/inventory.ts';
import type { Logger } from '../../shared/logger.ts';
import {
  buildGpuInventory,
  classifyNvidiaSmiFailure,
  describeUnexpectedOutput,
  parseListOutput,
  parsePlainHeader,
  parseQueryGpuCsv,
  parseQueryXml,
  parseRejectedQueryField,
  parseVersionOutput,
  type DriverVersions,
  type ListedGpu,
  type NvidiaSmiFailure,
  type QueryGpuRecord,
  type XmlInventory,
} from './nvidia-smi-parse.ts';

export interface NvidiaSmiProbeOptions {
  /** Path or name of nvidia-smi (IK_NVIDIA_SMI). */
  binary: string;
  /** Limit for each call; the agent passes 10000 (busy nodes take seconds to answer). */
  timeoutMs: number;
  log: Logger;
  /** Variables added to the agent's own environment for nvidia-smi; tests select a fake scenario with it. */
  env?: Readonly<Record<string, string>>;
}

export interface NvidiaSmiProbe {
  /** One inventory sample. Never throws: failures come back as `gpu_error`. Concurrent calls share one run. */
  poll(): Promise<GpuInventory>;
}

const requiredFields = [
  'index', 'uuid', 'name', 'memory.total', 'memory.used', 'memory.free',
  'utilization.gpu', 'temperature.gpu', 'driver_version', 'pci.bus_id',
] as const;
// Fields that older nvidia-smi binaries reject (exit 2); the probe drops one for good once it is rejected.
const optionalFields = ['compute_cap', 'mig.mode.current'] as const;

// After the timeout's SIGTERM, how long nvidia-smi gets before SIGKILL.
const forceKillAfterMs = 2000;
// A process stuck in the kernel survives even SIGKILL; past this margin the poll stops waiting for it.
const abandonAfterKillMs = 1000;

type CallOutcome = { ok: true; stdout: string } | { ok: false; failure: NvidiaSmiFailure };

/** Ends a poll cycle early: a timed-out call means the rest of the cycle is skipped. */
class CycleTimeout {
  constructor(readonly failure: NvidiaSmiFailure) {}
}

interface CachedVersions {
  /** driver_version as --query-gpu printed it when the versions were looked up; a change asks again. */
  queryDriver: string | null;
  versions: DriverVersions;
}

export function createNvidiaSmiProbe(opts: NvidiaSmiProbeOptions): NvidiaSmiProbe {
  const { binary, timeoutMs, log } = opts;
  // execa reads a timeout of 0 as "none", and nvidia-smi can hang: refuse to run without one.
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`nvidia-smi timeout must be a positive number of ms, got ${timeoutMs}`);
  const rejectedFields = new Set<string>();
  let versionCache: CachedVersions | null = null;
  let lastGood: GpuInventory | null = null;
  let inFlight: Promise<GpuInventory> | null = null;

  async function call(args: string[]): Promise<CallOutcome> {
    const subprocess = execa(binary, args, {
      timeout: timeoutMs,
      forceKillAfterDelay: forceKillAfterMs,
      reject: false,
      stdin: 'ignore',
      maxBuffer: 16 * 1024 * 1024,
      ...(opts.env ? { env: opts.env } : {}),
    });
    let guard: NodeJS.Timeout | undefined;
    const abandoned = new Promise<'abandoned'>((resolve) => {
      guard = setTimeout(() => resolve('abandoned'), timeoutMs + forceKillAfterMs + abandonAfterKillMs);
    });
    const result = await Promise.race([subprocess, abandoned]).finally(() => clearTimeout(guard));
    const base = { binary, args, timeoutMs };
    if (result === 'abandoned') {
      log.error({ args, pid: subprocess.pid }, 'nvidia-smi survived SIGKILL; no longer waiting for it');
      return { ok: false, failure: { ...base, exitCode: undefined, stdout: '', stderr: '', timedOut: true } };
    }
    const stdout = typeof result.stdout === 'string' ? result.stdout : '';
    const stderr = typeof result.stderr === 'string' ? result.stderr : '';
    if (!result.failed) return { ok: true, stdout };
    // execa also sets `code` for failures after the start (e.g. output over maxBuffer); only a process that
    // never ran, with no exit code and no signal, failed to spawn.
    const spawnErrorCode = result.exitCode === undefined && result.signal === undefined ? result.code : undefined;
    return {
      ok: false,
      failure: { ...base, exitCode: result.exitCode, stdout, stderr, spawnErrorCode, signal: result.signal, timedOut: result.timedOut },
    };
  }

  // Like call(), but a timeout ends the cycle.
  async function mustAnswer(args: string[]): Promise<CallOutcome> {
    const outcome = await call(args);
    if (!outcome.ok && outcome.failure.timedOut) throw new CycleTimeout(outcome.failure);
    return outcome;
  }

  function warnIfAny(warnings: string[], args: readonly string[]): void {
    if (warnings.length > 0) log.warn({ warnings, args }, 'nvidia-smi output not understood');
  }

  async function queryGpus(): Promise<{ outcome: CallOutcome; fields: string[]; args: string[] }> {
    for (;;) {
      const fields = [...requiredFields, ...optionalFields.filter((f) => !rejectedFields.has(f))];
      const args = [`--query-gpu=${fields.join(',')}`, '--format=csv,noheader,nounits'];
      const outcome = await mustAnswer(args);
      if (outcome.ok) return { outcome, fields, args };
      const rejected = parseRejectedQueryField(`${outcome.failure.stdout}\n${outcome.failure.stderr}`);
      const optional: readonly string[] = optionalFields;
      if (rejected === null || !optional.includes(rejected) || rejectedFields.has(rejected)) return { outcome, fields, args };
      rejectedFields.add(rejected);
      log.info({ field: rejected }, 'nvidia-smi does not know a query field; asking without it from now on');
    }
  }

  // --version is cheapest; old binaries lack it, and some outputs lack a CUDA version, hence the fallbacks.
  async function lookUpVersions(): Promise<{ versions: DriverVersions | null; xml: XmlInventory | null }> {
    let driver: string | null = null;
    let cuda: string | null = null;
    let answered = false;
    let xml: XmlInventory | null = null;
    const version = await mustAnswer(['--version']);
    if (version.ok) {
      answered = true;
      ({ driver_version: driver, cuda_version: cuda } = parseVersionOutput(version.stdout));
    }
    if (cuda === null) {
      const plain = await mustAnswer([]);
      if (plain.ok) {
        answered = true;
        const header = parsePlainHeader(plain.stdout);
        driver ??= header.driver_version;
        cuda = header.cuda_version;
      }
    }
    if (cuda === null) {
      const full = await mustAnswer(['-q', '-x']);
      if (full.ok) {
        answered = true;
        xml = parseQueryXml(full.stdout);
        warnIfAny(xml.warnings, ['-q', '-x']);
        driver ??= xml.driver_version;
        cuda = xml.cuda_version;
      }
    }
    if (cuda === null) log.warn({ binary }, 'nvidia-smi did not tell the CUDA version');
    return { versions: answered ? { driver_version: driver, cuda_version: cuda } : null, xml };
  }

  async function readMig(xmlSoFar: XmlInventory | null): Promise<{ list: ListedGpu[] | null; xml: XmlInventory | null }> {
    let list: ListedGpu[] | null = null;
    const listed = await mustAnswer(['-L']);
    if (listed.ok) {
      const parsed = parseListOutput(listed.stdout);
      warnIfAny(parsed.warnings, ['-L']);
      list = parsed.gpus;
    } else {
      log.warn({ error: classifyNvidiaSmiFailure(listed.failure) }, 'nvidia-smi -L failed; MIG devices kept from the last poll');
    }
    let xml = xmlSoFar;
    if (!xml) {
      const full = await mustAnswer(['-q', '-x']);
      if (full.ok) {
        xml = parseQueryXml(full.stdout);
        warnIfAny(xml.warnings, ['-q', '-x']);
      } else {
        log.warn({ error: classifyNvidiaSmiFailure(full.failure) }, 'nvidia-smi -q -x failed; MIG memory estimated from profile names');
      }
    }
    return { list, xml };
  }

  function previousMigDevices(): Map<string, MigDevice[]> {
    return new Map((lastGood?.gpus ?? []).map((g: Gpu) => [g.uuid, g.mig_devices]));
  }

  function failedInventory(gpu_error: GpuError): GpuInventory {
    // Driver trouble means the GPUs are unusable now; only a hang keeps the last known list (marked by the error).
    lastGood = null;
    versionCache = null;
    return { gpu_driver_version: null, cuda_version: null, gpu_error, gpus: [] };
  }

  async function runCycle(): Promise<GpuInventory> {
    let rows: QueryGpuRecord[] | null = null;
    try {
      const query = await queryGpus();
      if (!query.outcome.ok) return failedInventory(classifyNvidiaSmiFailure(query.outcome.failure));
      const parsed = parseQueryGpuCsv(query.outcome.stdout, query.fields);
      warnIfAny(parsed.warnings, query.args);
      if (parsed.rows.length === 0) {
        return failedInventory(describeUnexpectedOutput(binary, query.args, query.outcome.stdout));
      }
      rows = parsed.rows;
      const queryDriver = rows.find((r) => r.driver_version !== null)?.driver_version ?? null;
      let xml: XmlInventory | null = null;
      if (versionCache === null || versionCache.queryDriver !== queryDriver) {
        const looked = await lookUpVersions();
        xml = looked.xml;
        versionCache = looked.versions ? { queryDriver, versions: looked.versions } : null;
      }
      let list: ListedGpu[] | null = null;
      if (rows.some((r) => r.mig_mode === 'enabled')) ({ list, xml } = await readMig(xml));
      const built = buildGpuInventory({
        rows,
        versions: versionCache?.versions ?? { driver_version: null, cuda_version: null },
        list,
        xml,
        previousMigDevices: previousMigDevices(),
      });
      warnIfAny(built.warnings, query.args);
      if (built.inventory.gpus.length === 0) {
        return failedInventory(describeUnexpectedOutput(binary, query.args, query.outcome.stdout));
      }
      lastGood = built.inventory;
      return built.inventory;
    } catch (err) {
      if (!(err instanceof CycleTimeout)) throw err;
      const gpu_error = classifyNvidiaSmiFailure(err.failure);
      log.warn({ args: err.failure.args, timeoutMs }, 'nvidia-smi timed out; rest of the poll skipped');
      if (rows) {
        // The query itself answered this cycle: fresh usage beats the stale list; MIG devices carry over.
        const fresh = buildGpuInventory({
          rows,
          versions: versionCache?.versions ?? { driver_version: lastGood?.gpu_driver_version ?? null, cuda_version: lastGood?.cuda_version ?? null },
          list: null,
          xml: null,
          previousMigDevices: previousMigDevices(),
        }).inventory;
        return { ...fresh, gpu_error };
      }
      if (lastGood) return { ...lastGood, gpu_error };
      return { gpu_driver_version: null, cuda_version: null, gpu_error, gpus: [] };
    }
  }

  async function pollSafely(): Promise<GpuInventory> {
    try {
      return await runCycle();
    } catch (err) {
      log.error({ err }, 'nvidia-smi poll failed unexpectedly');
      return {
        gpu_driver_version: null,
        cuda_version: null,
        gpu_error: { code: 'NVIDIA_SMI_FAILED', message: `reading the GPU inventory failed inside the agent (${String(err).slice(0, 200)}): this is a bug; report it with the agent log` },
        gpus: lastGood?.gpus ?? [],
      };
    }
  }

  return {
    poll() {
      inFlight ??= pollSafely().finally(() => {
        inFlight = null;
      });
      return inFlight;
    },
  };
}
