// The one-line install end to end: install.sh from a real hub into a temporary root, the installed agent joins with
// the fake nvidia-smi, a second install changes nothing that matters, bad input installs nothing, uninstall removes it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { newSecret } from '../../shared/secrets.ts';
import { api, eventually, listWorkers, waitForWorker } from '../helpers/api.ts';
import { Child, FAKE_NVIDIA_SMI, startHub, tempDir, type TestHub } from '../helpers/processes.ts';

interface ShellResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The test runner's environment without any IK_ variable, so only what a test sets reaches the installer. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('IK_')) env[k] = v;
  return { ...env, ...extra };
}

/** Runs `sh -c script` (or `sh -` reading `stdin`) to its end; the process is tracked so a failed test still stops it. */
async function runShell(args: string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<ShellResult> {
  const proc = spawn('sh', args, { env, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  const child = new Child(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  if (stdin !== undefined) proc.stdin!.end(stdin);
  const timer = setTimeout(() => void child.kill('SIGKILL'), 45_000);
  const { code } = await child.exited;
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Every file and directory under `dir`, relative, sorted. */
function listTree(dir: string, rel = ''): string[] {
  if (!existsSync(join(dir, rel))) return [];
  return readdirSync(join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const path = rel ? `${rel}/${e.name}` : e.name;
    return e.isDirectory() ? [`${path}/`, ...listTree(dir, path)] : [path];
  }).sort();
}

const mode = (path: string) => statSync(path).mode & 0o777;
const sha256File = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** The env file as key → value (values are single-quoted shell words). */
function readEnvFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)='(.*)'$/.exec(line);
    if (m) out[m[1]!] = m[2]!.replace(/'\\''/g, "'");
  }
  return out;
}

let hub: TestHub;
let script: string;

before(async () => {
  hub = await startHub();
  const res = await api<string>(hub.url, undefined, 'GET', '/install.sh');
  assert.equal(res.status, 200);
  script = res.body;
});

/** Exactly what an operator runs on a GPU box, with a temporary root and the fake nvidia-smi. */
function installCommand(root: string, name: string, token = hub.joinToken): string {
  return `curl -sfL ${hub.url}/install.sh | IK_TOKEN=${token} IK_INSTALL_ROOT=${root} IK_AGENT_NAME=${name} sh -`;
}
const installerEnv = () => cleanEnv({ IK_NVIDIA_SMI: FAKE_NVIDIA_SMI, IK_FAKE_SMI: 'h100-x2', IK_RUNTIME: 'process' });

describe('one-line install into a directory', () => {
  const root = tempDir('ik-install-');
  const name = 'installed-box';
  const prefix = join(root, 'opt/ikhub');
  const etc = join(root, 'etc/ikhub');
  const data = join(root, 'var/lib/ikhub');
  let firstRun: ShellResult;
  let agent: Child | undefined;
  let workerId: string;

  /** Starts the installed agent the way the installer said, with no IK_ variable of ours: only the env file. */
  function startInstalledAgent(): Child {
    const launcher = /^ikhub:\s+(\S*ik-agent)\s*$/m.exec(firstRun.stdout)?.[1];
    assert.equal(launcher, join(prefix, 'ik-agent'), `the installer names the launcher:\n${firstRun.stdout}`);
    const proc = spawn(launcher, [], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    return new Child(proc);
  }
  async function stopAgent(): Promise<void> {
    await agent?.kill('SIGTERM');
    agent = undefined;
  }
  after(stopAgent);

  it('installs the verified bundle, a 0600 env file, a launcher, an uninstaller and a unit', async () => {
    firstRun = await runShell(['-c', installCommand(root, name)], installerEnv());
    assert.equal(firstRun.code, 0, `installer failed:\n${firstRun.stdout}${firstRun.stderr}`);

    const served = await api<string>(hub.url, undefined, 'GET', '/agent/bundle.sha256');
    assert.equal(served.status, 200);
    assert.equal(sha256File(join(prefix, 'agent.cjs')), served.body.split(/\s+/)[0]);

    const envFile = join(etc, 'agent.env');
    assert.equal(mode(envFile), 0o600);
    const env = readEnvFile(envFile);
    assert.equal(env.IK_HUB_URL, hub.url);
    assert.equal(env.IK_TOKEN, hub.joinToken);
    assert.equal(env.IK_DATA_DIR, data);
    assert.equal(env.IK_AGENT_NAME, name);
    assert.equal(env.IK_NVIDIA_SMI, FAKE_NVIDIA_SMI);
    assert.equal(env.IK_FAKE_SMI, 'h100-x2');
    assert.equal(env.IK_RUNTIME, 'process');

    for (const exe of ['ik-agent', 'uninstall.sh']) {
      assert.equal(mode(join(prefix, exe)) & 0o111, 0o111, `${exe} is executable`);
    }
    const unit = readFileSync(join(etc, 'ik-agent.service'), 'utf8');
    assert.match(unit, /^Restart=always$/m);
    assert.ok(unit.split('\n').includes(`ExecStart=${join(prefix, 'ik-agent')}`), unit);
    assert.match(firstRun.stdout, /start the agent with/);
    assert.equal(listTree(root).filter((p) => p.endsWith('.part')).length, 0, 'no temporary files left behind');
  });

  it('the installed agent joins the hub with the inventory of the box', async () => {
    agent = startInstalledAgent();
    const worker = await waitForWorker(hub.url, hub.adminToken, name, (w) => w.state === 'ready');
    assert.deepEqual(worker.gpus.map((g) => g.name), ['NVIDIA H100 80GB HBM3', 'NVIDIA H100 80GB HBM3']);
    workerId = worker.id;
    const credential = join(data, 'agent-credential.json');
    await eventually('the stored credential', async () => (existsSync(credential) ? true : undefined));
    assert.equal(mode(credential), 0o600);
    assert.match(readFileSync(credential, 'utf8'), new RegExp(workerId));
  });

  it('installing again changes nothing that matters and keeps the credential', async () => {
    const credential = readFileSync(join(data, 'agent-credential.json'), 'utf8');
    const before = listTree(root);
    const written = ['opt/ikhub/agent.cjs', 'opt/ikhub/ik-agent', 'opt/ikhub/uninstall.sh', 'etc/ikhub/agent.env', 'etc/ikhub/ik-agent.service'];
    const contents = written.map((f) => readFileSync(join(root, f), 'utf8'));
    const second = await runShell(['-c', installCommand(root, name)], installerEnv());
    assert.equal(second.code, 0, `second install failed:\n${second.stdout}${second.stderr}`);
    assert.deepEqual(listTree(root), before);
    assert.deepEqual(written.map((f) => readFileSync(join(root, f), 'utf8')), contents);
    assert.equal(mode(join(etc, 'agent.env')), 0o600);
    assert.equal(readFileSync(join(data, 'agent-credential.json'), 'utf8'), credential);

    await stopAgent();
    await eventually('the worker to show it lost its agent', async () =>
      (await listWorkers(hub.url, hub.adminToken)).find((w) => w.id === workerId && w.state !== 'ready'),
    );
    agent = startInstalledAgent();
    const again = await waitForWorker(hub.url, hub.adminToken, name, (w) => w.state === 'ready');
    assert.equal(again.id, workerId);
    const rows = (await listWorkers(hub.url, hub.adminToken)).filter((w) => w.name === name);
    assert.equal(rows.length, 1, 'one worker row for the box');
  });

  it('the uninstaller removes the agent, and its data with --purge', async () => {
    await stopAgent();
    const removed = await runShell([join(prefix, 'uninstall.sh')], cleanEnv());
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(existsSync(prefix), false);
    assert.equal(existsSync(etc), false);
    assert.equal(existsSync(join(data, 'agent-credential.json')), true, 'data stays without --purge');

    // Install once more so there is an uninstaller to run with --purge.
    const reinstall = await runShell(['-c', installCommand(root, name)], installerEnv());
    assert.equal(reinstall.code, 0, reinstall.stderr);
    const purged = await runShell([join(prefix, 'uninstall.sh'), '--purge'], cleanEnv());
    assert.equal(purged.code, 0, purged.stderr);
    for (const dir of [prefix, etc, data]) assert.equal(existsSync(dir), false, `${dir} removed`);
  });
});

describe('the installer refuses bad input and writes nothing', () => {
  it('without IK_TOKEN', async () => {
    const root = tempDir('ik-install-');
    const res = await runShell(['-c', `curl -sfL ${hub.url}/install.sh | IK_INSTALL_ROOT=${root} sh -`], installerEnv());
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /IK_TOKEN is not set/);
    assert.deepEqual(listTree(root), []);
  });

  it('with a token that is not a join token', async () => {
    const root = tempDir('ik-install-');
    const res = await runShell(['-c', installCommand(root, 'box', hub.adminToken)], installerEnv());
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /must be a join token \(ik_join_\.\.\.\), not a control token/);
    assert.doesNotMatch(res.stderr + res.stdout, new RegExp(hub.adminToken), 'the token is not echoed');
    assert.deepEqual(listTree(root), []);
  });

  it('without IK_INSTALL_ROOT when not run as root', { skip: process.getuid?.() === 0 && 'the test runs as root' }, async () => {
    const res = await runShell(['-c', `curl -sfL ${hub.url}/install.sh | IK_TOKEN=${hub.joinToken} sh -`], installerEnv());
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /run as root .* or set IK_INSTALL_ROOT/);
  });

  it('when the bundle does not match its checksum', async () => {
    // A hub stand-in that serves a bundle whose bytes differ from the checksum it announces.
    const bundle = Buffer.from('console.log("not the agent")\n');
    const server: Server = createServer((req, res) => {
      if (req.url === '/agent/bundle') return res.end(bundle);
      if (req.url === '/agent/bundle.sha256') return res.end(`${createHash('sha256').update('the real agent').digest('hex')}  agent.cjs\n`);
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const fakeHub = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const root = tempDir('ik-install-');
      const res = await runShell(['-s'], { ...installerEnv(), IK_HUB_URL: fakeHub, IK_TOKEN: hub.joinToken, IK_INSTALL_ROOT: root }, script);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /sha256 mismatch/);
      assert.equal(existsSync(join(root, 'opt/ikhub/agent.cjs')), false);
      assert.deepEqual(listTree(root), []);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('a truncated download runs nothing', async () => {
    const mainStart = script.indexOf('main() {');
    const mainEnd = script.indexOf('\n}\n', mainStart);
    assert.ok(mainStart > 0 && mainEnd > mainStart, 'the script wraps its work in main()');
    const cut = script.slice(0, Math.floor((mainStart + mainEnd) / 2));
    const root = tempDir('ik-install-');
    const res = await runShell(['-s'], { ...installerEnv(), IK_TOKEN: newSecret('join').secret, IK_INSTALL_ROOT: root }, cut);
    assert.notEqual(res.code, 0, 'a cut-off function definition is a syntax error');
    assert.deepEqual(listTree(root), []);
  });
});
