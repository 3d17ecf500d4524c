// The scheduler as a table of fleets and specs: where a replica lands, and the exact words when it lands nowhere.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { place, planWorkload, type Placement, type PlacementRequest, type SchedulerWorker } from '../../../hub/control/scheduler.ts';
import type { Gpu, MigDevice } from '../../../shared/inventory.ts';
import { parseWorkloadSpec, type WorkloadSpec } from '../../../shared/spec/workload-spec.ts';

const H100 = 'NVIDIA H100 80GB HBM3';
const H100_MIB = 81559;
const A100 = 'NVIDIA A100-SXM4-80GB';
const L4 = 'NVIDIA L4';
const L4_MIB = 23034;
const NEED_8B = '~20 GiB on 1 GPU (vllm claims 90% of GPU memory)';
/** vLLM's default claim on an H100: 90% of its memory. */
const CLAIM_H100 = Math.floor(0.9 * H100_MIB);

interface GpuOptions {
  name?: string;
  total?: number | null;
  free?: number | null;
  mig?: MigDevice[];
}

function gpu(uuid: string, o: GpuOptions = {}): Gpu {
  const total = o.total === undefined ? H100_MIB : o.total;
  return {
    index: 0,
    uuid,
    name: o.name ?? H100,
    memory_total_mib: total,
    memory_used_mib: 0,
    memory_free_mib: o.free === undefined ? total : o.free,
    utilization_pct: 0,
    temperature_c: 40,
    compute_capability: '9.0',
    pci_bus_id: null,
    mig_mode: o.mig ? 'enabled' : 'disabled',
    mig_devices: o.mig ?? [],
  };
}

type WorkerOptions = Partial<Omit<SchedulerWorker, 'gpus' | 'runtime'>> & { gpus?: Gpu[]; runtime?: 'docker' | 'process' };

function worker(id: string, o: WorkerOptions = {}): SchedulerWorker {
  const { gpus, runtime, ...rest } = o;
  return {
    id,
    name: `box-${id}`,
    project_id: null,
    state: 'ready',
    cordoned: false,
    draining: false,
    runtime: { kind: runtime ?? 'docker', docker_version: '28.2.2', nvidia_runtime: true, cdi: false, gpu_mode: 'nvidia', images: [], image_map: {} },
    gpu_mode: 'nvidia',
    cuda_version: '13.0',
    gpu_error: null,
    gpus: gpus ?? [gpu(`GPU-${id}-0`)],
    images: [],
    image_map: {},
    booked_mib: {},
    replicas: 0,
    gpu_hourly_cost_usd: null,
    ...rest,
  };
}

function spec(input: Record<string, unknown>): WorkloadSpec {
  const parsed = parseWorkloadSpec({ slug: 'chat', ...input });
  assert.ok(parsed.ok, JSON.stringify(parsed.ok ? null : parsed.details));
  return parsed.spec;
}

const vllm = (model: string, flags = '', extra: Record<string, unknown> = {}) =>
  spec({ model, backend: 'vllm', command: `vllm serve ${model} ${flags}`.trim(), ...extra });
const llama8b = (flags = '', extra: Record<string, unknown> = {}) => vllm('meta-llama/Llama-3.1-8B-Instruct', flags, extra);
const llama70b = (flags: string) => vllm('meta-llama/Llama-3.1-70B-Instruct', flags);
const cloudPool = (pool: Record<string, unknown>) => ({
  execution_policy: 'autoscaling',
  execution_policy_config: { min_workers: 0, max_workers: 3, max_hourly_cost_usd: 10, workers: { source: 'cloud', cloud_pool: pool } },
});

function req(s: WorkloadSpec, o: Partial<PlacementRequest> = {}): PlacementRequest {
  return { project_id: 'prj_a', spec: s, workload_replicas: {}, strategy: 'spread', ...o };
}

function placed(p: Placement): Extract<Placement, { ok: true }> {
  assert.ok(p.ok, p.ok ? '' : p.explanation);
  return p;
}

