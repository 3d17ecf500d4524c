// The host part of the inventory from systeminformation: hostname, OS, CPU, memory, free disk under the data dir.
import { resolve, sep } from 'node:path';
import si from 'systeminformation';
import type { HostInfo } from '../../shared/inventory.ts';

const MIB = 1024 * 1024;

export async function readHostInfo(dataDir: string): Promise<HostInfo> {
  const [os, cpu, mem, disks] = await Promise.all([si.osInfo(), si.cpu(), si.mem(), si.fsSize().catch(() => [])]);
  return {
    hostname: os.hostname,
    os: [os.distro, os.release].filter(Boolean).join(' ') || os.platform,
    arch: process.arch,
    cpu_cores: cpu.cores,
    memory_total_mib: Math.round(mem.total / MIB),
    disk_free_mib: diskFreeFor(dataDir, disks),
  };
}

/** Free space of the filesystem that holds `dir`: the mount with the longest matching prefix. */
export function diskFreeFor(dir: string, disks: Array<{ mount: string; available: number }>): number | null {
  const path = resolve(dir);
  let best: { mount: string; available: number } | undefined;
  for (const d of disks) {
    const mount = d.mount.endsWith(sep) ? d.mount : d.mount + sep;
    const matches = path === d.mount || (path + sep).startsWith(mount);
    if (matches && (!best || d.mount.length > best.mount.length)) best = d;
  }
  return best && Number.isFinite(best.available) ? Math.round(best.available / MIB) : null;
}
