// Load for the relay benchmark: fixed-duration, fixed-concurrency request loops with wrk (when installed: it costs far
// less CPU than a Node client on a 2-core machine) or a keep-alive Node client; and a streamed-token counter.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Agent, request, type ClientRequest } from 'node:http';
import { join } from 'node:path';
import { processCpuMs } from './proc-stats.ts';

export interface Target {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface LoadResult {
  tool: 'wrk' | 'node';
  requests: number;
  seconds: number;
  rps: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /** Requests that failed: socket errors, timeouts, and answers other than 2xx/3xx. */
  errors: number;
  errorDetail: Record<string, number>;
  /** CPU the load generator used, ms (the Node one: this process's; wrk: its own, from /proc, last 200 ms sample). */
  loadCpuMs: number | null;
}

const MARK = 'RELAY_BENCH_JSON ';

/** Writes the wrk script for one target (method, body and headers; a done() that prints the figures as one JSON line). */
export function writeWrkScript(dir: string, name: string, target: Target): string {
  const lua = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
  const lines = [
    'wrk.method = "POST"',
    `wrk.body = ${lua(target.body)}`,
    ...Object.entries(target.headers).map(([k, v]) => `wrk.headers[${lua(k)}] = ${lua(v)}`),
    'done = function(s, l, r)',
    '  local e = s.errors',
    `  io.write(string.format('\\n${MARK}{"requests":%.0f,"duration_us":%.0f,"p50_us":%.0f,"p99_us":%.0f,"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f}\\n',`,
    '    s.requests, s.duration, l:percentile(50), l:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))',
    'end',
  ];
  const file = join(dir, `${name}.lua`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** One wrk run: `threads` threads, `c` connections, `seconds` long. */
export function runWrk(wrk: string, script: string, url: string, c: number, seconds: number, threads: number, signal: AbortSignal): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const args = ['-t', String(Math.min(threads, c)), '-c', String(c), '-d', `${seconds}s`, '--timeout', '5s', '-s', script, url];
    const proc = spawn(wrk, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let lastCpu: number | null = null;
    const cpuTimer = setInterval(() => {
      const v = proc.pid === undefined ? null : processCpuMs(proc.pid);
      if (v !== null) lastCpu = v;
    }, 200);
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    const onAbort = () => proc.kill('SIGKILL');
    signal.addEventListener('abort', onAbort, { once: true });
    const cleanup = () => {
      clearInterval(cpuTimer);
      signal.removeEventListener('abort', onAbort);
    };
    proc.once('error', (err) => {
      cleanup();
      reject(err);
    });
    proc.once('exit', (code) => {
      cleanup();
      if (signal.aborted) return reject(signal.reason);
      const line = out.split('\n').find((l) => l.startsWith(MARK));
      if (code !== 0 || !line) return reject(new Error(`wrk ${args.join(' ')} exited with code ${code}:\n${out.slice(-2000)}`));
      const j = JSON.parse(line.slice(MARK.length)) as Record<string, number>;
      const secs = j.duration_us! / 1e6;
      const errorDetail: Record<string, number> = {};
      for (const k of ['connect', 'read', 'write', 'status', 'timeout']) if (j[k]! > 0) errorDetail[k === 'status' ? 'non-2xx/3xx' : k] = j[k]!;
      const errors = Object.values(errorDetail).reduce((a, b) => a + b, 0);
      resolve({
        tool: 'wrk',
        requests: j.requests!,
        seconds: secs,
        rps: j.requests! / secs,
        p50Ms: j.requests! > 0 ? j.p50_us! / 1000 : null,
        p99Ms: j.requests! > 0 ? j.p99_us! / 1000 : null,
        errors,
        errorDetail,
        loadCpuMs: lastCpu,
      });
    });
  });
}

/** The same load from this process: `c` keep-alive connections, each sending the next request when the last answered. */
export async function runNodeLoad(target: Target, c: number, seconds: number, signal: AbortSignal): Promise<LoadResult> {
  const url = new URL(target.url);
  const agent = new Agent({ keepAlive: true, maxSockets: c, maxFreeSockets: c });
  const body = Buffer.from(target.body);
  const headers = { ...target.headers, 'content-length': String(body.length) };
  const latencies: number[] = [];
  const errorDetail: Record<string, number> = {};
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const end = started + seconds * 1000;
  const one = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const req = request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method: 'POST', headers, agent, timeout: 5000 }, (res) => {
        res.on('data', () => {});
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 400) latencies.push(performance.now() - t0);
          else errorDetail[`status ${status}`] = (errorDetail[`status ${status}`] ?? 0) + 1;
          resolve();
        });
        res.on('error', () => {
          errorDetail.read = (errorDetail.read ?? 0) + 1;
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        const k = err.message === 'timeout' ? 'timeout' : (err.code ?? 'error');
        errorDetail[k] = (errorDetail[k] ?? 0) + 1;
        resolve();
      });
      req.end(body);
    });
  const loop = async () => {
    while (performance.now() < end && !signal.aborted) await one();
  };
  await Promise.all(Array.from({ length: c }, loop));
  const secs = (performance.now() - started) / 1000;
  agent.destroy();
  if (signal.aborted) throw signal.reason;
  const cpu = process.cpuUsage(cpuBefore);
  latencies.sort((a, b) => a - b);
  const errors = Object.values(errorDetail).reduce((a, b) => a + b, 0);
  return {
    tool: 'node',
    requests: latencies.length + errors,
    seconds: secs,
    rps: (latencies.length + errors) / secs,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    errors,
    errorDetail,
    loadCpuMs: (cpu.user + cpu.system) / 1000,
  };
}