function refused(p: Placement): Extract<Placement, { ok: false }> {
  assert.ok(!p.ok, p.ok ? `expected no fit, got ${p.worker_id} ${p.gpu_uuids.join(',')}` : '');
  return p;
}

describe('placement on GPUs', () => {
  it('places an 8B vLLM model on a free H100, claiming 90% of it', () => {
    const p = placed(place(req(llama8b()), [worker('wrk_a')]));
    assert.deepEqual([p.worker_id, p.gpu_uuids, p.claim_mib_per_gpu, p.mig], ['wrk_a', ['GPU-wrk_a-0'], CLAIM_H100, false]);
    assert.equal(p.estimate.need_gib_per_gpu, 19.88);
  });

  it('picks the GPU with the least room that fits (best fit), leaving the roomiest whole', () => {
    const w = worker('wrk_a', { gpus: [gpu('GPU-big', { free: 81000 }), gpu('GPU-snug', { free: 74000 }), gpu('GPU-full', { free: 20000 })] });
    assert.deepEqual(placed(place(req(llama8b()), [w])).gpu_uuids, ['GPU-snug']);
  });

  it('spreads tensor parallelism over the best-fitting set of GPUs when free memory is uneven', () => {
    const free = [81000, 78000, 74000, 75000, 30000, 80000];
    const w = worker('wrk_a', { gpus: free.map((f, i) => gpu(`GPU-${i}`, { free: f })) });
    const p = placed(place(req(llama70b('--tensor-parallel-size 4')), [w]));
    assert.deepEqual(p.gpu_uuids, ['GPU-2', 'GPU-3', 'GPU-1', 'GPU-5']);
    assert.deepEqual([p.estimate.gpus, p.estimate.need_gib_per_gpu], [4, 39.62]);
  });

  it('refuses tensor parallelism when too few GPUs have room, and says how many do', () => {
    const free = [81000, 74000, 30000, 75000, 10000, 5000];
    const w = worker('wrk_a', { gpus: free.map((f, i) => gpu(`GPU-${i}`, { free: f })) });
    const p = refused(place(req(llama70b('-tp 4')), [w]));
    assert.equal(p.explanation, 'needs ~40 GiB on each of 4 GPUs (vllm claims 90% of GPU memory); wrk_a: 6 GPUs, 3 with enough free memory, needs 4');
  });

  it('counts tp × pp × dp GPUs and refuses a worker with fewer', () => {
    const w = worker('wrk_a', { gpus: [gpu('GPU-0'), gpu('GPU-1')] });
    const p = refused(place(req(llama8b('--tensor-parallel-size 2 --pipeline-parallel-size 2')), [w]));
    assert.equal(p.estimate.gpus, 4);
    assert.equal(p.reasons[0]!.reason, '2 GPUs, needs 4');
    assert.equal(p.reasons[0]!.code, 'not_enough_gpus');
  });

  it('puts a small model on a MIG slice, best fit, booked by MIG uuid', () => {
    const mig = [
      { uuid: 'MIG-big', profile: '3g.40gb', memory_total_mib: 40448 },
      { uuid: 'MIG-small', profile: '1g.10gb', memory_total_mib: 9856 },
    ];
    const fleet = [worker('wrk_a', { gpus: [gpu('GPU-parent', { mig })] })];
    const s = vllm('Qwen/Qwen2.5-0.5B-Instruct');
    const p = placed(place(req(s), fleet));
    assert.deepEqual([p.gpu_uuids, p.mig, p.claim_mib_per_gpu], [['MIG-small'], true, Math.floor(0.9 * 9856)]);
    fleet[0]!.booked_mib = { 'MIG-small': 8870 };
    assert.deepEqual(placed(place(req(s), fleet)).gpu_uuids, ['MIG-big']);
  });

  it('refuses a big model on a MIG-only GPU: a MIG device is never the whole GPU', () => {
    const mig = [1, 2].map((i) => ({ uuid: `MIG-${i}`, profile: '1g.10gb', memory_total_mib: 9856 }));
    const p = refused(place(req(llama8b()), [worker('wrk_a', { gpus: [gpu('GPU-parent', { mig })] })]));
    assert.equal(p.explanation, `needs ${NEED_8B}; wrk_a: the model needs ~19.9 GiB per GPU, more than 90% of its largest MIG device (8.7 GiB)`);
  });

  it('offers no MIG devices to a multi-GPU replica', () => {
    const mig = [{ uuid: 'MIG-1', profile: '7g.80gb', memory_total_mib: 81000 }];
    const w = worker('wrk_a', { gpus: [gpu('GPU-0', { mig }), gpu('GPU-1', { mig })] });
    const p = refused(place(req(llama8b('-tp 2')), [w]));
    assert.equal(p.reasons[0]!.reason, '0 GPUs (2 more GPUs in MIG mode serve single-GPU replicas only), needs 2');
  });

  it('refuses a model larger than the claim on any GPU, naming the claim', () => {
    const p = refused(place(req(llama70b('')), [worker('wrk_a')]));
    assert.equal(p.reasons[0]!.reason, 'the model needs ~158.5 GiB per GPU, more than 90% of its largest GPU (71.7 GiB)');
    assert.equal(p.reasons[0]!.code, 'model_too_large');
  });
});

