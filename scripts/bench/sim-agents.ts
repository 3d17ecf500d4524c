// Simulated agents for load benchmarks: one WebSocket each, a real hello/welcome exchange, then heartbeats on a timer.
import { WebSocket } from 'ws';
import {
  heartbeatSchema,
  helloSchema,
  hubMessageSchema,
  parseControlMessage,
  type Heartbeat,
  type Hello,
} from '../../shared/protocol/control.ts';
import type { Gpu, GpuUsage, Inventory } from '../../shared/inventory.ts';
import { PROTOCOL_VERSION, VERSION } from '../../shared/version.ts';
import { AGENT_CONNECT_PATH } from '../../hub/tunnel/server.ts';

export const GPUS_PER_AGENT = 8;
const GPU_MEMORY_MIB = 81_559;
const CONNECT_TIMEOUT_MS = 15_000;

/** A box like the ones ikhub is for: 8 × H100 SXM, Docker with the NVIDIA runtime. */
function simulatedInventory(name: string, agentIndex: number): Inventory {
  const gpus: Gpu[] = [];
  for (let g = 0; g < GPUS_PER_AGENT; g++) {
    gpus.push({
      index: g,
      uuid: gpuUuid(agentIndex, g),
      name: 'NVIDIA H100 80GB HBM3',
      memory_total_mib: GPU_MEMORY_MIB,
      memory_used_mib: 0,
      memory_free_mib: GPU_MEMORY_MIB,
      utilization_pct: 0,
      temperature_c: 31,
      compute_capability: '9.0',
      pci_bus_id: `00000000:${(0x18 + g * 0x10).toString(16).toUpperCase()}:00.0`,
      mig_mode: 'disabled',
      mig_devices: [],
    });
  }
  return {
    host: { hostname: name, os: 'Ubuntu 22.04.4 LTS', arch: 'x64', cpu_cores: 192, memory_total_mib: 2_063_937, disk_free_mib: 3_481_204 },
    runtime: { kind: 'docker', docker_version: '27.3.1', nvidia_runtime: true, cdi: false, gpu_mode: 'nvidia', images: [], image_map: {} },
    gpu_driver_version: '550.127.05',
    cuda_version: '12.4',
    gpu_error: null,
    gpus,
  };
}

function gpuUuid(agentIndex: number, gpu: number): string {
  const hex = (agentIndex * GPUS_PER_AGENT + gpu).toString(16).padStart(12, '0');
  return `GPU-5ab1c0de-0000-4000-8000-${hex}`;
}

/** The hello a simulated agent sends, checked against the protocol schema so a protocol change fails the bench loudly. */
export function simulatedHello(name: string, agentIndex: number): Hello {
  const hello = {
    type: 'hello' as const,
    protocol_version: PROTOCOL_VERSION,
    agent_version: `${VERSION}-bench`,
    name,
    inventory: simulatedInventory(name, agentIndex),
  };
  const checked = helloSchema.safeParse(hello);
  if (!checked.success) throw new Error(`the simulated hello no longer matches shared/protocol/control.ts: ${checked.error.message}`);
  return checked.data;
}

/** GPU usage that moves from one heartbeat to the next, as a busy box's does (deterministic, no randomness). */
function simulatedUsage(agentIndex: number, seq: number): GpuUsage[] {
  const usage: GpuUsage[] = [];
  for (let g = 0; g < GPUS_PER_AGENT; g++) {
    const util = (agentIndex * 7 + seq * 13 + g * 29) % 101;
    const used = 2048 + util * 700;
    usage.push({
      uuid: gpuUuid(agentIndex, g),
      memory_used_mib: used,
      memory_free_mib: GPU_MEMORY_MIB - used,
      utilization_pct: util,
      temperature_c: 35 + Math.round(util / 3),
    });
  }
  return usage;
}

export function simulatedHeartbeat(agentIndex: number, seq: number): Heartbeat {
  return { type: 'heartbeat', seq, gpus: simulatedUsage(agentIndex, seq), gpu_error: null, replicas: [] };
}

/** Checks one heartbeat against the protocol schema (once per run: the shape is the same for every agent). */
export function checkHeartbeatShape(): void {
  const checked = heartbeatSchema.safeParse(simulatedHeartbeat(0, 1));
  if (!checked.success) throw new Error(`the simulated heartbeat no longer matches shared/protocol/control.ts: ${checked.error.message}`);
}

export interface FleetStats {
  heartbeatsSent: number;
  /** Sockets that closed while the bench still wanted them, by "code reason". */
  unexpectedCloses: Record<string, number>;
  /** go_away messages the hub sent, by code (it sends them for protocol errors). */
  goAways: Record<string, number>;
}

export class SimAgent {
  workerId: string | undefined;
  credential: string | undefined;
  /** Milliseconds from opening the socket to receiving welcome. */
  registerMs: number | undefined;
  private ws: WebSocket | undefined;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(
    readonly index: number,
    readonly name: string,
    private readonly helloFrame: string,
    private readonly stats: FleetStats,
  ) {}

