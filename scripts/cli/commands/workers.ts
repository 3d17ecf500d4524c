// `ik workers ls|show|cordon|uncordon|drain|rm`: the operator's view of GPU boxes.
import { z } from 'zod';
import { parseCommandArgs, UsageError } from '../../../shared/cli-args.ts';
import { listOf, workerViewSchema, type WorkerView } from '../../../shared/api.ts';
import { callHub, resolveHub } from '../client.ts';
import { splitSubcommand } from '../project.ts';
import { ago, printFields, printJson, printTable } from '../output.ts';

export const WORKERS_USAGE = `usage: ik workers [ls] [--project P]    list workers
       ik workers show ID                one worker: host, runtime, GPUs
       ik workers cordon ID | uncordon ID | drain ID | rm ID
Every command takes --json.`;

export async function runWorkersCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, rest] = splitSubcommand(argv);
  const { values, positionals } = parseCommandArgs(`ik workers ${sub}`, rest, {
    json: { type: 'boolean' },
    project: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, 1);
  if (values.help) return (process.stdout.write(`${WORKERS_USAGE}\n`), 0);
  const hub = resolveHub(env);
  const json = Boolean(values.json);

  if (sub === 'ls' || sub === 'list') {
    const query = values.project ? `?project=${encodeURIComponent(values.project)}` : '';
    const list = listOf(workerViewSchema).parse(await callHub(hub, 'GET', `/api/v1/workers${query}`));
    if (json) return (printJson(list), 0);
    if (list.items.length === 0) return (process.stdout.write('no workers yet: add a GPU box with the install one-liner `ik up` printed\n'), 0);
    printTable(
      ['ID', 'NAME', 'STATE', 'FLAGS', 'GPUS', 'CUDA', 'HEARTBEAT'],
      list.items.map((w) => [w.id, w.name, w.state, flags(w), gpuSummary(w), w.cuda_version ?? '-', ago(w.last_heartbeat_at)]),
    );
    return 0;
  }

  const id = positionals[0];
  if (!id) throw new UsageError(`\`ik workers ${sub}\` needs a worker id (see \`ik workers ls\`)`);
  const path = `/api/v1/workers/${encodeURIComponent(id)}`;
  switch (sub) {
    case 'show': {
      const w = workerViewSchema.parse(await callHub(hub, 'GET', path));
      if (json) return (printJson(w), 0);
      printWorker(w);
      return 0;
    }
    case 'cordon':
    case 'uncordon':
    case 'drain': {
      const w = workerViewSchema.parse(await callHub(hub, 'POST', `${path}/${sub}`));
      if (json) return (printJson(w), 0);
      process.stdout.write(`worker ${w.id} (${w.name}): ${flags(w) === '-' ? 'schedulable' : flags(w)}\n`);
      return 0;
    }
    case 'rm':
    case 'delete': {
      z.undefined().parse(await callHub(hub, 'DELETE', path));
      if (json) return (printJson({ id, deleted: true }), 0);
      process.stdout.write(`worker ${id} deleted\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command \`ik workers ${sub}\`\n${WORKERS_USAGE}`);
  }
}

function flags(w: WorkerView): string {
  return [w.cordoned && 'cordoned', w.draining && 'draining'].filter(Boolean).join(',') || '-';
}

function gpuSummary(w: WorkerView): string {
  if (w.gpus.length === 0) return w.gpu_error ? `none (${w.gpu_error.code})` : 'none';
  const byName = new Map<string, number>();
  for (const g of w.gpus) byName.set(g.name ?? 'unknown GPU', (byName.get(g.name ?? 'unknown GPU') ?? 0) + 1);
  return [...byName].map(([name, n]) => `${n}× ${name}`).join(', ') + (w.gpu_error ? ` (${w.gpu_error.code})` : '');
}

function printWorker(w: WorkerView): void {
  const gib = (mib: number | null) => (mib === null ? '?' : `${(mib / 1024).toFixed(1)} GiB`);
  printFields([
    ['id', w.id],
    ['name', w.name],
    ['project', w.project ?? '(shared pool)'],
    ['state', `${w.state}${flags(w) === '-' ? '' : ` (${flags(w)})`}`],
    ['heartbeat', ago(w.last_heartbeat_at)],
    ['agent', w.agent_version],
    ['host', `${w.host.hostname} · ${w.host.os} · ${w.host.arch} · ${w.host.cpu_cores} cores · ${gib(w.host.memory_total_mib)} RAM · ${gib(w.host.disk_free_mib)} disk free`],
    ['runtime', w.runtime.kind === 'docker' ? `docker ${w.runtime.docker_version ?? '?'}${w.runtime.nvidia_runtime ? ' + nvidia runtime' : ''}${w.runtime.cdi ? ' + CDI' : ''}` : 'process'],
    ['driver', `${w.gpu_driver_version ?? '-'} (CUDA ${w.cuda_version ?? '-'})`],
    ['gpu error', w.gpu_error ? `${w.gpu_error.code}: ${w.gpu_error.message}` : '-'],
    ['labels', Object.entries(w.labels).map(([k, v]) => `${k}=${v}`).join(', ') || '-'],
    ['cost', w.gpu_hourly_cost_usd === null ? 'not set' : `$${w.gpu_hourly_cost_usd}/GPU-hour`],
  ]);
  if (w.gpus.length > 0) {
    process.stdout.write('\n');
    printTable(
      ['GPU', 'NAME', 'MEMORY FREE/TOTAL', 'UTIL', 'TEMP', 'CC', 'UUID'],
      w.gpus.map((g) => [
        String(g.index),
        g.name ?? '?',
        `${gib(g.memory_free_mib)} / ${gib(g.memory_total_mib)}`,
        g.utilization_pct === null ? '-' : `${g.utilization_pct}%`,
        g.temperature_c === null ? '-' : `${g.temperature_c}C`,
        g.compute_capability ?? '-',
        g.uuid + (g.mig_devices.length ? ` (MIG: ${g.mig_devices.map((m) => m.profile ?? '?').join(', ')})` : ''),
      ]),
    );
  }
}
