// Entry of the agent bundle that GPU boxes run with plain node (see hub/install/bundle.ts).
import { runAgentCommand } from './cli.ts';
import { UsageError } from '../shared/cli-args.ts';

runAgentCommand(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`ik agent: error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
