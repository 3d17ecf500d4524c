// A valid inventory for tests that speak the tunnel protocol by hand.
import { createSecretBox } from '../../hub/secret-box.ts';
import type { Inventory } from '../../shared/inventory.ts';

export function sampleInventory(gpuCount = 1): Inventory {
  return {
    host: { hostname: 'test-box', os: 'Debian GNU/Linux 12', arch: 'x64', cpu_cores: 32, memory_total_mib: 257_000, disk_free_mib: 900_000 },
    runtime: { kind: 'process', docker_version: null, nvidia_runtime: false, cdi: false, gpu_mode: null, images: [], image_map: {} },
    gpu_driver_version: '590.48.01',
    cuda_version: '13.1',
    gpu_error: null,
    gpus: Array.from({ length: gpuCount }, (_, i) => ({
      index: i,
      uuid: `GPU-00000000-0000-0000-0000-${String(i).padStart(12, '0')}`,
      name: 'NVIDIA H100 80GB HBM3',
      memory_total_mib: 81559,
      memory_used_mib: 0,
      memory_free_mib: 81081,
      utilization_pct: 0,
      temperature_c: 41,
      compute_capability: '9.0',
      pci_bus_id: `00000000:00:0${i}.0`,
      mig_mode: 'disabled' as const,
      mig_devices: [],
    })),
  };
}

/** A secret box with a fixed key, for stores built in tests. */
export function testSecretBox() {
  return createSecretBox(Buffer.alloc(32, 7));
}
