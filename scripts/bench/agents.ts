// Benchmark: one hub, N simulated agents over loopback: registration time, hub memory, hub CPU per heartbeat against an idle baseline.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { listOf, workerViewSchema } from '../../shared/api.ts';
import { intFlag, parseCommandArgs } from '../../shared/cli-args.ts';
import { BenchHub, counterValue } from './hub-process.ts';
import { clockTicksPerSecond, processCpuMs, processRssMib } from './proc-stats.ts';
import { RESULTS_DIR, formatValue, type BenchReport, type Metric } from './report.ts';
import { GPUS_PER_AGENT, SimFleet } from './sim-agents.ts';

export const description = 'hub with N simulated agents: registration time, hub RSS, hub CPU per heartbeat';

export const USAGE = `usage: npm run bench -- agents [--agents N] [--seconds S] [--concurrency C] [--interval-ms MS] [--cpu-prof]
  --agents N        simulated agents, one WebSocket each (default 1000)
  --seconds S       length of the steady heartbeat phase and of the idle phase (default 10)
  --concurrency C   handshakes in flight at once while registering (default 50)
  --interval-ms MS  how often each simulated agent sends a heartbeat (default 1000)
  --cpu-prof        run the hub under node --cpu-prof; the profile lands in bench-results/profiles/`;

