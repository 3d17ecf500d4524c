// Free disk for the data dir: the filesystem mounted at the longest prefix of the directory's path.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diskFreeFor } from '../../agent/inventory/host.ts';

const MIB = 1024 * 1024;
const disk = (mount: string, mib: number) => ({ mount, available: mib * MIB });

describe('diskFreeFor', () => {
  const disks = [disk('/', 100), disk('/var', 200), disk('/var/lib/ik', 300), disk('/data', 400)];

  it('picks the mount with the longest matching prefix', () => {
    assert.equal(diskFreeFor('/var/lib/ik/state', disks), 300);
    assert.equal(diskFreeFor('/var/log', disks), 200);
    assert.equal(diskFreeFor('/home/me/.ik', disks), 100);
  });

  it('does not care about the order of the mounts', () => {
    assert.equal(diskFreeFor('/var/lib/ik/state', [...disks].reverse()), 300);
  });

  it('counts a directory that is itself a mount point', () => {
    assert.equal(diskFreeFor('/data', disks), 400);
    assert.equal(diskFreeFor('/var/lib/ik', disks), 300);
    assert.equal(diskFreeFor('/', disks), 100);
  });

  it('falls back to / for anything not under another mount', () => {
    assert.equal(diskFreeFor('/srv/ik', [disk('/', 50)]), 50);
  });

  it('matches whole path components only (/data does not hold /database)', () => {
    assert.equal(diskFreeFor('/database/ik', disks), 100);
    assert.equal(diskFreeFor('/variable', disks), 100);
  });

  it('handles a mount listed with a trailing slash', () => {
    assert.equal(diskFreeFor('/mnt/nvme/ik', [disk('/', 1), disk('/mnt/nvme/', 7)]), 7);
  });

  it('resolves a relative directory against the working directory', () => {
    assert.equal(diskFreeFor('.ik', [disk(process.cwd(), 9), disk('/', 1)]), 9);
  });

  it('normalises the directory before matching', () => {
    assert.equal(diskFreeFor('/var/lib/../lib/ik/', disks), 300);
  });

  it('is null when no mount holds the directory, or nothing is known', () => {
    assert.equal(diskFreeFor('/var/lib', [disk('/data', 1), disk('/var/lib/ik', 2)]), null);
    assert.equal(diskFreeFor('/var/lib', []), null);
  });

  it('is null when the mount reports no usable number', () => {
    assert.equal(diskFreeFor('/x', [{ mount: '/', available: Number.NaN }]), null);
  });

  it('rounds to whole MiB', () => {
    assert.equal(diskFreeFor('/x', [{ mount: '/', available: 1.6 * MIB }]), 2);
  });
});
