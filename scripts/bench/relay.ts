// Benchmark: what the hub's relay adds. The same small chat completion sent directly to a simulator, through nginx (a
// keep-alive reverse proxy in front of that same simulator) and through the hub (hub → agent tunnel → the replica's
// own simulator), at several concurrencies; streamed tokens per second through one hub process.
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { intFlag, parseCommandArgs, UsageError } from '../../shared/cli-args.ts';
import { runNodeLoad, runWrk, streamTokens, writeWrkScript, type LoadResult, type StreamResult, type Target } from './relay-load.ts';
import { findExecutable, UsageWatch, type ProcUsage } from './relay-procs.ts';
import { monotonicUs, profilesSince, renderSummary, summarizeProfile } from './relay-profile.ts';
import { HUB_REQUEST_TIMEOUT_S, MODEL, NGINX_INSTALL_HINT, RelayStack } from './relay-stack.ts';
import { RESULTS_DIR, formatValue, type BenchReport, type Metric } from './report.ts';

export const description = 'relay overhead: hub vs a direct call vs nginx at c=1/16/64, and streamed tokens/s through the hub';

export const USAGE = `usage: npm run bench -- relay [--seconds S] [--warmup-seconds W] [--concurrency LIST] [--stream-seconds S]
                             [--stream-tokens N] [--load auto|wrk|node] [--wrk-threads T] [--cpu-prof] [--skip-nginx]
  --seconds S          length of each measured run (default 5)
  --warmup-seconds W   warm-up before each measured run, same path and concurrency (default 1)
  --concurrency LIST   comma-separated concurrencies (default 1,16,64; the targets are checked at 16)
  --stream-seconds S   length of each streamed-token run, c=16 (default 4)
  --stream-tokens N    max_tokens of each streamed completion (default 512)
  --load TOOL          request load: wrk (needs \`apt-get install -y wrk\`), node (a keep-alive Node client in this
                       process), auto: wrk when installed (default)
  --wrk-threads T      wrk threads (default 1: this machine has 2 cores, shared with the processes measured)
  --cpu-prof           run the hub and the agent under node --cpu-prof; profiles in bench-results/profiles/, and a
                       summary of their hot functions (inside the hub runs) is printed
  --skip-nginx         leave nginx out (as where it is not installed: \`apt-get install -y nginx\`)
  Paths: direct (one ik-sim), nginx (worker_processes 1, upstream keepalive 64, proxy_buffering off, in front of
  that same ik-sim), hub (hub + one agent, process runtime, the replica's own ik-sim). Simulator: TTFT 0, ITL 0.`;

