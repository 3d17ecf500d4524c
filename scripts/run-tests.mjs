#!/usr/bin/env node
// Runs the test suite with node's test runner (Node 20 takes no globs, so the files are listed here).
// Usage: npm test [-- path/to/dir-or-file ...]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function collect(path) {
  if (statSync(path).isFile()) return path.endsWith('.test.ts') ? [path] : [];
  return readdirSync(path)
    .filter((name) => name !== 'node_modules' && name !== 'fixtures')
    .flatMap((name) => collect(join(path, name)));
}

const targets = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const files = (targets.length ? targets : [join(root, 'test')]).flatMap((t) => collect(t)).map((f) => relative(root, f)).sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// Integration suites mostly wait on child processes, so a few files run at once even on 2 cores.
const concurrency = process.env.IK_TEST_CONCURRENCY ?? '3';
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...flags, ...files],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