describe('free memory: book-kept and measured', () => {
  it('lets the lower of book-kept and measured free memory decide', () => {
    const measuredLow = worker('wrk_a', { gpus: [gpu('GPU-a', { free: 10_000 })] });
    const bookedHigh = worker('wrk_b', { gpus: [gpu('GPU-b')], booked_mib: { 'GPU-b': 70_000 } });
    const p = refused(place(req(llama8b()), [measuredLow, bookedHigh]));
    assert.equal(p.explanation, `needs ${NEED_8B}; wrk_a: 1 GPU, best has 9.8 GiB free; wrk_b: 1 GPU, best has 11.3 GiB free`);
    const roomy = worker('wrk_c');
    assert.equal(placed(place(req(llama8b()), [measuredLow, bookedHigh, roomy])).worker_id, 'wrk_c');
  });

  it('decides by book-keeping alone when a GPU reports no measured free memory, and says so', () => {
    const p = placed(place(req(llama8b()), [worker('wrk_a', { gpus: [gpu('GPU-x', { free: null })] })]));
    assert.ok(p.notes.includes('GPU-x reported no measured free memory: book-keeping alone decided'), p.notes.join(' | '));
  });

  it('with a model id that carries no size, the engine claim alone decides', () => {
    const s = vllm('BAAI/bge-large-en-v1.5', '--gpu-memory-utilization 0.3', { task_type: 'embedding' });
    const fits = worker('wrk_b', { gpus: [gpu('GPU-b', { free: 30_000 })] });
    const tight = worker('wrk_a', { gpus: [gpu('GPU-a', { free: 10_240 })] });
    assert.equal(placed(place(req(s), [tight, fits])).claim_mib_per_gpu, Math.floor(0.3 * H100_MIB));
    const p = refused(place(req(s), [tight]));
    assert.equal(p.explanation, 'needs 1 GPU with 30% of its memory (the model id carries no size); wrk_a: 1 GPU, best has 10.0 GiB free');
    assert.equal(p.estimate.known, false);
  });
});