const options = {
  agents: { type: 'string' },
  seconds: { type: 'string' },
  concurrency: { type: 'string' },
  'interval-ms': { type: 'string' },
  'cpu-prof': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const TARGET_REGISTER_S = 10;
const TARGET_RSS_MIB = 300;
const TARGET_CPU_PER_HEARTBEAT_MS = 0.2;
/** Registration slower than this is not a figure any more but a failure. */
const REGISTER_LIMIT_MS = 20_000;
/** The hub batches heartbeat writes for up to 1 s; the idle phase starts after the last batch is written. */
const FLUSH_SETTLE_MS = 1500;
const HEARTBEAT_IN = { direction: 'in', type: 'heartbeat' } as const;

interface Params {
  agents: number;
  seconds: number;
  concurrency: number;
  intervalMs: number;
  cpuProf: boolean;
}

function parseParams(argv: string[]): Params | 'help' {
  const { values } = parseCommandArgs('npm run bench -- agents', argv, options);
  if (values.help) return 'help';
  return {
    agents: intFlag('agents', values.agents, 1, 10_000) ?? 1000,
    seconds: intFlag('seconds', values.seconds, 1, 60) ?? 10,
    concurrency: intFlag('concurrency', values.concurrency, 1, 1000) ?? 50,
    intervalMs: intFlag('interval-ms', values['interval-ms'], 100, 60_000) ?? 1000,
    cpuProf: values['cpu-prof'] ?? false,
  };
}

/**
 * The hub's own heartbeat interval, which only sets when it calls a silent worker `down` (3 intervals).
 * It is kept long enough that the idle phase (heartbeats paused) marks nobody down: otherwise the
 * baseline would measure 1000 state changes instead of an idle hub. The agents' own rate is --interval-ms;
 * the hub's per-heartbeat work (parse, liveness, a batched write flushed every 1 s) does not depend on it.
 */
function hubHeartbeatIntervalMs(p: Params): number {
  return Math.max(5000, Math.ceil((p.seconds * 1000 + p.intervalMs + 3000) / 3));
}

export async function run(argv: string[]): Promise<BenchReport | undefined> {
  const parsed = parseParams(argv);
  if (parsed === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return undefined;
  }
  const p = parsed;
  const phaseMs = p.seconds * 1000;
  const limitMs = 35_000 + 2 * phaseMs + p.agents * 5;
  const deadline = new AbortController();
  const deadlineTimer = setTimeout(
    () => deadline.abort(new Error(`the agents benchmark ran past its limit of ${Math.round(limitMs / 1000)} s`)),
    limitMs,
  );

  const hub = new BenchHub();
  const fleet = new SimFleet(p.agents);
  try {
    return await measure(p, hub, fleet, deadline.signal);
  } catch (err) {
    // Past the deadline, a pending sleep or request fails with a bare AbortError: report the deadline instead.
    const error = deadline.signal.aborted ? deadline.signal.reason : err;
    const tail = hub.logTail(20);
    if (error instanceof Error && tail) error.message += `\n--- last hub log lines ---\n${tail}`;
    throw error;
  } finally {
    clearTimeout(deadlineTimer);
    await fleet.closeAll();
    await hub.stop();
  }
}

async function measure(p: Params, hub: BenchHub, fleet: SimFleet, signal: AbortSignal): Promise<BenchReport> {
  const phaseMs = p.seconds * 1000;
  const hubHeartbeatMs = hubHeartbeatIntervalMs(p);
  const metrics: Metric[] = [];
  const notes: string[] = [];

  await hub.start({
    env: {
      IK_HEARTBEAT_INTERVAL_MS: String(hubHeartbeatMs),
      // Nothing else on the tunnel during the phases: no inventory requests, no pings.
      IK_INVENTORY_INTERVAL_MS: '3600000',
      IK_PING_INTERVAL_MS: '600000',
    },
    nodeArgs: p.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', join(RESULTS_DIR, 'profiles')] : [],
  });
  const pid = hub.pid;
  await sleep(500, undefined, { signal });
  const rssEmpty = processRssMib(pid);

  // Registration: every agent says hello and waits for welcome; each starts heartbeating once welcomed, as a real agent does.
  const registerStarted = performance.now();
  await withTimeout(
    fleet.connectAll(hub.url, hub.joinToken, {
      concurrency: p.concurrency,
      signal,
      onRegistered: (a) => a.startHeartbeats(p.intervalMs, Math.floor((a.index * p.intervalMs) / p.agents)),
    }),
    REGISTER_LIMIT_MS,
    () => `registration did not finish within ${REGISTER_LIMIT_MS / 1000} s (${fleet.registered} of ${p.agents} agents welcomed)`,
    signal,
  );
  const registerS = (performance.now() - registerStarted) / 1000;
  const rssRegistered = processRssMib(pid);
  const latencies = fleet.agents.map((a) => a.registerMs ?? Number.NaN).sort((a, b) => a - b);
  const readyAfterRegister = await readyWorkers(hub, p.agents);

  metrics.push(
    { name: 'agents welcomed', value: fleet.registered, unit: '', target: { op: '=', value: p.agents } },
    { name: 'registration time (first connect → last welcome)', value: registerS, unit: 's', target: { op: '<', value: TARGET_REGISTER_S }, note: `${Math.round(p.agents / registerS)} agents/s` },
    { name: 'hello → welcome latency p50', value: percentile(latencies, 0.5), unit: 'ms' },
    { name: 'hello → welcome latency p99', value: percentile(latencies, 0.99), unit: 'ms' },
    { name: 'workers ready (GET /api/v1/workers)', value: readyAfterRegister, unit: '', target: { op: '=', value: p.agents } },
    { name: 'hub RSS, no agents', value: rssEmpty, unit: 'MiB' },
    { name: 'hub RSS, all registered', value: rssRegistered, unit: 'MiB', target: { op: '<', value: TARGET_RSS_MIB } },
  );

  // Steady phase: wait until every agent has sent at least once and the hub's flush timer cycles.
  await sleep(Math.max(2000, 2 * p.intervalMs), undefined, { signal });
  const steady = await measurePhase(hub, fleet, phaseMs, signal);
  const rssSteady = processRssMib(pid);

  // Idle phase: the same sockets open, heartbeats paused; once the last batch is written, the hub should do almost nothing.
  fleet.pauseHeartbeats();
  await sleep(FLUSH_SETTLE_MS, undefined, { signal });
  const idle = await measurePhase(hub, fleet, phaseMs, signal);
  const rssIdle = processRssMib(pid);
  fleet.startHeartbeats(p.intervalMs);

  // Every heartbeat sent must have reached the hub: pause again, let the last frames land, compare totals.
  await sleep(Math.min(2000, p.intervalMs), undefined, { signal });
  fleet.pauseHeartbeats();
  await sleep(300, undefined, { signal });
  const receivedTotal = counterValue(await hub.get('/metrics'), 'ik_tunnel_messages_total', HEARTBEAT_IN);
  const readyAtEnd = await readyWorkers(hub, p.agents);

  // The divisor is what the agents sent inside the CPU window; the hub's counter, read just outside it, confirms receipt.
  const perHeartbeat = ratio(steady.cpuMs, steady.heartbeatsSent);
  const idleCpuInSteadyWindow =
    idle.cpuMs !== null && steady.cpuMs !== null ? (idle.cpuMs / idle.wallMs) * steady.wallMs : null;
  const netPerHeartbeat =
    steady.cpuMs !== null && idleCpuInSteadyWindow !== null ? ratio(steady.cpuMs - idleCpuInSteadyWindow, steady.heartbeatsSent) : null;

  metrics.push(
    { name: 'hub RSS, after steady heartbeats', value: rssSteady, unit: 'MiB', target: { op: '<', value: TARGET_RSS_MIB } },
    { name: 'heartbeats sent, steady phase', value: steady.heartbeatsSent, unit: '', note: `${Math.round(steady.heartbeatsSent / (steady.wallMs / 1000))}/s, in the CPU window` },
    { name: 'heartbeats received by hub, steady phase', value: steady.heartbeatsReceived, unit: '', note: 'ik_tunnel_messages_total; read just outside the CPU window' },
    { name: 'hub CPU, steady phase', value: percentOfCore(steady.cpuMs, steady.wallMs), unit: '% core' },
    { name: 'hub CPU, idle phase (baseline)', value: percentOfCore(idle.cpuMs, idle.wallMs), unit: '% core', note: 'same sockets, heartbeats paused' },
    { name: 'hub RSS, after idle phase', value: rssIdle, unit: 'MiB', target: { op: '<', value: TARGET_RSS_MIB } },
    { name: 'heartbeats received by hub, idle phase', value: idle.heartbeatsReceived, unit: '', target: { op: '=', value: 0 } },
    { name: 'hub CPU per heartbeat', value: perHeartbeat, unit: 'ms', target: { op: '<', value: TARGET_CPU_PER_HEARTBEAT_MS } },
    { name: 'hub CPU per heartbeat, net of idle', value: netPerHeartbeat, unit: 'ms', target: { op: '<', value: TARGET_CPU_PER_HEARTBEAT_MS } },
    { name: 'bench process CPU, steady phase', value: percentOfCore(steady.benchCpuMs, steady.wallMs), unit: '% core', note: 'load generator, same machine' },
    { name: 'heartbeats lost (sent − received, whole run)', value: fleet.stats.heartbeatsSent - receivedTotal, unit: '', target: { op: '=', value: 0 }, note: `${fleet.stats.heartbeatsSent} sent` },
    { name: 'workers ready at the end', value: readyAtEnd, unit: '', target: { op: '=', value: p.agents } },
    { name: 'tunnels closed by the hub', value: sum(fleet.stats.unexpectedCloses), unit: '', target: { op: '=', value: 0 } },
    { name: 'hub log lines at warn or above', value: sum(hub.problems), unit: '', target: { op: '=', value: 0 } },
  );

  notes.push(
    `each agent: hello with ${GPUS_PER_AGENT} GPUs, then a heartbeat every ${p.intervalMs} ms with usage of its ${GPUS_PER_AGENT} GPUs`,
    `hub IK_HEARTBEAT_INTERVAL_MS=${hubHeartbeatMs} (down after 3 missed), so the ${p.seconds} s idle phase marks no worker down`,
    `hub CPU from /proc/<pid>/stat in ${1000 / clockTicksPerSecond()} ms ticks: ±${formatValue(ratio(2000 / clockTicksPerSecond(), steady.heartbeatsSent), 'ms')} per heartbeat over this phase`,
  );
  if (Object.keys(fleet.stats.unexpectedCloses).length > 0) notes.push(`tunnel closes: ${JSON.stringify(fleet.stats.unexpectedCloses)}`);
  if (Object.keys(fleet.stats.goAways).length > 0) notes.push(`go_away from the hub: ${JSON.stringify(fleet.stats.goAways)}`);
  if (Object.keys(hub.problems).length > 0) notes.push(`hub warnings: ${JSON.stringify(hub.problems)}`);
  if (p.cpuProf) {
    notes.push(`hub CPU profile (whole hub lifetime) written to ${join(RESULTS_DIR, 'profiles')}/ when the hub exits; the profiler's own sampling inflates the CPU figures`);
  }

  return {
    name: 'agents',
    title: description,
    params: { agents: p.agents, seconds: p.seconds, concurrency: p.concurrency, interval_ms: p.intervalMs, hub_heartbeat_interval_ms: hubHeartbeatMs, cpu_prof: p.cpuProf },
    metrics,
    notes,
  };
}

interface PhaseFigures {
  wallMs: number;
  cpuMs: number | null;
  benchCpuMs: number;
  heartbeatsSent: number;
  heartbeatsReceived: number;
}

/** Hub CPU and heartbeats over one phase; /metrics is read just outside the CPU window so its own cost is not counted. */
async function measurePhase(hub: BenchHub, fleet: SimFleet, phaseMs: number, signal: AbortSignal): Promise<PhaseFigures> {
  const receivedBefore = counterValue(await hub.get('/metrics'), 'ik_tunnel_messages_total', HEARTBEAT_IN);
  const sentBefore = fleet.stats.heartbeatsSent;
  const cpuBefore = processCpuMs(hub.pid);
  const benchBefore = process.cpuUsage();
  const started = performance.now();
  await sleep(phaseMs, undefined, { signal });
  const cpuAfter = processCpuMs(hub.pid);
  const wallMs = performance.now() - started;
  const bench = process.cpuUsage(benchBefore);
  const sentAfter = fleet.stats.heartbeatsSent;
  const receivedAfter = counterValue(await hub.get('/metrics'), 'ik_tunnel_messages_total', HEARTBEAT_IN);
  return {
    wallMs,
    cpuMs: cpuBefore !== null && cpuAfter !== null ? cpuAfter - cpuBefore : null,
    benchCpuMs: (bench.user + bench.system) / 1000,
    heartbeatsSent: sentAfter - sentBefore,
    heartbeatsReceived: receivedAfter - receivedBefore,
  };
}

/** How many of the simulated workers the hub lists as ready (the data dir is fresh: no other workers exist). */
async function readyWorkers(hub: BenchHub, expected: number): Promise<number> {
  const body = listOf(workerViewSchema).parse(JSON.parse(await hub.get('/api/v1/workers')));
  if (body.items.length !== expected) throw new Error(`GET /api/v1/workers listed ${body.items.length} workers, expected ${expected}`);
  return body.items.filter((w) => w.state === 'ready' && w.name.startsWith('sim-')).length;
}

async function withTimeout<T>(work: Promise<T>, ms: number, message: () => string, signal: AbortSignal): Promise<T> {
  const timer = new AbortController();
  const onAbort = () => timer.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await Promise.race([
      work,
      sleep(ms, undefined, { signal: timer.signal }).then(() => {
        throw new Error(message());
      }),
    ]);
  } finally {
    signal.removeEventListener('abort', onAbort);
    timer.abort();
  }
}

function percentile(sorted: number[], q: number): number | null {
  const finite = sorted.filter(Number.isFinite);
  if (finite.length === 0) return null;
  return finite[Math.min(finite.length - 1, Math.floor(q * finite.length))]!;
}

function ratio(a: number | null, b: number): number | null {
  return a === null || b <= 0 ? null : a / b;
}

function percentOfCore(cpuMs: number | null, wallMs: number): number | null {
  return cpuMs === null ? null : (100 * cpuMs) / wallMs;
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}
