// `npm run build:agent`: the agent as one file, dist/agent.cjs (+ .sha256), the same bundle the hub serves to installers.
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { agentBuildOptions } from '../hub/install/bundle.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = join(root, 'dist');
const outFile = join(outDir, 'agent.cjs');

async function buildAgent(): Promise<void> {
  // Warnings are shown here (the hub builds silently); errors fail the build with esbuild's own report.
  const result = await esbuild.build({ ...agentBuildOptions(), logLevel: 'warning', write: false });
  const code = result.outputFiles[0]!.contents;
  const sha256 = createHash('sha256').update(code).digest('hex');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(outFile, code);
  chmodSync(outFile, 0o755);
  writeFileSync(`${outFile}.sha256`, `${sha256}  agent.cjs\n`);
  const mib = (code.byteLength / (1024 * 1024)).toFixed(1);
  process.stdout.write(`${relative(process.cwd(), outFile) || outFile}  ${mib} MiB (${code.byteLength} bytes)  sha256 ${sha256}\n`);
}

buildAgent().catch((err: unknown) => {
  process.stderr.write(`build:agent: error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