describe('engines', () => {
  it('SGLang claims --mem-fraction-static of each GPU (default 0.88 at tp 1)', () => {
    const model = 'Qwen/Qwen2.5-7B-Instruct';
    const sglang = (flags = '') => spec({ model, backend: 'sglang', command: `python3 -m sglang.launch_server --model-path ${model} ${flags}`.trim() });
    const w = (free: number) => [worker('wrk_a', { gpus: [gpu('GPU-a', { free })] })];
    assert.equal(placed(place(req(sglang()), w(72_000))).claim_mib_per_gpu, Math.floor(0.88 * H100_MIB));
    refused(place(req(sglang()), w(71_000)));
    assert.equal(placed(place(req(sglang('--mem-fraction-static 0.5')), w(41_000))).claim_mib_per_gpu, Math.floor(0.5 * H100_MIB));
    assert.equal(placed(place(req(sglang('--tp 2')), [worker('wrk_a', { gpus: [gpu('G0'), gpu('G1')] })])).claim_mib_per_gpu, Math.floor(0.87 * H100_MIB));
  });

  it('Ollama claims its estimate (4-bit by default), so it fits next to others on a small GPU', () => {
    const s = spec({ model: 'llama3.1:8b', backend: 'ollama' });
    const l4 = (free: number) => worker('wrk_a', { gpus: [gpu('GPU-l4', { name: L4, total: L4_MIB, free })] });
    const p = placed(place(req(s), [l4(7_000)]));
    assert.equal(p.claim_mib_per_gpu, Math.ceil(6.47 * 1024));
    assert.equal(refused(place(req(s), [l4(6_000)])).explanation, 'needs ~6.5 GiB on 1 GPU; wrk_a: 1 GPU, best has 5.9 GiB free');
  });
});

