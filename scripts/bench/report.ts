// Benchmark reports: one table on stdout (metric, value, target, ok/MISSED) and the same figures as JSON in bench-results/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const RESULTS_DIR = join(ROOT, 'bench-results');

/** A figure must stay below (`<`) or reach (`>=`, `=`) its target; a figure without a target is context. */
export interface Target {
  op: '<' | '>=' | '=';
  value: number;
}

export interface Metric {
  name: string;
  /** null when the figure could not be measured on this machine (it then counts as missed if it has a target). */
  value: number | null;
  unit: string;
  target?: Target;
  note?: string;
}

export interface BenchReport {
  name: string;
  title: string;
  params: Record<string, string | number | boolean>;
  metrics: Metric[];
  notes: string[];
}

export type Verdict = 'ok' | 'MISSED' | '';

export function verdictOf(m: Metric): Verdict {
  if (!m.target) return '';
  if (m.value === null || !Number.isFinite(m.value)) return 'MISSED';
  const { op, value } = m.target;
  const pass = op === '<' ? m.value < value : op === '>=' ? m.value >= value : m.value === value;
  return pass ? 'ok' : 'MISSED';
}

export function formatValue(value: number | null, unit: string): string {
  if (value === null || !Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  const digits = Number.isInteger(value) ? 0 : abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return `${value.toFixed(digits)}${unit ? ` ${unit}` : ''}`;
}

function formatTarget(t: Target | undefined, unit: string): string {
  return t ? `${t.op} ${formatValue(t.value, unit)}` : '';
}

export function renderTable(report: BenchReport): string {
  const rows = report.metrics.map((m) => [m.name, formatValue(m.value, m.unit), formatTarget(m.target, m.unit), verdictOf(m), m.note ?? '']);
  const header = ['metric', 'value', 'target', 'result', 'note'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 1 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const params = Object.entries(report.params).map(([k, v]) => `${k}=${v}`).join(' ');
  const missed = report.metrics.filter((m) => verdictOf(m) === 'MISSED');
  return [
    `== ${report.name}: ${report.title}`,
    `   ${params}`,
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    ...report.notes.map((n) => `note: ${n}`),
    missed.length === 0
      ? `${report.name}: all targets met`
      : `${report.name}: MISSED ${missed.length} target(s): ${missed.map((m) => m.name).join(', ')}`,
  ].join('\n');
}

/** Writes bench-results/<name>.json and returns its path. */
export function writeReport(report: BenchReport): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${report.name}.json`);
  const cpu = cpus();
  const body = {
    benchmark: report.name,
    title: report.title,
    finished_at: new Date().toISOString(),
    machine: { cpus: cpu.length, cpu_model: cpu[0]?.model ?? null, memory_mib: Math.round(totalmem() / 2 ** 20), node: process.version, platform: process.platform },
    params: report.params,
    metrics: report.metrics.map((m) => ({ ...m, result: verdictOf(m) || null })),
    notes: report.notes,
  };
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  return file;
}
