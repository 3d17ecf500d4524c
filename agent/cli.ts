// `ik agent` and the bundled agent (node agent.cjs): flags and environment → a running agent until a signal.
import { createLogger } from '../shared/logger.ts';
import { parseCommandArgs } from '../shared/cli-args.ts';
import { loadAgentConfig } from './config.ts';
import { startAgent } from './main.ts';

export const AGENT_USAGE = `usage: ik agent --hub URL --token ik_join_… [--name NAME] [--data-dir DIR] [--log-level LEVEL]

Joins the hub with the join token on first start, stores the worker credential (0600) in the data dir,
and reuses it on every later start. Environment: IK_HUB_URL, IK_TOKEN, IK_AGENT_NAME, IK_DATA_DIR,
IK_NVIDIA_SMI, IK_RUNTIME, IK_HUB_CA, IK_LOG_LEVEL (flags win).`;

/** Runs the agent until SIGINT/SIGTERM or a refusal by the hub; resolves with the exit code. */
export async function runAgentCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = parseCommandArgs('ik agent', argv, {
    hub: { type: 'string' },
    token: { type: 'string' },
    name: { type: 'string' },
    'data-dir': { type: 'string' },
    'log-level': { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(`${AGENT_USAGE}\n`);
    return 0;
  }
  const config = loadAgentConfig(env, {
    hub: values.hub,
    token: values.token,
    name: values.name,
    dataDir: values['data-dir'],
    logLevel: values['log-level'],
  });
  const log = createLogger({ level: config.logLevel, name: 'agent' });
  const agent = await startAgent(config, log);
  const onSignal = (signal: string) => {
    log.info({ signal }, 'stopping');
    void agent.stop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const { exitCode } = await agent.done;
  return exitCode;
}