describe('feasibility filters', () => {
  it('says a worker is cordoned, draining, disconnected or down', () => {
    const fleet = [
      worker('wrk_a', { cordoned: true }),
      worker('wrk_b', { draining: true }),
      worker('wrk_c', { state: 'disconnected' }),
      worker('wrk_d', { state: 'down' }),
    ];
    const p = refused(place(req(llama8b()), fleet));
    assert.equal(p.explanation, `needs ${NEED_8B}; wrk_a: cordoned; wrk_b: draining; wrk_c: disconnected; wrk_d: down`);
    assert.deepEqual(p.reasons.map((r) => r.code), ['cordoned', 'draining', 'not_ready', 'not_ready']);
  });

  it('a pinned worker that is down says so, and no other worker is considered', () => {
    const s = llama8b('', { worker_id: 'wrk_pinned01' });
    const p = refused(place(req(s), [worker('wrk_other01'), worker('wrk_pinned01', { state: 'down' })]));
    assert.equal(p.explanation, `needs ${NEED_8B}; wrk_pinned01 (pinned): down`);
    assert.equal(p.reasons.find((r) => r.worker_id === 'wrk_other01')?.code, 'not_pinned');
  });

  it('a pinned worker that is not registered says so; a pinned ready worker gets the replica', () => {
    const s = llama8b('', { worker_id: 'wrk_missing1' });
    assert.equal(refused(place(req(s), [worker('wrk_other01')])).explanation, `needs ${NEED_8B}; wrk_missing1 (pinned): not registered`);
    const pinned = llama8b('', { worker_id: 'wrk_pinned01' });
    const fleet = [worker('wrk_aaaaaaaa'), worker('wrk_pinned01', { replicas: 9 })];
    assert.equal(placed(place(req(pinned), fleet)).worker_id, 'wrk_pinned01');
  });

  it("uses the project's private workers and the shared pool, never another project's private worker", () => {
    const mine = worker('wrk_mine', { project_id: 'prj_a', replicas: 3 });
    const theirs = worker('wrk_theirs', { project_id: 'prj_b' });
    const shared = worker('wrk_shared', { replicas: 5 });
    assert.equal(placed(place(req(llama8b()), [theirs, mine])).worker_id, 'wrk_mine');
    assert.equal(placed(place(req(llama8b()), [theirs, shared])).worker_id, 'wrk_shared');
    const p = refused(place(req(llama8b()), [theirs]));
    assert.equal(
      p.explanation,
      `needs ${NEED_8B}; no worker is available to this project: add a shared worker or one of the project's own (\`ik join-token create\`, then the install one-liner on a GPU box)`,
    );
    assert.deepEqual(p.reasons.map((r) => [r.worker_id, r.code]), [['wrk_theirs', 'other_project']]);
  });

  it('source private: only the listed workers, and a listed id nobody has is named', () => {
    const s = spec({
      model: 'meta-llama/Llama-3.1-8B-Instruct',
      backend: 'vllm',
      command: 'vllm serve meta-llama/Llama-3.1-8B-Instruct',
      execution_policy: 'autoscaling',
      execution_policy_config: { min_workers: 1, max_workers: 2, workers: { source: 'private', private_worker_ids: ['wrk_listed01', 'wrk_gone0001'] } },
    });
    const fleet = [worker('wrk_free0001'), worker('wrk_listed01', { project_id: 'prj_a', cordoned: true })];
    const p = refused(place(req(s), fleet));
    assert.equal(p.explanation, `needs ${NEED_8B}; wrk_gone0001: not registered; wrk_listed01: cordoned`);
    fleet[1]!.cordoned = false;
    assert.equal(placed(place(req(s), fleet)).worker_id, 'wrk_listed01');
  });

  it("source cloud: the shared pool only, so the project's own private worker is refused with a reason", () => {
    const s = llama8b('', cloudPool({ gpu_pool: [H100] }));
    const p = refused(place(req(s), [worker('wrk_mine', { project_id: 'prj_a' })]));
    assert.equal(p.explanation, `needs ${NEED_8B}; wrk_mine: private to this project, and workers.source is cloud (the shared pool only)`);
  });

  it('gpu_pool matches GPU names exactly as nvidia-smi prints them, and only those GPUs are used', () => {
    const s = llama8b('', cloudPool({ gpu_pool: [A100] }));
    const l4s = worker('wrk_a', { gpus: [gpu('GPU-1', { name: L4 }), gpu('GPU-2', { name: L4 })] });
    const mixed = worker('wrk_b', { gpus: [gpu('GPU-h100', { name: H100 }), gpu('GPU-a100', { name: A100 })] });
    assert.deepEqual(placed(place(req(s), [l4s, mixed])).gpu_uuids, ['GPU-a100']);
    const p = refused(place(req(s), [l4s, worker('wrk_c', { gpus: [gpu('GPU-x', { name: 'NVIDIA A100 80GB PCIe' })] })]));
    assert.equal(
      p.explanation,
      `needs ${NEED_8B}; wrk_a: no GPU named in gpu_pool (${A100}); it has 2× ${L4}; wrk_c: no GPU named in gpu_pool (${A100}); it has 1× NVIDIA A100 80GB PCIe`,
    );
  });

  it('allowed_cuda_versions admits a driver of the same major at or above a listed version', () => {
    const s = llama8b('', { vllm_version: '0.6.3', ...cloudPool({ gpu_pool: [H100], allowed_cuda_versions: ['12.4'] }) });
    const fleet = [worker('wrk_a', { cuda_version: '13.0' }), worker('wrk_b', { cuda_version: '12.2' }), worker('wrk_c', { cuda_version: '12.10' })];
    assert.equal(placed(place(req(s), fleet)).worker_id, 'wrk_c');
    const p = refused(place(req(s), fleet.slice(0, 2)));
    assert.equal(
      p.explanation,
      `needs ${NEED_8B}; wrk_a: driver CUDA 13.0 is not admitted by allowed_cuda_versions (12.4: same major, at least that minor); ` +
        'wrk_b: driver CUDA 12.2 is not admitted by allowed_cuda_versions (12.4: same major, at least that minor)',
    );
  });

  it("refuses a driver older than the backend image's minimum CUDA, unless the worker runs another image", () => {
    const s = llama8b('', { vllm_version: '0.9.2' });
    const old = (id: string, o: WorkerOptions = {}) => worker(id, { cuda_version: '12.4', ...o });
    assert.equal(
      refused(place(req(s), [old('wrk_a')])).explanation,
      `needs ${NEED_8B}; wrk_a: driver CUDA 12.4 is older than the 12.8 that vllm/vllm-openai:v0.9.2 needs`,
    );
    const mirror = old('wrk_m', { image_map: { vllm: 'mirror.example/vllm-openai:{version}' } });
    assert.equal(refused(place(req(s), [mirror])).reasons[0]!.reason, 'driver CUDA 12.4 is older than the 12.8 that mirror.example/vllm-openai:v0.9.2 needs');
    assert.equal(placed(place(req(s), [old('wrk_s', { image_map: { vllm: 'ik-sim:dev' } })])).worker_id, 'wrk_s');
    assert.equal(placed(place(req(s), [old('wrk_p', { runtime: 'process', gpu_mode: null })])).worker_id, 'wrk_p');
    assert.equal(placed(place(req(s), [old('wrk_n', { cuda_version: '12.9' })])).worker_id, 'wrk_n');
  });

  it('a docker worker needs a GPU mode; gpu_mode none is one, and a process worker uses the host GPUs', () => {
    const noRuntime = worker('wrk_a', { gpu_mode: null });
    assert.equal(
      refused(place(req(llama8b()), [noRuntime])).explanation,
      `needs ${NEED_8B}; wrk_a: Docker cannot give GPUs to containers (install the NVIDIA Container Toolkit, or set IK_DOCKER_GPU_MODE)`,
    );
    assert.equal(placed(place(req(llama8b()), [noRuntime, worker('wrk_b', { gpu_mode: 'none' })])).worker_id, 'wrk_b');
    assert.equal(placed(place(req(llama8b()), [noRuntime, worker('wrk_c', { runtime: 'process', gpu_mode: null })])).worker_id, 'wrk_c');
  });

  it('a worker whose nvidia-smi failed has no usable GPUs, and the reason names the error code', () => {
    const broken = worker('wrk_a', { gpus: [], cuda_version: null, gpu_error: { code: 'DRIVER_NOT_LOADED', message: 'NVIDIA driver not loaded' } });
    const p = refused(place(req(llama8b()), [broken, worker('wrk_b', { gpus: [] })]));
    assert.equal(p.explanation, `needs ${NEED_8B}; wrk_a: no usable GPUs (DRIVER_NOT_LOADED); wrk_b: no GPUs`);
  });
});

