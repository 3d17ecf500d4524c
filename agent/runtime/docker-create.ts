// The container a replica runs in, as Docker create options (pure): name, labels, entrypoint and command, host
// network, GPUs by UUID for the engine's GPU mode, shared memory, the Hugging Face cache, bounded logs.
import type Docker from 'dockerode';
import type { GpuMode } from '../../shared/inventory.ts';
import { replicaLaunchSchema, type ReplicaLaunch } from '../../shared/protocol/replicas.ts';
import type { RunSpec } from './types.ts';

/** How this engine hands GPUs to containers; null: it cannot (no NVIDIA runtime, no CDI, no override). */
export type DockerGpuMode = GpuMode | null;

export const LABELS = {
  replica: 'ik.replica',
  workload: 'ik.workload',
  project: 'ik.project',
  generation: 'ik.generation',
  worker: 'ik.worker',
  port: 'ik.port',
  /** The replica's launch (JSON, base64), so a restarted agent can rebuild the replica from the container alone. */
  launch: 'ik.launch',
} as const;

/** Where the shared Hugging Face cache appears inside every container (the images' HF_HOME default for root). */
export const HF_CACHE_IN_CONTAINER = '/root/.cache/huggingface';

/** Without --ipc=host a container gets 64 MiB of /dev/shm, which PyTorch data paths outgrow; tmpfs costs only what is used. */
export const SHM_SIZE_BYTES = 8 * 1024 ** 3;

/** Docker keeps each replica's log bounded like the process runtime does: the current file plus one previous part. */
const LOG_CONFIG = { Type: 'json-file', Config: { 'max-size': '8m', 'max-file': '2' } };

export function containerName(replicaId: string): string {
  return `ik-${replicaId}`;
}

export function encodeLaunch(launch: ReplicaLaunch): string {
  return Buffer.from(JSON.stringify(launch), 'utf8').toString('base64');
}

/** The launch a container was created for, or why its label cannot be read back. */
export function decodeLaunch(label: string | undefined): { ok: true; launch: ReplicaLaunch } | { ok: false; reason: string } {
  if (!label) return { ok: false, reason: `it has no ${LABELS.launch} label` };
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(label, 'base64').toString('utf8'));
  } catch {
    return { ok: false, reason: `its ${LABELS.launch} label is not base64 JSON` };
  }
  const parsed = replicaLaunchSchema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return { ok: false, reason: `its ${LABELS.launch} label is not a replica launch (${first ? `${first.path.join('.')}: ${first.message}` : 'invalid'})` };
  }
  return { ok: true, launch: parsed.data };
}

/** GPUs by UUID, as the engine's GPU mode takes them; `none` passes none (the env still names them). */
export function gpuDeviceRequests(uuids: string[], mode: DockerGpuMode): Docker.DeviceRequest[] {
  if (uuids.length === 0 || mode === 'none') return [];
  switch (mode) {
    case 'nvidia':
      return [{ Driver: 'nvidia', DeviceIDs: [...uuids], Capabilities: [['gpu']] }];
    case 'cdi':
      return [{ Driver: 'cdi', DeviceIDs: uuids.map((u) => `nvidia.com/gpu=${u}`) }];
    case null:
      throw new Error(
        `this replica needs GPUs (${uuids.join(', ')}) but the Docker engine cannot hand GPUs to containers: ` +
          'install the NVIDIA Container Toolkit (NVIDIA runtime or CDI), or set IK_DOCKER_GPU_MODE=none where GPUs reach containers another way',
      );
  }
}

/** The create options of a replica's container. Throws when the spec cannot run here (empty command, no GPU mode). */
export function buildCreateOptions(spec: RunSpec, gpuMode: DockerGpuMode): Docker.ContainerCreateOptions {
  const [program, ...args] = spec.argv;
  if (!program) throw new Error('the launch command is empty');
  const { launch } = spec;
  return {
    name: containerName(launch.replica_id),
    Image: spec.image,
    // The command's first word is the entrypoint, so `vllm serve …` works with old and new vLLM images alike.
    Entrypoint: [program],
    Cmd: args,
    Env: Object.entries(spec.env).map(([name, value]) => `${name}=${value}`),
    Labels: {
      [LABELS.replica]: launch.replica_id,
      [LABELS.workload]: launch.workload,
      [LABELS.project]: launch.project,
      [LABELS.generation]: String(launch.generation),
      [LABELS.worker]: spec.workerId,
      [LABELS.port]: String(spec.port),
      [LABELS.launch]: encodeLaunch(launch),
    },
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    HostConfig: {
      // The backend binds 127.0.0.1 on a port the agent allocated on the host: no bridge, no port mapping.
      NetworkMode: 'host',
      // Restarts are the agent's (with backoff and a reason in events), never the engine's.
      RestartPolicy: { Name: 'no' },
      // Tensor/pipeline parallel workers share memory across processes as NCCL expects; others get a big /dev/shm.
      ...(spec.sharedMemory ? { IpcMode: 'host' } : { ShmSize: SHM_SIZE_BYTES }),
      Binds: [`${spec.hfCacheDir}:${HF_CACHE_IN_CONTAINER}`],
      DeviceRequests: gpuDeviceRequests(spec.gpuUuids, gpuMode),
      // An init process forwards SIGTERM to the backend and reaps its worker processes.
      Init: true,
      LogConfig: LOG_CONFIG,
    },
  };
}
