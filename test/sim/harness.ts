// Test harness for the simulator: spawns scripts/ik-sim on free loopback ports, waits for readiness, kills all after the file.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const IK_SIM = join(ROOT, 'scripts/ik-sim');

const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

export interface SimProcess {
  proc: ChildProcess;
  port: number;
  url: string;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `ik-sim ARGS` on a free port (`--port P`, or OLLAMA_HOST for `ollama serve`) without waiting. */
export async function spawnSim(args: string[], env: Record<string, string> = {}): Promise<SimProcess> {
  const port = await freePort();
  const ollama = args[0] === 'ollama';
  const proc = spawn(process.execPath, [IK_SIM, ...args, ...(ollama ? [] : ['--port', String(port)])], {
    env: { ...process.env, ...(ollama ? { OLLAMA_HOST: `127.0.0.1:${port}` } : {}), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => {
      children.delete(proc);
      resolve({ code, signal });
    }),
  );
  return {
    proc,
    port,
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    exited,
    stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Spawns and waits until the ready route answers 200 (/health, or /api/version for Ollama). */
export async function startSim(args: string[], env: Record<string, string> = {}, timeoutMs = 10_000): Promise<SimProcess> {
  const sim = await spawnSim(args, env);
  const readyPath = args[0] === 'ollama' ? '/api/version' : '/health';
  await waitFor(async () => (await fetch(sim.url + readyPath).catch(() => null))?.status === 200, timeoutMs, () => sim.output());
  return sim;
}

/** Polls `check` every 20 ms until it is true; fails with `context()` after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, context: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms\n${context().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs `ik-sim ARGS` to completion. */
export function runSim(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [IK_SIM, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(proc);
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    proc.once('close', (code) => {
      children.delete(proc);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

export async function postJson(url: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...init });
}

/** Splits an SSE body into its `data:` payloads, checking the `data: ...\n\n` framing of every event. */
export function sseEvents(text: string): string[] {
  if (!text.endsWith('\n\n')) throw new Error(`SSE body does not end with a blank line: ${JSON.stringify(text.slice(-40))}`);
  return text
    .slice(0, -2)
    .split('\n\n')
    .map((event) => {
      if (!event.startsWith('data: ') || event.includes('\n')) throw new Error(`bad SSE event: ${JSON.stringify(event)}`);
      return event.slice(6);
    });
}

/** The value of the first sample of `name` in a Prometheus text body. */
export function metric(text: string, name: string, labelFilter = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labelFilter));
  if (!line) throw new Error(`metric ${name} not found`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** A small PCM WAV: `seconds` of a 440 Hz tone at 16 kHz. */
export function makeTestWav(seconds: number): Buffer {
  const rate = 16_000;
  const n = Math.round(seconds * rate);
  const buf = Buffer.alloc(44 + n * 2);
  buf.write('RIFF', 0, 'ascii');
  buf.writeUInt32LE(36 + n * 2, 4);
  buf.write('WAVEfmt ', 8, 'ascii');
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36, 'ascii');
  buf.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) buf.writeInt16LE(Math.round(3000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2);
  return buf;
}