describe('ranking', () => {
  it('spread: fewest replicas of this workload first', () => {
    const fleet = [worker('wrk_a'), worker('wrk_b', { replicas: 4 })];
    assert.equal(placed(place(req(llama8b(), { workload_replicas: { wrk_a: 1 } }), fleet)).worker_id, 'wrk_b');
  });

  it('spread: then fewest replicas overall, then most free memory', () => {
    const busy = worker('wrk_a', { replicas: 3 });
    const idle = worker('wrk_b', { replicas: 1, gpus: [gpu('GPU-b', { free: 75_000 })] });
    assert.equal(placed(place(req(llama8b()), [busy, idle])).worker_id, 'wrk_b');
    const roomy = worker('wrk_c', { replicas: 1, gpus: [gpu('GPU-c1', { free: 75_000 }), gpu('GPU-c2', { free: 40_000 })] });
    assert.equal(placed(place(req(llama8b()), [busy, idle, roomy])).worker_id, 'wrk_c');
  });

  it('binpack: most replicas overall first, then the least room left after the claim', () => {
    const fleet = [worker('wrk_a', { replicas: 1 }), worker('wrk_b', { replicas: 6 }), worker('wrk_c', { replicas: 6, gpus: [gpu('GPU-c', { free: 74_000 })] })];
    assert.equal(placed(place(req(llama8b(), { strategy: 'binpack' }), fleet)).worker_id, 'wrk_c');
  });

  it('prefers a worker that already has the image over finer balancing (spread)', () => {
    const s = llama8b('', { vllm_version: '0.6.3' });
    const fleet = [worker('wrk_a'), worker('wrk_b', { replicas: 5, gpus: [gpu('GPU-b', { free: 74_000 })], images: ['vllm/vllm-openai:v0.6.3'] })];
    assert.equal(placed(place(req(s), fleet)).worker_id, 'wrk_b');
    // …but spreading the workload's own replicas comes first.
    assert.equal(placed(place(req(s, { workload_replicas: { wrk_b: 1 } }), fleet)).worker_id, 'wrk_a');
  });

  it("reads the image through the worker's IK_IMAGE_MAP", () => {
    const s = llama8b('', { vllm_version: '0.6.3' });
    const mapped = worker('wrk_b', { replicas: 2, image_map: { vllm: 'mirror/vllm-openai:{version}' }, images: ['mirror/vllm-openai:v0.6.3'] });
    const unmapped = worker('wrk_c', { replicas: 2, images: ['mirror/vllm-openai:v0.6.3'] });
    assert.equal(placed(place(req(s), [worker('wrk_a'), unmapped, mapped])).worker_id, 'wrk_b');
  });

  it('binpack: the image breaks ties of replica counts only', () => {
    const s = llama8b('', { vllm_version: '0.6.3' });
    const fleet = [worker('wrk_a', { replicas: 4 }), worker('wrk_b', { replicas: 2 }), worker('wrk_c', { replicas: 2, images: ['vllm/vllm-openai:v0.6.3'] })];
    assert.equal(placed(place(req(s, { strategy: 'binpack' }), fleet)).worker_id, 'wrk_a');
    // wrk_b would win the tie on its id; the image decides first.
    assert.equal(placed(place(req(s, { strategy: 'binpack' }), fleet.slice(1))).worker_id, 'wrk_c');
  });

  it('is deterministic: the same fleet in any order gives the same answer, ties broken by worker id', () => {
    const fleet = ['wrk_d', 'wrk_b', 'wrk_c', 'wrk_a'].map((id) => worker(id));
    const answers = new Set([fleet, [...fleet].reverse(), [...fleet].sort()].map((f) => JSON.stringify(place(req(llama8b()), f))));
    assert.equal(answers.size, 1);
    assert.equal(placed(place(req(llama8b()), fleet)).worker_id, 'wrk_a');
  });

  it('finds the fit deep in the ranking when every better-ranked worker is full', () => {
    const full = Array.from({ length: 30 }, (_, i) => worker(`wrk_f${String(i).padStart(2, '0')}`, { replicas: i % 5, gpus: [gpu(`G${i}`, { free: 1000 })] }));
    const last = worker('wrk_z', { replicas: 50 });
    assert.equal(placed(place(req(llama8b()), [...full, last])).worker_id, 'wrk_z');
  });
});

