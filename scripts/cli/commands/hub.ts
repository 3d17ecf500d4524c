// `ik hub` (the hub alone) and `ik up` (the hub plus an embedded local agent, what `npm start` runs).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseCommandArgs, intFlag } from '../../../shared/cli-args.ts';
import { loadHubConfig } from '../../../hub/config.ts';
import { startHub, type RunningHub } from '../../../hub/main.ts';
import { installCommand } from '../../../hub/api/join-tokens.ts';
import { EXIT_REJECTED } from '../../../agent/main.ts';

const IK_SCRIPT = fileURLToPath(new URL('../../ik', import.meta.url));

export const HUB_USAGE = `usage: ik hub [--port N] [--host ADDR] [--data-dir DIR] [--public-url URL] [--log-level LEVEL] [--json]
       ik up  [same options]     the hub plus an agent for this machine (what npm start runs)`;

const hubOptions = {
  port: { type: 'string' },
  host: { type: 'string' },
  'data-dir': { type: 'string' },
  'public-url': { type: 'string' },
  'log-level': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function runHubCommand(command: 'hub' | 'up', argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = parseCommandArgs(`ik ${command}`, argv, hubOptions);
  if (values.help) {
    process.stdout.write(`${HUB_USAGE}\n`);
    return 0;
  }
  // Signals are taken over first: one that arrived between the start and the handler would end the process without
  // stopping the local agent, which would run on as an orphan.
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  const config = loadHubConfig(env, {
    port: intFlag('port', values.port, 0, 65535),
    host: values.host,
    dataDir: values['data-dir'],
    publicUrl: values['public-url'],
    logLevel: values['log-level'],
  });
  const hub = await startHub(config);
  printBanner(hub, Boolean(values.json));

  const agent = command === 'up' ? superviseLocalAgent(hub, config.dataDir, env) : undefined;
  await stopped;
  await agent?.stop();
  await hub.close();
  return 0;
}

function printBanner(hub: RunningHub, json: boolean): void {
  const s = hub.secrets;
  const oneLiner = s.joinTokenGenerated
    ? installCommand(hub.publicUrl, s.joinToken)
    : `curl -sfL ${hub.publicUrl}/install.sh | IK_TOKEN=$(cat ${s.joinTokenFile}) sh -`;
  if (json) {
    // One line, so a supervisor reading the log stream can pick it out.
    process.stdout.write(`${JSON.stringify({
      hub_url: hub.url,
      public_url: hub.publicUrl,
      admin_token_file: s.adminTokenFile,
      join_token_file: s.joinTokenFile,
      cli_config_file: hub.cliConfigFile,
      install_command: oneLiner,
      ...(s.adminTokenGenerated ? { admin_token: s.adminToken } : {}),
    })}\n`);
    return;
  }
  const lines = [
    `ikhub is running at ${hub.url} (agents and clients: ${hub.publicUrl}; set IK_PUBLIC_URL to change it)`,
    s.adminTokenGenerated
      ? `admin token (shown once, also saved 0600 in ${s.adminTokenFile}):\n  ${s.adminToken}`
      : `admin token: in ${s.adminTokenFile}`,
    `the ik CLI here finds the hub through ${hub.cliConfigFile}`,
    'add a GPU box (run on the box, as root):',
    `  ${oneLiner}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** The embedded agent runs as a child process (its crash never takes the hub down) and is restarted if it dies. */
function superviseLocalAgent(hub: RunningHub, dataDir: string, env: NodeJS.ProcessEnv) {
  let child: ChildProcess | undefined;
  let stopping = false;
  let restarts = 0;
  const launch = () => {
    child = spawn(process.execPath, [IK_SCRIPT, 'agent', '--hub', hub.url, '--data-dir', dataDir], {
      env: { ...env, IK_TOKEN: hub.secrets.joinToken },
      stdio: 'inherit',
    });
    child.on('exit', (code) => {
      if (stopping) return;
      if (code === EXIT_REJECTED) return void process.stderr.write('ik up: the hub refused the local agent; see its log above\n');
      const delay = Math.min(60_000, 1000 * 2 ** restarts++);
      process.stderr.write(`ik up: the local agent exited (code ${code}); restarting in ${delay / 1000} s\n`);
      setTimeout(launch, delay).unref();
    });
  };
  launch();
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        stopping = true;
        if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
        const t = setTimeout(() => child?.kill('SIGKILL'), 5000);
        child.once('exit', () => (clearTimeout(t), resolve()));
        child.kill('SIGTERM');
      }),
  };
}
