// What the relay benchmark measures, started on 127.0.0.1 with free ports: a simulator called directly, nginx as a
// keep-alive reverse proxy in front of that same simulator, and a hub + one agent (process runtime) whose replica runs
// a simulator of its own. stop() ends every process (the agent's replica process groups too), also after a failure.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BenchHub } from './hub-process.ts';
import { childPids, findExecutable, freePort, killGroup, Proc } from './relay-procs.ts';
import { ROOT } from './report.ts';

export const MODEL = 'Qwen/Qwen2.5-0.5B-Instruct';
export const WORKLOAD = 'relay-bench';
export const PROJECT = 'default';
/** The simulator as fast as it goes: no per-request log line, no time to first token, no inter-token latency. */
export const SIM_ENV = { IK_SIM_ACCESS_LOG: 'off', IK_SIM_TTFT_MS: '0', IK_SIM_ITL_MS: '0' } as const;
export const NGINX_INSTALL_HINT = 'nginx is not installed: `apt-get install -y nginx` (Debian/Ubuntu) puts it in /usr/sbin/nginx';

const IK = join(ROOT, 'scripts/ik');
const IK_SIM = join(ROOT, 'scripts/ik-sim');
const FAKE_NVIDIA_SMI = join(ROOT, 'test/fake-nvidia-smi/nvidia-smi');
const REQUEST_TIMEOUT_MS = 10_000;
export const HUB_REQUEST_TIMEOUT_S = 5;

export interface ProfileOptions {
  /** Directory for node --cpu-prof of the hub and the agent; undefined: no profiling. */
  cpuProfDir?: string;
}

export class RelayStack {
  readonly tmp = mkdtempSync(join(tmpdir(), 'ik-bench-relay-'));
  sim: Proc | undefined;
  simPort = 0;
  nginx: Proc | undefined;
  nginxPort = 0;
  nginxPath: string | null = findExecutable('nginx');
  readonly hub = new BenchHub();
  agent: Proc | undefined;
  readonly agentDir = join(this.tmp, 'agent');
  dataKey = '';
  replicaPid: number | null = null;
  replicaId = '';
  private stopped = false;

  get directUrl(): string {
    return `http://127.0.0.1:${this.simPort}`;
  }

  get nginxUrl(): string {
    return `http://127.0.0.1:${this.nginxPort}`;
  }

  get hubBaseUrl(): string {
    return `${this.hub.url}/endpoint/${PROJECT}/${WORKLOAD}`;
  }

  /** The nginx worker processes (what does the proxying), for CPU figures. */
  nginxWorkers(): number[] {
    const pid = this.nginx?.pid;
    return pid === undefined ? [] : childPids(pid);
  }

  async startDirect(): Promise<void> {
    this.sim = Proc.spawn('the direct simulator', process.execPath, [IK_SIM, 'vllm', 'serve', MODEL, '--host', '127.0.0.1', '--port', '0'], {
      cwd: ROOT,
      env: { ...process.env, ...SIM_ENV },
    });
    const m = await this.sim.waitFor(/Uvicorn running on http:\/\/127\.0\.0\.1:(\d+)/, 20_000);
    this.simPort = Number(m[1]);
    await this.sim.waitFor(/Application startup complete/, 20_000);
  }