describe('explanations', () => {
  it('names the need, then each worker by id', () => {
    const a = worker('wrk_a', { gpus: [gpu('GPU-a1', { free: 7_168 }), gpu('GPU-a2', { free: 2_000 })] });
    const p = refused(place(req(llama8b()), [worker('wrk_b', { cordoned: true }), a]));
    assert.equal(p.explanation, `needs ${NEED_8B}; wrk_a: 2 GPUs, best has 7.0 GiB free; wrk_b: cordoned`);
  });

  it('says when no worker is registered at all, and how to add one', () => {
    assert.equal(
      refused(place(req(llama8b()), [])).explanation,
      `needs ${NEED_8B}; no worker is registered: create a join token with \`ik join-token create\` and run the install one-liner it prints on a GPU box`,
    );
  });

  it('names ten workers, then counts the rest by reason', () => {
    const fleet = Array.from({ length: 14 }, (_, i) =>
      worker(`wrk_${String(i).padStart(2, '0')}`, i < 9 ? { cordoned: true } : i < 12 ? { state: 'down' } : { draining: true }),
    );
    const p = refused(place(req(llama8b()), fleet));
    const named = Array.from({ length: 9 }, (_, i) => `wrk_0${i}: cordoned`).join('; ');
    assert.equal(p.explanation, `needs ${NEED_8B}; ${named}; wrk_09: down; and 4 more workers (2 not ready, 2 draining)`);
    assert.equal(p.reasons.length, 14);
  });
});