const options = {
  seconds: { type: 'string' },
  'warmup-seconds': { type: 'string' },
  concurrency: { type: 'string' },
  'stream-seconds': { type: 'string' },
  'stream-tokens': { type: 'string' },
  load: { type: 'string' },
  'wrk-threads': { type: 'string' },
  'cpu-prof': { type: 'boolean' },
  'skip-nginx': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const TARGET_ADDED_P50_MS = 1;
const TARGET_ADDED_P99_MS = 3;
const TARGET_HUB_OVER_NGINX_RPS = 0.5;
const TARGET_STREAM_TOKENS_PER_S = 50_000;
const TARGET_CONCURRENCY = 16;
const STREAM_CONCURRENCY = 16;
/** Start-up of the simulator, nginx, hub, agent and the replica, generously. */
const SETUP_LIMIT_MS = 60_000;

interface Params {
  seconds: number;
  warmupSeconds: number;
  concurrency: number[];
  streamSeconds: number;
  streamTokens: number;
  load: 'wrk' | 'node';
  loadWhy: string;
  wrk: string | null;
  wrkThreads: number;
  cpuProf: boolean;
  skipNginx: boolean;
}

type PathName = 'direct' | 'nginx' | 'hub';
const PATHS: PathName[] = ['direct', 'nginx', 'hub'];

interface Run {
  c: number;
  path: PathName;
  load: LoadResult;
  usage: Record<string, ProcUsage>;
  machine: ProcUsage;
}

interface StreamRun {
  path: PathName;
  result: StreamResult;
  usage: Record<string, ProcUsage>;
  machine: ProcUsage;
}

/** CPU the rest of the machine used over a run (other people's work): machine busy time less ours, % of one core. */
function othersPct(usage: Record<string, ProcUsage>, machine: ProcUsage, loadCpuMs: number | null, seconds: number): number | null {
  if (machine.cpuMs === null) return null;
  const ours = Object.values(usage).reduce((a, u) => a + (u.cpuMs ?? 0), 0) + (loadCpuMs ?? 0);
  return Math.max(0, (100 * (machine.cpuMs - ours)) / 1000 / seconds);
}

function parseParams(argv: string[]): Params | 'help' {
  const { values } = parseCommandArgs('npm run bench -- relay', argv, options);
  if (values.help) return 'help';
  const concurrency = (values.concurrency ?? '1,16,64').split(',').map((s) => intFlag('concurrency', s.trim(), 1, 1024)!);
  const wanted = values.load ?? 'auto';
  if (!['auto', 'wrk', 'node'].includes(wanted)) throw new UsageError(`--load expects auto, wrk or node, got "${wanted}"`);
  const wrk = findExecutable('wrk');
  if (wanted === 'wrk' && !wrk) throw new UsageError('--load wrk: wrk is not installed (`apt-get install -y wrk`)');
  const load = wanted === 'node' || !wrk ? 'node' : 'wrk';
  const loadWhy =
    load === 'wrk'
      ? `wrk (${wrk})`
      : wanted === 'node'
        ? 'a keep-alive Node client in the bench process (--load node)'
        : 'a keep-alive Node client in the bench process: wrk is not installed (`apt-get install -y wrk`), and the Node client costs more CPU on the same cores';
  return {
    seconds: intFlag('seconds', values.seconds, 1, 30) ?? 5,
    warmupSeconds: intFlag('warmup-seconds', values['warmup-seconds'], 0, 10) ?? 1,
    concurrency: [...new Set(concurrency)],
    streamSeconds: intFlag('stream-seconds', values['stream-seconds'], 1, 30) ?? 4,
    streamTokens: intFlag('stream-tokens', values['stream-tokens'], 1, 4000) ?? 512,
    load,
    loadWhy,
    wrk,
    wrkThreads: intFlag('wrk-threads', values['wrk-threads'], 1, 16) ?? 1,
    cpuProf: values['cpu-prof'] ?? false,
    skipNginx: values['skip-nginx'] ?? false,
  };
}

const progress = (line: string) => process.stderr.write(`${line}\n`);

export async function run(argv: string[]): Promise<BenchReport | undefined> {
  const parsed = parseParams(argv);
  if (parsed === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return undefined;
  }
  const p = parsed;
  const measuredS = PATHS.length * p.concurrency.length * (p.seconds + p.warmupSeconds) + PATHS.length * (p.streamSeconds + 1);
  const limitMs = SETUP_LIMIT_MS + measuredS * 1300 + 30_000;
  const deadline = new AbortController();
  const deadlineTimer = setTimeout(() => deadline.abort(new Error(`the relay benchmark ran past its limit of ${Math.round(limitMs / 1000)} s`)), limitMs);
  const onSignal = (signal: NodeJS.Signals) => {
    // The first ^C stops the measurement and cleans up; a second one leaves at once.
    if (deadline.signal.aborted) process.exit(130);
    progress(`relay: ${signal}: stopping every process this benchmark started`);
    deadline.abort(new Error(`interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const profileDir = join(RESULTS_DIR, 'profiles');
  const startedWall = Date.now();
  const stack = new RelayStack();
  const hubWindows: Array<[number, number]> = [];
  let report: BenchReport;
  let hubPid = 0;
  let agentPid = 0;
  try {
    report = await measure(p, stack, deadline.signal, hubWindows, p.cpuProf ? profileDir : undefined);
    hubPid = stack.hub.pid;
    agentPid = stack.agent?.pid ?? 0;
  } catch (err) {
    const error = deadline.signal.aborted ? deadline.signal.reason : err;
    const tail = stack.hub.url ? stack.hub.logTail(20) : '';
    if (error instanceof Error && tail) error.message += `\n--- last hub log lines ---\n${tail}`;
    throw error;
  } finally {
    clearTimeout(deadlineTimer);
    progress('relay: stopping the agent, its replica, the hub, nginx and the simulator');
    const stopping = performance.now();
    await stack.stop();
    progress(`relay: all stopped in ${((performance.now() - stopping) / 1000).toFixed(1)} s`);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  if (p.cpuProf) {
    // The hub and the agent wrote their profiles on exit (node names them CPU.<date>.<time>.<pid>.…).
    const files = profilesSince(profileDir, startedWall - 1000);
    for (const [label, pid] of [['hub', hubPid], ['agent', agentPid]] as const) {
      const file = files.find((f) => f.includes(`.${pid}.`));
      if (!file) {
        report.notes.push(`no ${label} CPU profile found in ${profileDir}`);
        continue;
      }
      const summary = summarizeProfile(file, hubWindows);
      process.stdout.write(`\n${renderSummary(`${label} CPU profile`, summary)}\n`);
      report.notes.push(
        `${label} profile ${summary.file}: top self time inside the hub runs: ${summary.functions
          .slice(0, 6)
          .map((f) => `${f.name} ${f.pct.toFixed(1)}%`)
          .join('; ')}`,
      );
    }
  }
  return report;
}

async function measure(p: Params, stack: RelayStack, signal: AbortSignal, hubWindows: Array<[number, number]>, cpuProfDir: string | undefined): Promise<BenchReport> {
  const load0 = loadavg();
  progress('relay: starting the direct simulator, nginx, and hub + agent + workload');
  await stack.startDirect();
  if (p.skipNginx) stack.nginxPath = null;
  const haveNginx = await stack.startNginx();
  await stack.startHub({ cpuProfDir }, progress);
  signal.throwIfAborted();

  const headers = { 'content-type': 'application/json', authorization: `Bearer ${stack.dataKey}` };
  const chat = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Say hello in one short sentence.' }], max_tokens: 16 });
  const streamed = JSON.stringify({
    model: MODEL,
    messages: [{ role: 'user', content: 'Write a long story about a lighthouse keeper.' }],
    max_tokens: p.streamTokens,
    stream: true,
    stream_options: { include_usage: true },
  });
  const base: Record<PathName, string | null> = { direct: stack.directUrl, nginx: haveNginx ? stack.nginxUrl : null, hub: stack.hubBaseUrl };
  const paths = PATHS.filter((path) => base[path] !== null);
  const target = (path: PathName, body: string): Target => ({ url: `${base[path]}/v1/chat/completions`, headers, body });
  const pidsOf = (path: PathName): Record<string, number[]> => {
    const sim = stack.sim?.pid;
    if (path === 'direct') return { sim: sim ? [sim] : [] };
    if (path === 'nginx') return { nginx: stack.nginxWorkers(), sim: sim ? [sim] : [] };
    return { hub: [stack.hub.pid], agent: stack.agent?.pid ? [stack.agent.pid] : [], replica: stack.replicaPid ? [stack.replicaPid] : [] };
  };
  const scripts = Object.fromEntries(paths.map((path) => [path, p.wrk ? writeWrkScript(stack.tmp, path, target(path, chat)) : '']));
  const loadOnce = (path: PathName, c: number, seconds: number) =>
    p.load === 'wrk' ? runWrk(p.wrk!, scripts[path]!, target(path, chat).url, c, seconds, p.wrkThreads, signal) : runNodeLoad(target(path, chat), c, seconds, signal);

  const runs: Run[] = [];
  for (const c of p.concurrency) {
    for (const path of paths) {
      signal.throwIfAborted();
      if (p.warmupSeconds > 0) await loadOnce(path, c, p.warmupSeconds);
      const watch = new UsageWatch(pidsOf(path));
      const t0 = monotonicUs();
      watch.start();
      const result = await loadOnce(path, c, p.seconds);
      const usage = watch.stop();
      if (path === 'hub') hubWindows.push([t0, monotonicUs()]);
      runs.push({ c, path, load: result, usage, machine: watch.machine });
      progress(
        `  c=${String(c).padEnd(3)} ${path.padEnd(6)} p50 ${fmt(result.p50Ms, 'ms')}  p99 ${fmt(result.p99Ms, 'ms')}  ${Math.round(result.rps)} req/s  ${result.errors} errors  ${usageLine(usage)} machine ${fmt(watch.machine.cpuPct, '%')} others ${fmt(othersPct(usage, watch.machine, result.loadCpuMs, result.seconds), '%')}`,
      );
    }
  }

  // wrk ends each run with requests in flight, closing their connections: the hub should let go of them at once.
  await sleep(1000, undefined, { signal });
  const inFlightAfter = await stack.inFlight();

  const streams: StreamRun[] = [];
  for (const path of paths) {
    signal.throwIfAborted();
    await streamTokens(target(path, streamed), STREAM_CONCURRENCY, 1, p.streamTokens, signal);
    const watch = new UsageWatch(pidsOf(path));
    const t0 = monotonicUs();
    watch.start();
    const result = await streamTokens(target(path, streamed), STREAM_CONCURRENCY, p.streamSeconds, p.streamTokens, signal);
    const usage = watch.stop();
    if (path === 'hub') hubWindows.push([t0, monotonicUs()]);
    streams.push({ path, result, usage, machine: watch.machine });
    progress(
      `  stream ${path.padEnd(6)} ${Math.round(result.tokensPerS)} tokens/s  ${result.completed} streams  ${result.errors} errors  ${usageLine(usage)} machine ${fmt(watch.machine.cpuPct, '%')} others ${fmt(othersPct(usage, watch.machine, result.loadCpuMs, result.seconds), '%')}`,
    );
  }

  return buildReport(p, stack, runs, streams, haveNginx, load0, inFlightAfter);
}

function usageLine(usage: Record<string, ProcUsage>): string {
  return Object.entries(usage)
    .map(([name, u]) => `${name} ${fmt(u.cpuPct, '%')}`)
    .join(' ');
}

function fmt(v: number | null, unit: string): string {
  return formatValue(v, unit === '%' ? '' : unit) + (unit === '%' ? '%' : '');
}

function buildReport(p: Params, stack: RelayStack, runs: Run[], streams: StreamRun[], haveNginx: boolean, load0: number[], inFlightAfter: number): BenchReport {
  const metrics: Metric[] = [];
  const nginxMissing = p.skipNginx ? 'nginx left out (--skip-nginx)' : NGINX_INSTALL_HINT;
  const notes: string[] = [];
  const find = (c: number, path: PathName) => runs.find((r) => r.c === c && r.path === path);
  const perRequestMs = (u: ProcUsage | undefined, r: Run) => (u?.cpuMs != null && r.load.requests > 0 ? u.cpuMs / r.load.requests : null);
  const cpuNote = (r: Run) =>
    Object.entries(r.usage)
      .map(([name, u]) => `${name} ${formatValue(u.cpuPct, '')}% core`)
      .concat(r.load.loadCpuMs !== null ? [`load ${formatValue((100 * r.load.loadCpuMs) / 1000 / r.load.seconds, '')}% core`] : [])
      .concat([`other processes ${formatValue(othersPct(r.usage, r.machine, r.load.loadCpuMs, r.load.seconds), '')}% core`])
      .join(', ');

  for (const c of p.concurrency) {
    for (const path of PATHS) {
      const r = find(c, path);
      const label = `c=${c} ${path}`;
      if (!r) {
        const note = path === 'nginx' && !haveNginx ? nginxMissing : 'not measured';
        metrics.push({ name: `${label}: latency p50`, value: null, unit: 'ms', note }, { name: `${label}: latency p99`, value: null, unit: 'ms' }, { name: `${label}: requests/s`, value: null, unit: '/s' });
        continue;
      }
      const errNote = r.load.errors > 0 ? JSON.stringify(r.load.errorDetail) : `${r.load.requests} requests in ${r.load.seconds.toFixed(1)} s`;
      metrics.push(
        { name: `${label}: latency p50`, value: round(r.load.p50Ms, 3), unit: 'ms' },
        { name: `${label}: latency p99`, value: round(r.load.p99Ms, 3), unit: 'ms' },
        { name: `${label}: requests/s`, value: Math.round(r.load.rps), unit: '/s', note: cpuNote(r) },
        { name: `${label}: errors`, value: r.load.errors, unit: '', target: { op: '=', value: 0 }, note: errNote },
      );
      if (path === 'hub') {
        const hub = r.usage.hub;
        const agent = r.usage.agent;
        metrics.push(
          { name: `${label}: hub CPU`, value: round(hub?.cpuPct ?? null, 1), unit: '% core', note: `${formatValue(perRequestMs(hub, r), 'ms')} CPU per request` },
          { name: `${label}: hub RSS (max)`, value: round(hub?.rssMaxMib ?? null, 1), unit: 'MiB' },
          { name: `${label}: agent CPU`, value: round(agent?.cpuPct ?? null, 1), unit: '% core', note: `${formatValue(perRequestMs(agent, r), 'ms')} CPU per request; agent RSS max ${formatValue(agent?.rssMaxMib ?? null, 'MiB')}` },
        );
      }
    }
    // How the hub compares at this concurrency.
    const hub = find(c, 'hub');
    const direct = find(c, 'direct');
    const nginx = find(c, 'nginx');
    const atTarget = c === TARGET_CONCURRENCY;
    metrics.push(
      { name: `c=${c} hub − direct: added p50`, value: round(diff(hub?.load.p50Ms, direct?.load.p50Ms), 3), unit: 'ms', ...(atTarget ? { target: { op: '<', value: TARGET_ADDED_P50_MS } } : {}) },
      { name: `c=${c} hub − direct: added p99`, value: round(diff(hub?.load.p99Ms, direct?.load.p99Ms), 3), unit: 'ms', ...(atTarget ? { target: { op: '<', value: TARGET_ADDED_P99_MS } } : {}) },
      { name: `c=${c} hub/direct: requests/s`, value: round(ratio(hub?.load.rps, direct?.load.rps), 3), unit: '×', note: `p50 ×${formatValue(ratio(hub?.load.p50Ms, direct?.load.p50Ms), '')}, p99 ×${formatValue(ratio(hub?.load.p99Ms, direct?.load.p99Ms), '')}` },
      {
        name: `c=${c} hub/nginx: requests/s`,
        value: round(ratio(hub?.load.rps, nginx?.load.rps), 3),
        unit: '×',
        ...(atTarget ? { target: { op: '>=', value: TARGET_HUB_OVER_NGINX_RPS } } : {}),
        note: nginx ? `p50 ×${formatValue(ratio(hub?.load.p50Ms, nginx.load.p50Ms), '')}, p99 ×${formatValue(ratio(hub?.load.p99Ms, nginx.load.p99Ms), '')}` : haveNginx ? 'not measured' : nginxMissing,
      },
    );
  }
  if (!p.concurrency.includes(TARGET_CONCURRENCY)) {
    metrics.push(
      { name: `c=${TARGET_CONCURRENCY} hub − direct: added p50`, value: null, unit: 'ms', target: { op: '<', value: TARGET_ADDED_P50_MS }, note: `c=${TARGET_CONCURRENCY} was not run (--concurrency)` },
      { name: `c=${TARGET_CONCURRENCY} hub − direct: added p99`, value: null, unit: 'ms', target: { op: '<', value: TARGET_ADDED_P99_MS } },
      { name: `c=${TARGET_CONCURRENCY} hub/nginx: requests/s`, value: null, unit: '×', target: { op: '>=', value: TARGET_HUB_OVER_NGINX_RPS } },
    );
  }

  const streamOf = (path: PathName) => streams.find((s) => s.path === path);
  for (const path of PATHS) {
    const s = streamOf(path);
    const name = `streamed tokens/s, c=${STREAM_CONCURRENCY}, ${path}`;
    if (!s) {
      metrics.push({ name, value: null, unit: '/s', note: path === 'nginx' && !haveNginx ? nginxMissing : 'not measured', ...(path === 'hub' ? { target: { op: '>=', value: TARGET_STREAM_TOKENS_PER_S } } : {}) });
      continue;
    }
    const r = s.result;
    metrics.push({
      name,
      value: Math.round(r.tokensPerS),
      unit: '/s',
      ...(path === 'hub' ? { target: { op: '>=', value: TARGET_STREAM_TOKENS_PER_S } } : {}),
      note: `${r.tokens} token chunks in ${r.seconds.toFixed(1)} s, ${r.completed} streams completed, TTFT p50 ${formatValue(r.ttftP50Ms, 'ms')}; ${Object.entries(s.usage)
        .map(([n, u]) => `${n} ${formatValue(u.cpuPct, '')}% core`)
        .join(', ')}, other processes ${formatValue(othersPct(s.usage, s.machine, r.loadCpuMs, r.seconds), '')}% core`,
    });
    metrics.push({ name: `streamed, ${path}: errors`, value: r.errors, unit: '', target: { op: '=', value: 0 }, ...(r.errors > 0 ? { note: JSON.stringify(r.errorDetail) } : {}) });
  }
  const hubStream = streamOf('hub');
  metrics.push(
    { name: 'streamed tokens/s hub/direct', value: round(ratio(hubStream?.result.tokensPerS, streamOf('direct')?.result.tokensPerS), 3), unit: '×' },
    { name: 'streamed tokens/s hub/nginx', value: round(ratio(hubStream?.result.tokensPerS, streamOf('nginx')?.result.tokensPerS), 3), unit: '×' },
    {
      name: 'streamed: hub CPU per 1000 tokens',
      value: round(hubStream?.usage.hub?.cpuMs != null && hubStream.result.tokens > 0 ? (1000 * hubStream.usage.hub.cpuMs) / hubStream.result.tokens : null, 2),
      unit: 'ms',
      note: `agent ${formatValue(hubStream?.usage.agent?.cpuMs != null && hubStream.result.tokens > 0 ? (1000 * hubStream.usage.agent.cpuMs) / hubStream.result.tokens : null, 'ms')} per 1000 tokens; hub RSS max ${formatValue(hubStream?.usage.hub?.rssMaxMib ?? null, 'MiB')}`,
    },
    {
      name: 'hub: requests still in flight 1 s after the load',
      value: inFlightAfter,
      unit: '',
      target: { op: '=', value: 0 },
      note: `ik_requests_in_flight, read 1 s after the last request run (its client closed connections with requests in flight); the bench's hub runs with IK_REQUEST_TIMEOUT_S=${HUB_REQUEST_TIMEOUT_S}, which ends any left over`,
    },
    { name: 'hub log lines at warn or above', value: Object.values(stack.hub.problems).reduce((a, b) => a + b, 0), unit: '', target: { op: '=', value: 0 }, ...(Object.keys(stack.hub.problems).length > 0 ? { note: JSON.stringify(stack.hub.problems) } : {}) },
  );

  notes.push(
    `request load: ${p.loadWhy}${p.load === 'wrk' ? `, ${p.wrkThreads} thread(s)` : ''}; every path gets the same chat completion JSON (max_tokens 16) and the same headers (the data key too); streamed runs use a Node client (max_tokens ${p.streamTokens}, include_usage, token chunks counted as they arrive inside the window; streams still open at its end run to completion, uncounted but checked)`,
    'direct: one ik-sim; nginx: worker_processes 1, upstream keepalive 64, proxy_http_version 1.1, proxy_buffering off, in front of that same ik-sim; hub: client → hub → agent tunnel (WebSocket, one stream per request) → a new TCP connection to the replica\'s own ik-sim',
    `CPU in "% core" from /proc/<pid>/stat over each measured run (${cpus().length} cores here, shared by the load generator, the proxy and the simulator(s): the hub path runs 4 busy processes (load, hub, agent, replica) where the direct path runs 2, so its figures include that contention); "other processes": /proc/stat busy time less ours, i.e. work on this machine that is not part of the benchmark`,
    `load average before the run: ${load0.map((x) => x.toFixed(2)).join(' ')} (other work on this machine makes every figure noisier)`,
    'targets (c=16): the hub adds ≤ 1 ms at p50 and ≤ 3 ms at p99 over direct (the table shows them as strict <), reaches ≥ 50% of nginx\'s requests/s; ≥ 50,000 streamed tokens/s through the hub',
  );
  if (!haveNginx) notes.push(`${nginxMissing}; the nginx figures are n/a and the hub/nginx target counts as missed`);
  if (inFlightAfter > 0) {
    notes.push(
      `the hub still counted ${inFlightAfter} request(s) in flight after the load had stopped: requests whose client left while the hub waited for the backend's answer are held until the request timeout (their timer keeps a hub without this bench's short IK_REQUEST_TIMEOUT_S from exiting on SIGTERM); the "request timed out" warnings are those requests ending`,
    );
  }
  return {
    name: 'relay',
    title: description,
    params: {
      seconds: p.seconds,
      warmup_seconds: p.warmupSeconds,
      concurrency: p.concurrency.join(','),
      stream_concurrency: STREAM_CONCURRENCY,
      stream_seconds: p.streamSeconds,
      stream_tokens: p.streamTokens,
      load: p.load,
      wrk_threads: p.load === 'wrk' ? p.wrkThreads : 0,
      nginx: haveNginx,
      cpu_prof: p.cpuProf,
    },
    metrics,
    notes,
  };
}

function diff(a: number | null | undefined, b: number | null | undefined): number | null {
  return a == null || b == null ? null : a - b;
}

function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return a == null || b == null || b === 0 ? null : a / b;
}

function round(v: number | null, digits: number): number | null {
  if (v === null || !Number.isFinite(v)) return null;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
