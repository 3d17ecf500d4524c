// A real hub as a child process for benchmarks: own temp data dir, generated tokens, loopback only; stopped and cleaned up by the caller.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newSecret } from '../../shared/secrets.ts';
import { ROOT } from './report.ts';

const IK = join(ROOT, 'scripts/ik');
const BANNER_TIMEOUT_MS = 30_000;
const KEEP_LOG_LINES = 200;
const REQUEST_TIMEOUT_MS = 10_000;

export interface BenchHubOptions {
  /** Extra environment for the hub (IK_HEARTBEAT_INTERVAL_MS and the like). */
  env?: Record<string, string>;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir', dir]. */
  nodeArgs?: string[];
}

/** What the hub logged at warn level or above, by message: a benchmark reports it, since it may mean rejected messages. */
export type LogProblems = Record<string, number>;

export class BenchHub {
  readonly adminToken = newSecret('sdk').secret;
  readonly joinToken = newSecret('join').secret;
  readonly dataDir = mkdtempSync(join(tmpdir(), 'ik-bench-hub-'));
  url = '';
  private proc: ChildProcess | undefined;
  private lines: string[] = [];
  private partial = '';
  readonly problems: LogProblems = {};

  get pid(): number {
    const pid = this.proc?.pid;
    if (pid === undefined) throw new Error('the hub is not running');
    return pid;
  }

  /** Starts the hub and resolves once its one-line JSON banner says where it listens. */
  async start(opts: BenchHubOptions = {}): Promise<void> {
    const args = [...(opts.nodeArgs ?? []), IK, 'hub', '--json', '--host', '127.0.0.1', '--port', '0', '--data-dir', this.dataDir];
    const proc = spawn(process.execPath, args, {
      cwd: ROOT,
      env: {
        ...process.env,
        IK_HUB_URL: '',
        IK_TOKEN: '',
        IK_LOG_LEVEL: 'info',
        ...opts.env,
        IK_ADMIN_TOKEN: this.adminToken,
        IK_JOIN_TOKEN: this.joinToken,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    const banner = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the hub printed no banner within ${BANNER_TIMEOUT_MS} ms:\n${this.logTail()}`)), BANNER_TIMEOUT_MS);
      const onLine = (line: string) => {
        if (line.includes('"hub_url"')) {
          clearTimeout(timer);
          resolve(line);
        }
      };
      const onData = (d: Buffer) => {
        const text = this.partial + d.toString();
        const parts = text.split('\n');
        this.partial = parts.pop() ?? '';
        for (const line of parts) {
          this.keep(line);
          onLine(line);
        }
      };
      proc.stdout?.on('data', onData);
      proc.stderr?.on('data', onData);
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the hub exited (code ${code}, signal ${signal}) before printing its banner:\n${this.logTail()}`));
      });
    });
    const parsed: unknown = JSON.parse(await banner);
    if (typeof parsed !== 'object' || parsed === null || !('hub_url' in parsed) || typeof parsed.hub_url !== 'string') {
      throw new Error('the hub banner has no hub_url');
    }
    this.url = parsed.hub_url;
  }

  logTail(lines = 40): string {
    return this.lines.slice(-lines).join('\n');
  }

  /** GET with the admin token; throws with the status and body on anything but 200. */
  async get(path: string): Promise<string> {
    const res = await fetch(`${this.url}${path}`, {
      headers: { authorization: `Bearer ${this.adminToken}` },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const body = await res.text();
    if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${body.slice(0, 500)}`);
    return body;
  }

  /** SIGTERM (a clean exit, so --cpu-prof writes its profile), SIGKILL after 10 s; then removes the data dir. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        proc.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        proc.kill('SIGTERM');
      });
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  private keep(line: string): void {
    this.lines.push(line);
    if (this.lines.length > KEEP_LOG_LINES) this.lines.splice(0, this.lines.length - KEEP_LOG_LINES);
    const m = /^\{"level":(\d+),.*"msg":"([^"]*)"/.exec(line);
    if (m && Number(m[1]) >= 40) this.problems[m[2]!] = (this.problems[m[2]!] ?? 0) + 1;
  }
}

/** Reads one sample of a Prometheus counter, matching all of `labels`; 0 when the series has not appeared yet. */
export function counterValue(exposition: string, name: string, labels: Record<string, string>): number {
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.indexOf('}');
    const found = new Map([...line.slice(name.length + 1, close).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => found.get(k) === v)) return Number(line.slice(close + 1).trim());
  }
  return 0;
}