  /** nginx in front of the direct simulator: one worker, keep-alive both sides, no buffering (SSE passes as it comes). */
  async startNginx(): Promise<boolean> {
    if (!this.nginxPath) return false;
    const dir = join(this.tmp, 'nginx');
    mkdirSync(join(dir, 'temp'), { recursive: true });
    this.nginxPort = await freePort();
    const conf = [
      'daemon off;',
      'master_process on;',
      'worker_processes 1;',
      // As root, workers would otherwise run as nobody, who cannot open files in this 0700 temp dir.
      ...(process.getuid?.() === 0 ? ['user root;'] : []),
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'error.log')} warn;`,
      'events { worker_connections 4096; }',
      'http {',
      '  access_log off;',
      `  client_body_temp_path ${join(dir, 'temp/body')};`,
      `  proxy_temp_path ${join(dir, 'temp/proxy')};`,
      `  fastcgi_temp_path ${join(dir, 'temp/fastcgi')};`,
      `  uwsgi_temp_path ${join(dir, 'temp/uwsgi')};`,
      `  scgi_temp_path ${join(dir, 'temp/scgi')};`,
      '  keepalive_requests 1000000;',
      '  keepalive_timeout 75s;',
      `  upstream sim { server 127.0.0.1:${this.simPort}; keepalive 64; keepalive_requests 1000000; }`,
      '  server {',
      `    listen 127.0.0.1:${this.nginxPort};`,
      '    location / {',
      '      proxy_pass http://sim;',
      '      proxy_http_version 1.1;',
      '      proxy_set_header Connection "";',
      '      proxy_buffering off;',
      '    }',
      '  }',
      '}',
    ];
    writeFileSync(join(dir, 'nginx.conf'), `${conf.join('\n')}\n`);
    this.nginx = Proc.spawn('nginx', this.nginxPath, ['-p', dir, '-c', 'nginx.conf', '-e', join(dir, 'error.log')]);
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (!this.nginx.running) {
        let log = '';
        try {
          log = readFileSync(join(dir, 'error.log'), 'utf8').slice(-2000);
        } catch {
          // none written
        }
        throw new Error(`nginx exited at start:\n${this.nginx.tail()}\n${log}`);
      }
      try {
        const res = await call(`${this.nginxUrl}/health`, 'GET', {}, undefined, 1000);
        if (res.status === 200) return true;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`nginx did not answer /health within 10 s:\n${this.nginx.tail()}`);
      await sleep(50);
    }
  }

  /** Hub, agent, workload with its replica ready, a data key; resolves once a request through the hub answers 200. */
  async startHub(profile: ProfileOptions, log: (line: string) => void): Promise<void> {
    const nodeArgs = profile.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', profile.cpuProfDir] : [];
    // Requests a client gave up on while the hub waited for the backend's answer stay "in flight" until the request
    // timeout (see inFlightAfterLoad); a short one frees them and lets the hub exit within BenchHub's grace (a SIGKILLed
    // hub writes no CPU profile). Every request and stream here takes well under a second.
    await this.hub.start({ nodeArgs, env: { IK_REQUEST_TIMEOUT_S: String(HUB_REQUEST_TIMEOUT_S) } });
    this.agent = Proc.spawn(
      'the agent',
      process.execPath,
      [...nodeArgs, IK, 'agent', '--hub', this.hub.url, '--token', this.hub.joinToken, '--name', WORKLOAD, '--data-dir', this.agentDir],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          IK_HUB_URL: '',
          IK_TOKEN: '',
          IK_LOG_LEVEL: 'info',
          IK_RUNTIME: 'process',
          IK_NVIDIA_SMI: FAKE_NVIDIA_SMI,
          IK_FAKE_SMI: 'h100-x2',
          IK_PROCESS_MAP: JSON.stringify({ vllm: `${IK_SIM} vllm` }),
        },
      },
    );
    await this.poll('the agent to show as a ready worker', 30_000, async () => {
      const body = (await this.admin('GET', '/api/v1/workers')).body as { items?: Array<{ name: string; state: string }> };
      if (!Array.isArray(body.items)) return undefined;
      return body.items.some((w) => w.name === WORKLOAD && w.state === 'ready') || undefined;
    });
    log('  worker ready; ensuring the workload');
    const spec = { slug: WORKLOAD, model: MODEL, backend: 'vllm', command: `vllm serve ${MODEL}`, env: { ...SIM_ENV } };
    const put = await this.admin('PUT', `/api/v1/projects/${PROJECT}/workloads/${WORKLOAD}`, spec);
    if (put.status !== 200 && put.status !== 201) throw new Error(`ensure answered ${put.status}: ${JSON.stringify(put.body)}`);
    const replica = await this.poll('the replica to be ready', 40_000, async () => {
      const w = (await this.admin('GET', `/api/v1/projects/${PROJECT}/workloads/${WORKLOAD}`)).body as {
        replicas: Array<{ id: string; state: string; pid: number | null }>;
      };
      const r = w.replicas.find((x) => x.state === 'ready');
      return r ?? undefined;
    });
    this.replicaPid = replica.pid;
    this.replicaId = replica.id;
    const key = await this.admin('POST', `/api/v1/projects/${PROJECT}/workloads/${WORKLOAD}/keys`, { name: 'relay-bench' });
    const secret = (key.body as { secret?: unknown }).secret;
    if (key.status !== 201 && key.status !== 200) throw new Error(`creating a data key answered ${key.status}: ${JSON.stringify(key.body)}`);
    if (typeof secret !== 'string') throw new Error('the data key response has no secret');
    this.dataKey = secret;
    log('  replica ready; waiting for the data plane to route to it');
    await this.poll('a chat completion through the hub to answer 200', 20_000, async () => {
      const res = await call(
        `${this.hubBaseUrl}/v1/chat/completions`,
        'POST',
        { 'content-type': 'application/json', authorization: `Bearer ${this.dataKey}` },
        JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'ping' }], max_tokens: 4 }),
      );
      const text = res.text;
      if (res.status !== 200) return undefined;
      const body = JSON.parse(text) as { choices?: unknown[] };
      if (!Array.isArray(body.choices) || res.headers['x-ik-replica'] !== this.replicaId) {
        throw new Error(`the hub answered 200 but not from replica ${this.replicaId}: ${text.slice(0, 300)}`);
      }
      return true;
    });
  }

  /** What the hub's ik_requests_in_flight gauge says for this workload (0 once every request has ended). */
  async inFlight(): Promise<number> {
    const res = await call(`${this.hub.url}/metrics`, 'GET', { authorization: `Bearer ${this.hub.adminToken}` });
    if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
    let n = 0;
    for (const line of res.text.split('\n')) {
      if (line.startsWith('ik_requests_in_flight{') && line.includes(`workload="${WORKLOAD}"`)) n += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return n;
  }

  /** The replica process groups recorded in the agent's data dir (the process runtime's records), plus the one the API named. */
  replicaPids(): number[] {
    const pids = new Set<number>();
    if (this.replicaPid !== null) pids.add(this.replicaPid);
    const dir = join(this.agentDir, 'replicas');
    let files: string[] = [];
    try {
      files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    } catch {
      // no records
    }
    for (const f of files) {
      try {
        const { pid } = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { pid?: unknown };
        if (typeof pid === 'number' && pid > 0) pids.add(pid);
      } catch {
        // half-written record
      }
    }
    return [...pids];
  }

  /** Ends everything this stack started, in dependency order; safe to call twice and after a partial start. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const replicas = this.replicaPids();
    // The agent first (SIGTERM, so --cpu-prof writes its profile); replicas outlive their agent by design: kill their groups.
    await this.agent?.stop('SIGTERM', 10_000).catch(() => {});
    for (const pid of new Set([...replicas, ...this.replicaPids()])) killGroup(pid, 'SIGKILL');
    await Promise.all([
      this.hub.stop().catch(() => {}),
      this.nginx?.stop('SIGTERM', 5000).catch(() => {}),
      this.sim?.stop('SIGTERM', 5000).catch(() => {}),
    ]);
    rmSync(this.tmp, { recursive: true, force: true });
  }

  private async admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const headers = { authorization: `Bearer ${this.hub.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
    const res = await call(`${this.hub.url}${path}`, method, headers, body === undefined ? undefined : JSON.stringify(body));
    const text = res.text;
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // keep the text
    }
    return { status: res.status, body: parsed };
  }

  private async poll<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const v = await probe();
        if (v !== undefined) return v;
      } catch (err) {
        last = err;
      }
      if (this.agent && !this.agent.running) throw new Error(`the agent exited while waiting for ${what}:\n${this.agent.tail()}`);
      if (Date.now() > deadline) {
        const why = last instanceof Error ? ` (last error: ${last.message})` : '';
        throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${why}\n--- agent ---\n${this.agent?.tail(20) ?? ''}\n--- hub ---\n${this.hub.logTail(20)}`);
      }
      await sleep(100);
    }
  }
}

/**
 * One HTTP request on a connection of its own, closed afterwards: nothing of this process stays connected to the hub
 * (an idle keep-alive connection held the hub's shutdown for its full 10 s grace, and a SIGKILL writes no profile).
 */
function call(url: string, method: string, headers: Record<string, string>, body?: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { ...headers, connection: 'close' }, agent: false, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}