describe('planWorkload', () => {
  const priced = (id: string, usd: number | null, o: WorkerOptions = {}) => worker(id, { gpu_hourly_cost_usd: usd, ...o });

  it('fixed: replicas × the per-replica cost, from the cheapest to the dearest worker that fits', () => {
    const s = llama8b('', { execution_policy_config: { replicas: 2 } });
    const plan = planWorkload(s, 'prj_a', [priced('wrk_a', 2.5), priced('wrk_b', 4), priced('wrk_c', 1, { cordoned: true })], 'spread');
    assert.deepEqual(plan.estimate, { vram_gib_per_gpu: 19.88, gpus: 1, known: true });
    assert.deepEqual(plan.placement, { worker_id: 'wrk_a', gpu_uuids: ['GPU-wrk_a-0'] });
    assert.deepEqual([plan.feasible, plan.explanation, plan.hourly_cost_usd], [true, null, { min: 5, max: 8 }]);
  });

  it('counts a worker without gpu_hourly_cost_usd as 0, and says so', () => {
    const plan = planWorkload(llama8b(), 'prj_a', [priced('wrk_a', null), priced('wrk_b', 3)]);
    assert.deepEqual(plan.hourly_cost_usd, { min: 0, max: 3 });
    assert.ok(plan.notes.includes('wrk_a has no gpu_hourly_cost_usd: counted as 0 USD per GPU-hour'), plan.notes.join(' | '));
  });

  it('a replica costs its GPU count × the price; autoscaling is bounded by the lower cap', () => {
    const s = spec({
      model: 'meta-llama/Llama-3.1-70B-Instruct',
      backend: 'vllm',
      command: 'vllm serve meta-llama/Llama-3.1-70B-Instruct -tp 4',
      execution_policy: 'autoscaling',
      execution_policy_config: { min_workers: 1, max_workers: 5, max_hourly_cost_usd: 30, workers: { source: 'cloud', cloud_pool: { gpu_pool: [H100], max_hourly_cost_usd: 20 } } },
    });
    const box = priced('wrk_a', 2, { gpus: [0, 1, 2, 3].map((i) => gpu(`G${i}`)) });
    const plan = planWorkload(s, 'prj_a', [box]);
    assert.deepEqual(plan.hourly_cost_usd, { min: 8, max: 16 });
    assert.ok(plan.notes.includes('the hourly cap of 20 USD bounds autoscaling to 2 replicas'), plan.notes.join(' | '));
  });

  it('scheduled: 0 outside its time, replicas × cost while it runs', () => {
    const s = llama8b('', { execution_policy: 'scheduled', execution_policy_config: { cron: '0 2 * * *', replicas: 3 } });
    assert.deepEqual(planWorkload(s, 'prj_a', [priced('wrk_a', 1.5)]).hourly_cost_usd, { min: 0, max: 4.5 });
  });

  it('when nothing fits: the explanation, no placement, and no cost', () => {
    const plan = planWorkload(llama8b(), 'prj_a', [priced('wrk_a', 2, { cordoned: true })]);
    assert.deepEqual(
      [plan.feasible, plan.placement, plan.explanation, plan.hourly_cost_usd],
      [false, null, `needs ${NEED_8B}; wrk_a: cordoned`, { min: 0, max: 0 }],
    );
  });

  it('says when the model size is unknown', () => {
    const plan = planWorkload(vllm('BAAI/bge-large-en-v1.5', '', { task_type: 'embedding' }), 'prj_a', [worker('wrk_a')]);
    assert.deepEqual(plan.estimate, { vram_gib_per_gpu: null, gpus: 1, known: false });
    assert.ok(plan.notes.some((n) => n.includes('carries no size')), plan.notes.join(' | '));
  });
});
