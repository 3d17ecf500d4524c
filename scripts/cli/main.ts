// The ik command: dispatches to a command module; errors print one clear line and exit non-zero.
import { ConfigError } from '../../shared/env.ts';
import { UsageError } from '../../shared/cli-args.ts';
import { VERSION } from '../../shared/version.ts';
import { DatabaseTooNewError } from '../../hub/db/open.ts';
import { runAgentCommand } from '../../agent/cli.ts';
import { CliError } from './client.ts';
import { runHubCommand } from './commands/hub.ts';
import { runWorkersCommand } from './commands/workers.ts';
import { runJoinTokenCommand } from './commands/join-tokens.ts';
import { runEnsureCommand } from './commands/ensure.ts';
import { runWorkloadsCommand } from './commands/workloads.ts';
import { runProjectsCommand } from './commands/projects.ts';
import { runTokensCommand } from './commands/tokens.ts';
import { runKeysCommand } from './commands/keys.ts';
import { runAdaptersCommand } from './commands/adapters.ts';
import { runPlanCommand } from './commands/plan.ts';

const USAGE = `ik ${VERSION}: turn GPU boxes into managed, OpenAI-compatible inference endpoints

usage: ik <command> [options]

  up                          the hub plus an agent for this machine (what npm start runs)
  hub                         the hub alone
  agent --hub URL --token T   join a hub and run its workloads on this box
  workers [ls|show|cordon|uncordon|drain|rm]
  join-token [create|ls|revoke]
  ensure -f spec.json [--on-drift reconcile|fail|ignore]
  plan -f spec.json           dry run: VRAM estimate, placement or why not, hourly cost
  workloads [ls|show SLUG|rm SLUG|logs SLUG [--replica ID] [--tail N] [--follow]]
  projects [ls|create SLUG]
  tokens [create|ls|revoke ID]
  keys [create SLUG|ls [SLUG]|revoke ID]
  adapters [list SLUG|put SLUG NAME --source S|delete SLUG NAME]
  version

Project commands act on --project, else IK_PROJECT, else "default".

Every command takes --json. The CLI finds the hub through IK_HUB_URL and IK_TOKEN, or else
$IK_DATA_DIR/cli.json (default ./.ik/cli.json) written by \`ik up\` / \`ik hub\`.`;

const commands: Record<string, (argv: string[], env: NodeJS.ProcessEnv) => Promise<number>> = {
  up: (argv, env) => runHubCommand('up', argv, env),
  hub: (argv, env) => runHubCommand('hub', argv, env),
  agent: runAgentCommand,
  workers: runWorkersCommand,
  worker: runWorkersCommand,
  'join-token': runJoinTokenCommand,
  'join-tokens': runJoinTokenCommand,
  ensure: runEnsureCommand,
  workloads: runWorkloadsCommand,
  workload: runWorkloadsCommand,
  projects: runProjectsCommand,
  project: runProjectsCommand,
  tokens: runTokensCommand,
  token: runTokensCommand,
  keys: runKeysCommand,
  key: runKeysCommand,
  adapters: runAdaptersCommand,
  adapter: runAdaptersCommand,
  plan: runPlanCommand,
};

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return command ? 0 : 2;
  }
  if (command === 'version' || command === '--version') {
    process.stdout.write(rest.includes('--json') ? `${JSON.stringify({ version: VERSION })}\n` : `${VERSION}\n`);
    return 0;
  }
  const run = commands[command];
  if (!run) {
    process.stderr.write(`ik: unknown command "${command}"; see \`ik help\`\n`);
    return 2;
  }
  try {
    return await run(rest, env);
  } catch (err) {
    return reportError(err, rest.includes('--json'));
  }
}

function reportError(err: unknown, json: boolean): number {
  const known = err instanceof CliError || err instanceof UsageError || err instanceof ConfigError || err instanceof DatabaseTooNewError;
  const message = err instanceof Error ? err.message : String(err);
  const details = err instanceof CliError ? err.details : [];
  if (json) {
    process.stderr.write(`${JSON.stringify({ error: { message, details } })}\n`);
  } else {
    process.stderr.write(`ik: error: ${message}\n`);
    for (const d of details) process.stderr.write(`  ${d.path}: ${d.message}\n`);
  }
  if (!known && err instanceof Error && process.env.IK_DEBUG) process.stderr.write(`${err.stack}\n`);
  return err instanceof UsageError ? 2 : 1;
}