  /** Opens the tunnel and resolves on welcome; rejects on reject, go_away, close or timeout. */
  connect(hubUrl: string, token: string): Promise<void> {
    const started = performance.now();
    const url = `${hubUrl.replace(/^http/, 'ws')}${AGENT_CONNECT_PATH}`;
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false, handshakeTimeout: CONNECT_TIMEOUT_MS });
    this.ws = ws;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (why: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.terminate();
        reject(new Error(`${this.name}: ${why}`));
      };
      const timer = setTimeout(() => fail(`no welcome within ${CONNECT_TIMEOUT_MS} ms`), CONNECT_TIMEOUT_MS);
      ws.on('open', () => ws.send(this.helloFrame));
      ws.on('error', (err) => fail(`socket error: ${err.message}`));
      ws.on('message', (data, isBinary) => {
        if (isBinary) return fail('the hub sent a binary frame before welcome');
        const parsed = parseControlMessage(hubMessageSchema, data.toString());
        if (!parsed.ok) return fail(`the hub sent a message that does not match the protocol: ${parsed.error}`);
        const msg = parsed.message;
        if (msg.type === 'go_away') this.stats.goAways[msg.code] = (this.stats.goAways[msg.code] ?? 0) + 1;
        if (settled) return;
        if (msg.type === 'reject') return fail(`rejected: ${msg.code}: ${msg.message}`);
        if (msg.type === 'go_away') return fail(`go_away: ${msg.code}: ${msg.message}`);
        if (msg.type !== 'welcome') return;
        if (!msg.credential) return fail('welcome carried no credential after a join-token hello');
        settled = true;
        clearTimeout(timer);
        this.workerId = msg.worker_id;
        this.credential = msg.credential;
        this.registerMs = performance.now() - started;
        resolve();
      });
      ws.on('close', (code, reason) => {
        if (!settled) return fail(`closed before welcome (code ${code}${reason.length ? `: ${reason.toString()}` : ''})`);
        if (this.closing) return;
        this.stopHeartbeats();
        const key = `${code} ${reason.toString()}`.trim();
        this.stats.unexpectedCloses[key] = (this.stats.unexpectedCloses[key] ?? 0) + 1;
      });
    });
  }

  /** Heartbeats every `intervalMs`, the first after `offsetMs` (the fleet spreads agents over the interval). */
  startHeartbeats(intervalMs: number, offsetMs: number): void {
    this.stopHeartbeats();
    this.timer = setTimeout(() => {
      this.beat();
      this.timer = setInterval(() => this.beat(), intervalMs);
    }, offsetMs);
  }

  stopHeartbeats(): void {
    // clearTimeout also clears an interval in node.
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Closes the socket normally; resolves when it is closed (or terminated after `timeoutMs`). */
  close(timeoutMs = 3000): Promise<void> {
    this.closing = true;
    this.stopHeartbeats();
    const ws = this.ws;
    if (!ws || ws.readyState === ws.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => ws.terminate(), timeoutMs);
      ws.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      if (ws.readyState === ws.CONNECTING) ws.terminate();
      else ws.close(1000, 'bench done');
    });
  }

  private beat(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== ws.OPEN) return;
    ws.send(JSON.stringify(simulatedHeartbeat(this.index, ++this.seq)));
    this.stats.heartbeatsSent++;
  }
}

/** A fleet of simulated agents named `sim-0001`…; hellos are built and validated before any socket opens. */
export class SimFleet {
  readonly stats: FleetStats = { heartbeatsSent: 0, unexpectedCloses: {}, goAways: {} };
  readonly agents: SimAgent[];

  constructor(count: number) {
    checkHeartbeatShape();
    const width = Math.max(4, String(count).length);
    this.agents = Array.from({ length: count }, (_, i) => {
      const name = `sim-${String(i + 1).padStart(width, '0')}`;
      return new SimAgent(i, name, JSON.stringify(simulatedHello(name, i)), this.stats);
    });
  }

  /** Connects every agent, at most `concurrency` handshakes at a time, so the loopback is not flooded. */
  async connectAll(hubUrl: string, token: string, opts: { concurrency: number; signal?: AbortSignal; onRegistered?: (agent: SimAgent) => void }): Promise<void> {
    let next = 0;
    let failed = false;
    const lane = async () => {
      while (next < this.agents.length && !failed && !opts.signal?.aborted) {
        const agent = this.agents[next++]!;
        try {
          await agent.connect(hubUrl, token);
        } catch (err) {
          failed = true;
          throw err;
        }
        opts.onRegistered?.(agent);
      }
    };
    const concurrency = opts.concurrency;
    await Promise.all(Array.from({ length: Math.min(concurrency, this.agents.length) }, lane));
  }

  /** Starts (or resumes) heartbeats on every registered agent, spread evenly over one interval. */
  startHeartbeats(intervalMs: number): void {
    const n = this.agents.length;
    for (const a of this.agents) if (a.workerId) a.startHeartbeats(intervalMs, Math.floor((a.index * intervalMs) / n));
  }

  pauseHeartbeats(): void {
    for (const a of this.agents) a.stopHeartbeats();
  }

  get registered(): number {
    return this.agents.filter((a) => a.workerId !== undefined).length;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.close()));
  }
}