export function percentile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export interface StreamResult {
  /** Token chunks (`"delta":{"content":…` events) received inside the window. */
  tokens: number;
  seconds: number;
  tokensPerS: number;
  /** Streams that ended (those open when the window closed finish after it, uncounted). */
  completed: number;
  /** Streams without `data: [DONE]` or with a token count other than max_tokens, or that failed. */
  errors: number;
  errorDetail: Record<string, number>;
  /** Time to the first token chunk, p50 over the streams that started inside the window. */
  ttftP50Ms: number | null;
  loadCpuMs: number;
}

const TOKEN = Buffer.from('"delta":{"content":', 'latin1');
const DONE = 'data: [DONE]\n\n';

/**
 * `c` loops of streamed chat completions for `seconds`; counts the token chunks that arrive inside the window. Streams
 * still running when it ends run to their end (not counted, but checked): cutting them would make the hub log aborts.
 */
export async function streamTokens(target: Target, c: number, seconds: number, expectedTokens: number, signal: AbortSignal): Promise<StreamResult> {
  const url = new URL(target.url);
  const agent = new Agent({ keepAlive: true, maxSockets: c, maxFreeSockets: c });
  const body = Buffer.from(target.body);
  const headers = { ...target.headers, 'content-length': String(body.length) };
  const errorDetail: Record<string, number> = {};
  const ttfts: number[] = [];
  const live = new Set<ClientRequest>();
  let tokens = 0;
  let completed = 0;
  let closed = false;
  const fail = (k: string) => (errorDetail[k] = (errorDetail[k] ?? 0) + 1);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const end = started + seconds * 1000;
  const one = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      let mine = 0;
      let carry: Buffer = Buffer.alloc(0);
      let tail = '';
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers, agent, timeout: 10_000 }, (res) => {
        if (res.statusCode !== 200) {
          fail(`status ${res.statusCode}`);
          res.resume();
          res.on('end', resolve);
          return;
        }
        res.on('data', (chunk: Buffer) => {
          const buf = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
          let n = 0;
          for (let i = buf.indexOf(TOKEN); i >= 0; i = buf.indexOf(TOKEN, i + TOKEN.length)) n++;
          if (n > 0 && mine === 0) ttfts.push(performance.now() - t0);
          mine += n;
          if (!closed) tokens += n;
          carry = buf.subarray(Math.max(0, buf.length - (TOKEN.length - 1)));
          tail = (tail + chunk.toString('latin1')).slice(-DONE.length);
        });
        res.on('end', () => {
          completed++;
          if (tail !== DONE) fail('no [DONE]');
          else if (mine !== expectedTokens) fail(`${mine} tokens instead of ${expectedTokens}`);
          resolve();
        });
        res.on('error', () => {
          if (!signal.aborted) fail('read');
          resolve();
        });
      });
      live.add(req);
      req.on('close', () => live.delete(req));
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (!signal.aborted) fail(err.message === 'timeout' ? 'timeout' : (err.code ?? 'error'));
        resolve();
      });
      req.end(body);
    });
  const loop = async () => {
    while (performance.now() < end && !signal.aborted && !closed) await one();
  };
  const loops = Promise.all(Array.from({ length: c }, loop));
  // The window ends: what arrives later is not counted, no stream starts; those still open finish (and are checked).
  const timer = setTimeout(() => (closed = true), seconds * 1000);
  const onAbort = () => {
    closed = true;
    for (const req of live) req.destroy();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  await loops;
  clearTimeout(timer);
  signal.removeEventListener('abort', onAbort);
  agent.destroy();
  if (signal.aborted) throw signal.reason;
  const secs = seconds;
  const cpu = process.cpuUsage(cpuBefore);
  ttfts.sort((a, b) => a - b);
  return {
    tokens,
    seconds: secs,
    tokensPerS: tokens / secs,
    completed,
    errors: Object.values(errorDetail).reduce((a, b) => a + b, 0),
    errorDetail,
    ttftP50Ms: percentile(ttfts, 0.5),
    loadCpuMs: (cpu.user + cpu.system) / 1000,
  };
}
