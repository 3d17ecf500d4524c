// `npm run bench [-- NAME... [FLAGS]]`: runs the named benchmarks (all of them without a name), prints tables, writes bench-results/.
import { relative } from 'node:path';
import { UsageError } from '../../shared/cli-args.ts';
import { ROOT, renderTable, writeReport, type BenchReport } from './report.ts';

export interface Benchmark {
  description: string;
  USAGE: string;
  /** Parses its own flags; resolves with a report, or undefined when it only printed its usage. */
  run(argv: string[]): Promise<BenchReport | undefined>;
}

/** Every benchmark, in the order `npm run bench` runs them; adding one is one line here. */
const benchmarks: Record<string, () => Promise<Benchmark>> = {
  agents: () => import('./agents.ts'),
  scheduler: () => import('./scheduler.ts'),
  relay: () => import('./relay.ts'),
  startup: () => import('./startup.ts'),
};

const USAGE = `usage: npm run bench [-- NAME... [FLAGS]]
  runs every benchmark, or the named ones; FLAGS go to the named benchmark (npm run bench -- agents --help)
  benchmarks: ${Object.keys(benchmarks).join(', ')}
  results: a table on stdout and bench-results/NAME.json; a missed target is reported, not an error`;

async function main(argv: string[]): Promise<number> {
  const firstFlag = argv.findIndex((a) => a.startsWith('-'));
  const names = firstFlag === -1 ? argv : argv.slice(0, firstFlag);
  const flags = firstFlag === -1 ? [] : argv.slice(firstFlag);
  if (names.length === 0 && (flags.includes('--help') || flags.includes('-h'))) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (names.length === 0 && flags.length > 0) {
    throw new UsageError(`flags need a benchmark name, e.g. \`npm run bench -- agents ${flags.join(' ')}\``);
  }
  const unknown = names.filter((n) => !Object.hasOwn(benchmarks, n));
  if (unknown.length > 0) {
    throw new UsageError(`unknown benchmark ${unknown.map((n) => `"${n}"`).join(', ')}; known benchmarks: ${Object.keys(benchmarks).join(', ')}`);
  }

  let failed = 0;
  for (const name of names.length > 0 ? names : Object.keys(benchmarks)) {
    const bench = await benchmarks[name]!();
    if (!flags.includes('--help') && !flags.includes('-h')) process.stdout.write(`running ${name}: ${bench.description}\n`);
    try {
      const report = await bench.run(flags);
      if (!report) continue;
      const file = writeReport(report);
      process.stdout.write(`\n${renderTable(report)}\nwrote ${relative(ROOT, file)}\n\n`);
    } catch (err) {
      // A usage error stops everything; a benchmark that breaks does not stop the others.
      if (err instanceof UsageError) throw err;
      failed++;
      process.stderr.write(`bench ${name} FAILED: ${err instanceof Error ? err.message : String(err)}\n\n`);
    }
  }
  return failed > 0 ? 1 : 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`npm run bench: ${err.message}\n${USAGE}\n`);
  process.exitCode = 2;
}
