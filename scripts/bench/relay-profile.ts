// Reads a V8 .cpuprofile (node --cpu-prof) and names where the time went: self time by function and by file,
// optionally only inside given windows of CLOCK_MONOTONIC microseconds (process.hrtime.bigint() / 1000n here; V8 on
// Linux stamps its samples on the same clock), so the load phases count and the start-up does not.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './report.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotSpot {
  name: string;
  selfMs: number;
  pct: number;
}

export interface ProfileSummary {
  file: string;
  /** Sampled time inside the windows (or the whole profile), ms, idle excluded. */
  busyMs: number;
  idleMs: number;
  windowed: boolean;
  functions: HotSpot[];
  files: HotSpot[];
  /** Each sample charged to the nearest frame of this project's own code on its stack (what it calls included). */
  ownCode: HotSpot[];
  /** Each sample charged to the nearest frame outside Node's internals (a dependency or this project). */
  nearestModule: HotSpot[];
}

/** Now on the profiler's clock, µs. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** The newest `.cpuprofile` files in `dir` written after `sinceMs` (wall clock). */
export function profilesSince(dir: string, sinceMs: number): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  } catch {
    return [];
  }
  return names.map((f) => join(dir, f)).filter((f) => statSync(f).mtimeMs >= sinceMs);
}

function place(url: string): string {
  if (!url) return '(native)';
  const path = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) return path.slice(nm + 1);
  return path.startsWith(ROOT) ? relative(ROOT, path) : path;
}

export function summarizeProfile(file: string, windows: Array<[number, number]> = [], top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const ownSelf = new Map<string, number>();
  const moduleSelf = new Map<string, number>();
  const label = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'} ${place(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  /** The first frame up the stack (itself included) that `pick` accepts. */
  const nearest = (node: ProfileNode, pick: (url: string) => boolean): ProfileNode | undefined => {
    for (let n: ProfileNode | undefined = node; n; n = parent.has(n.id) ? byId.get(parent.get(n.id)!) : undefined) {
      if (pick(n.callFrame.url)) return n;
    }
    return undefined;
  };
  const isOwn = (url: string) => url.startsWith('file://') && !url.includes('/node_modules/') && decodeURIComponent(url.slice(7)).startsWith(ROOT);
  const isModule = (url: string) => url.startsWith('file://');
  const fnSelf = new Map<string, number>();
  const fileSelf = new Map<string, number>();
  let busyUs = 0;
  let idleUs = 0;
  let t = profile.startTime;
  const inWindow = (ts: number) => windows.length === 0 || windows.some(([a, b]) => ts >= a && ts <= b);
  let counted = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    // A sample stands for the time until the next one.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (!inWindow(t)) continue;
    counted++;
    const node = byId.get(profile.samples[i]!);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idleUs += dt;
      continue;
    }
    busyUs += dt;
    const where = place(url);
    const fn = `${functionName || '(anonymous)'} ${where}${url ? `:${lineNumber + 1}` : ''}`;
    fnSelf.set(fn, (fnSelf.get(fn) ?? 0) + dt);
    fileSelf.set(where, (fileSelf.get(where) ?? 0) + dt);
    const own = nearest(node, isOwn);
    const ownKey = own ? label(own) : '(no frame of this project on the stack)';
    ownSelf.set(ownKey, (ownSelf.get(ownKey) ?? 0) + dt);
    const mod = nearest(node, isModule);
    const modKey = mod ? label(mod) : '(Node internals only)';
    moduleSelf.set(modKey, (moduleSelf.get(modKey) ?? 0) + dt);
  }
  if (windows.length > 0 && counted === 0) return summarizeProfile(file, [], top);
  const rank = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: us / 1000, pct: busyUs > 0 ? (100 * us) / busyUs : 0 }));
  return {
    file,
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    windowed: windows.length > 0,
    functions: rank(fnSelf),
    files: rank(fileSelf),
    ownCode: rank(ownSelf),
    nearestModule: rank(moduleSelf),
  };
}

export function renderSummary(label: string, s: ProfileSummary): string {
  const lines = [
    `${label}: ${relative(ROOT, s.file)} — ${(s.busyMs / 1000).toFixed(1)} s busy, ${(s.idleMs / 1000).toFixed(1)} s idle${s.windowed ? ' (inside the measured windows)' : ' (whole process lifetime)'}`,
    '  self time by function:',
    ...s.functions.map((f) => `    ${f.pct.toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(6)} ms  ${f.name}`),
    '  self time by file:',
    ...s.files.map((f) => `    ${f.pct.toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(6)} ms  ${f.name}`),
    '  time by the nearest function of this project on the stack (what it calls included):',
    ...s.ownCode.map((f) => `    ${f.pct.toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(6)} ms  ${f.name}`),
    '  time by the nearest function outside Node internals (dependencies included):',
    ...s.nearestModule.map((f) => `    ${f.pct.toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(6)} ms  ${f.name}`),
  ];
  return lines.join('\n');
}
