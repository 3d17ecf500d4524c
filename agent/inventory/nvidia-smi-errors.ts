// Turns a failed or unreadable nvidia-smi run into a GpuError whose message tells the operator what happened and what to do.
import type { GpuError, GpuErrorCode } from '../../shared/inventory.ts';
import { firstLine } from './nvidia-smi-values.ts';

/** What the runner knows about one nvidia-smi call that did not succeed. */
export interface NvidiaSmiFailure {
  binary: string;
  args: readonly string[];
  /** undefined when the process could not start or was killed by a signal. */
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  /** Node's spawn error code, e.g. `ENOENT` when the binary does not exist. */
  spawnErrorCode?: string | undefined;
  signal?: string | undefined;
  timedOut: boolean;
  timeoutMs: number;
}

function gpuError(code: GpuErrorCode, message: string): GpuError {
  return { code, message: message.length > 2000 ? `${message.slice(0, 1999)}…` : message };
}

function commandLine(binary: string, args: readonly string[]): string {
  return [binary, ...args].join(' ');
}

/** Classifies a failed run; the exit codes are NVML's return codes, which nvidia-smi passes through. */
export function classifyNvidiaSmiFailure(failure: NvidiaSmiFailure): GpuError {
  const { binary, args, exitCode } = failure;
  const output = `${failure.stdout}\n${failure.stderr}`;
  const said = firstLine(failure.stdout) || firstLine(failure.stderr);
  const quoted = said ? `: "${said}"` : '';
  if (failure.timedOut) {
    return gpuError(
      'NVIDIA_SMI_TIMEOUT',
      `'${commandLine(binary, args)}' did not answer within ${failure.timeoutMs} ms and was killed: the GPU or its driver may be hung ` +
        `(check 'dmesg' for Xid errors); the agent reports the last known GPUs and asks again at the next poll`,
    );
  }
  if (failure.spawnErrorCode === 'ENOENT') {
    return gpuError('NVIDIA_SMI_MISSING', `nvidia-smi not found at '${binary}': install the NVIDIA driver or set IK_NVIDIA_SMI`);
  }
  if (failure.spawnErrorCode !== undefined) {
    return gpuError(
      'NVIDIA_SMI_FAILED',
      `nvidia-smi at '${binary}' could not be started (${failure.spawnErrorCode}): check that the file is an executable nvidia-smi, or set IK_NVIDIA_SMI`,
    );
  }
  if (exitCode === 18 || /Driver\/library version mismatch/i.test(output)) {
    return gpuError(
      'DRIVER_MISMATCH',
      `NVIDIA driver and library versions differ${quoted}: the driver was upgraded without a reboot; reboot the box (or reload the nvidia kernel modules)`,
    );
  }
  if (exitCode === 9 || /couldn't communicate with the NVIDIA driver/i.test(output)) {
    return gpuError(
      'DRIVER_NOT_LOADED',
      `nvidia-smi could not talk to the NVIDIA driver (exit ${exitCode ?? 'none'})${quoted}: load the kernel module ('modprobe nvidia') or reinstall the driver, then check 'nvidia-smi' by hand`,
    );
  }
  if (exitCode === 6 || /No devices were found/i.test(output)) {
    return gpuError(
      'NO_DEVICES',
      `nvidia-smi found no GPUs (exit ${exitCode ?? 'none'}): check that the GPUs are visible to this host or container ('lspci | grep -i nvidia', Docker '--gpus')`,
    );
  }
  const rejected = /Field\s+"([^"]+)"\s+is not a valid field to query/i.exec(output)?.[1];
  if (rejected) {
    return gpuError(
      'NVIDIA_SMI_FAILED',
      `nvidia-smi at '${binary}' does not know the query field '${rejected}': it is too old for this agent; update the NVIDIA driver`,
    );
  }
  const how = failure.signal ? `was killed by ${failure.signal}` : `exited with ${exitCode ?? 'no code'}`;
  return gpuError(
    'NVIDIA_SMI_FAILED',
    `'${commandLine(binary, args)}' ${how}${quoted}: run it by hand on the box to see the full error`,
  );
}

/** For a run that succeeded but printed something this agent cannot read at all. */
export function describeUnexpectedOutput(binary: string, args: readonly string[], output: string): GpuError {
  const said = firstLine(output);
  return gpuError(
    'NVIDIA_SMI_UNEXPECTED_OUTPUT',
    `'${commandLine(binary, args)}' printed output the agent does not understand${said ? `: "${said}"` : ' (nothing)'}; ` +
      `no GPUs are reported: check the nvidia-smi version ('${binary} --version') and report it with this output`,
  );
}
