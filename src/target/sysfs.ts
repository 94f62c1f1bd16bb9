// What the kernel says about a block device, read from /sys and /proc. No
// processes: everything here is a file read, so it works in any initramfs.
// The roots and the block-device lookup come from a Sys (the host's by
// default), so unit tests read a fixture tree instead.
import { readFile, readdir, readlink, realpath } from 'node:fs/promises';
import { basename } from 'node:path';
import { hostSys, type Sys } from '../system/sys.ts';

import { major, minor } from '../system/sys.ts';

export { major, minor };

export type KernelPart = { name: string; number: number; start: number; size: number; dev: string };

export type Disk = {
  path: string; // as given
  node: string; // resolved /dev node
  name: string; // kernel name (sda, loop3, nvme0n1)
  dev: string; // major:minor
  size: number; // bytes
  sectorSize: number;
  readOnly: boolean;
  removable: boolean;
  model: string;
  serial: string;
  wwn: string;
  // For loop devices: the file behind it.
  backingFile: string;
  isPartition: boolean;
  partitions: KernelPart[];
};

const read = (p: string) =>
  readFile(p, 'utf8')
    .then((s) => s.trim())
    .catch(() => '');
const num = async (p: string) => Number((await read(p)) || 0);

// queueLimit: one of a disk's queue limits in bytes (write_zeroes_max_bytes,
// discard_max_bytes); 0 when the disk has no such offload.
export const queueLimit = (name: string, key: string, sys: Sys = hostSys) => num(`${sys.sysRoot}/class/block/${name}/queue/${key}`).then((n) => n || 0);

// inspect: the device node at PATH as the kernel sees it, or undefined if it is not a block device.
export async function inspect(path: string, sys: Sys = hostSys): Promise<Disk | undefined> {
  const b = await sys.blockDev(path);
  if (!b) return undefined;
  const { node, dev } = b;
  const sysPath = await realpath(`${sys.sysRoot}/dev/block/${dev}`).catch(() => undefined);
  if (!sysPath) return undefined;
  const name = basename(sysPath);
  const isPartition = (await read(`${sysPath}/partition`)) !== '';
  const dir = `${sysPath}/device`;
  return {
    path,
    node,
    name,
    dev,
    size: (await num(`${sysPath}/size`)) * 512,
    sectorSize: (await num(`${sysPath}/queue/logical_block_size`)) || 512,
    readOnly: (await read(`${sysPath}/ro`)) === '1',
    removable: (await read(`${sysPath}/removable`)) === '1',
    model: (await read(`${dir}/model`)) || (await read(`${dir}/name`)),
    serial: (await read(`${dir}/serial`)) || (await read(`${sysPath}/serial`)) || (await read(`${dir}/vpd_pg80`)).replace(/[^\x20-\x7e]/g, '').trim(),
    wwn: (await read(`${dir}/wwid`)) || (await read(`${sysPath}/wwid`)),
    backingFile: await read(`${sysPath}/loop/backing_file`),
    isPartition,
    partitions: isPartition ? [] : await kernelPartitions(sysPath),
  };
}

// inSectors: a sysfs start or size (always in 512-byte units, whatever the
// disk) in the disk's own logical sectors, the unit of its partition table
// and of sfdisk (on a 4Kn disk, sysfs 2048 is sector 256).
export const inSectors = (units512: number, sectorSize: number) => (units512 * 512) / sectorSize;

// kernelPartitions: the partitions the kernel currently knows on a disk, in the disk's logical sectors.
export async function kernelPartitions(sysPath: string): Promise<KernelPart[]> {
  const out: KernelPart[] = [];
  const ss = (await num(`${sysPath}/queue/logical_block_size`)) || 512;
  for (const e of await readdir(sysPath).catch(() => [] as string[])) {
    const number = Number(await read(`${sysPath}/${e}/partition`));
    if (!number) continue;
    const start = inSectors(await num(`${sysPath}/${e}/start`), ss);
    out.push({ name: e, number, start, size: inSectors(await num(`${sysPath}/${e}/size`), ss), dev: await read(`${sysPath}/${e}/dev`) });
  }
  return out.sort((a, b) => a.number - b.number);
}

// sysPathOf: the disk's directory in sysfs (/sys/devices/…/block/NAME).
export async function sysPathOf(d: Disk, sys: Sys = hostSys): Promise<string> {
  return realpath(`${sys.sysRoot}/dev/block/${d.dev}`);
}

// disksBelow: the whole disks (kernel names) a file system's device DEV (stat's dev) lives on:
// a partition's disk, and through device-mapper or MD the disks below it; none for a tmpfs or overlay.
export async function disksBelow(dev: number, sys: Sys = hostSys): Promise<string[]> {
  const at = async (path: string): Promise<string[]> => {
    const real = await realpath(path).catch(() => undefined);
    if (!real) return [];
    const disk = (await readFile(`${real}/partition`).then(
      () => true,
      () => false,
    ))
      ? real.slice(0, real.lastIndexOf('/'))
      : real;
    const slaves = await readdir(`${disk}/slaves`).catch(() => [] as string[]);
    if (!slaves.length) return [basename(disk)];
    return (await Promise.all(slaves.map((s) => at(`${disk}/slaves/${s}`)))).flat();
  };
  return at(`${sys.sysRoot}/dev/block/${major(dev)}:${minor(dev)}`);
}

// partitionsNow: the partitions the kernel knows on D at this moment. A reread
// (the old table's, in preflight; the new one's, after the write) deletes and
// re-adds them under new device numbers, which another disk's partitions may
// take meanwhile: a device number from an earlier look is never matched. (D's
// own list, when the disk is gone from sysfs.)
export async function partitionsNow(d: Disk, sys: Sys = hostSys): Promise<KernelPart[]> {
  try {
    return await kernelPartitions(await sysPathOf(d, sys));
  } catch {
    return d.partitions;
  }
}

// holders: device-mapper, MD or other stacked devices built on the disk or its partitions.
export async function holders(d: Disk, sys: Sys = hostSys): Promise<string[]> {
  const base = await sysPathOf(d, sys);
  const dirs = [base, ...(await partitionsNow(d, sys)).map((p) => `${base}/${p.name}`)];
  const found: string[] = [];
  for (const dir of dirs) for (const h of await readdir(`${dir}/holders`).catch(() => [] as string[])) found.push(`${basename(dir)} is held by ${h} (${await releaseHolder(h, sys)})`);
  return found;
}

// releaseHolder: the command that takes a stacked device down.
async function releaseHolder(h: string, sys: Sys): Promise<string> {
  if (h.startsWith('dm-')) {
    const name = await read(`${sys.sysRoot}/block/${h}/dm/name`);
    // An LVM logical volume (the old system's group, activated by the initramfs): take it down with lvm, not under it.
    if (name && (await read(`${sys.sysRoot}/block/${h}/dm/uuid`)).startsWith('LVM-')) return `lvchange -an /dev/mapper/${name}`;
    return `dmsetup remove ${name || `/dev/${h}`}`;
  }
  if (h.startsWith('md')) return `mdadm --stop /dev/${h}`;
  if (h.startsWith('loop')) return `losetup -d /dev/${h}`;
  return `stop /dev/${h}`;
}

// loopBackers: loop devices whose backing file is the disk or one of its
// partitions (\`losetup -f /dev/sda2\`). The loop holds the partition open from
// inside the kernel: it is no holder in sysfs and no process has it open, but
// the reread after the write fails with EBUSY.
export async function loopBackers(d: Disk, sys: Sys = hostSys): Promise<string[]> {
  const devs = devNames(d, await partitionsNow(d, sys));
  const found: string[] = [];
  for (const loop of await readdir(`${sys.sysRoot}/block`).catch(() => [] as string[])) {
    if (!loop.startsWith('loop') || loop === d.name) continue;
    const file = await read(`${sys.sysRoot}/block/${loop}/loop/backing_file`);
    const b = file.startsWith('/') ? await sys.blockDev(file) : undefined;
    const name = b ? devs.get(b.dev) : undefined;
    if (name) found.push(`${name} backs the loop device ${loop} (losetup -d /dev/${loop})`);
  }
  return found;
}

// devNames: major:minor -> kernel name, for the disk and PARTS (its partitions now).
const devNames = (d: Disk, parts: readonly KernelPart[]) => new Map([[d.dev, d.name], ...parts.map((p) => [p.dev, p.name] as [string, string])]);

// mountsOf: mount points (and swap) that use the disk or one of its partitions.
export async function mountsOf(d: Disk, sys: Sys = hostSys): Promise<string[]> {
  const devs = devNames(d, await partitionsNow(d, sys));
  const found: string[] = [];
  for (const line of (await read(`${sys.procRoot}/self/mountinfo`)).split('\n')) {
    const f = line.split(' ');
    const dir = f[4]?.replace(/\\040/g, ' ');
    if (f[2] && devs.has(f[2])) found.push(`${devs.get(f[2])} is mounted on ${dir} (umount '${dir}')`);
  }
  for (const line of (await read(`${sys.procRoot}/swaps`)).split('\n').slice(1)) {
    const file = line.split(/\s+/)[0];
    if (!file) continue;
    const b = await sys.blockDev(file);
    if (b && devs.has(b.dev)) found.push(`${file} is in use as swap (swapoff ${file})`);
  }
  return found;
}

// openers: other processes with the disk or one of its partitions open. A
// plain open shows neither as a mount nor as a holder, and it makes the
// kernel refuse to reread the partition table (EBUSY) after the write.
// ALSO: more partitions to name (settle: the disk's partitions before its
// reread, one of which a process may still hold).
export async function openers(d: Disk, sys: Sys = hostSys, also: readonly KernelPart[] = []): Promise<string[]> {
  const proc = sys.procRoot;
  const names = devNames(d, [...also, ...(await partitionsNow(d, sys))]);
  const found: string[] = [];
  for (const pid of await readdir(proc).catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const held = new Set<string>();
    for (const fd of await readdir(`${proc}/${pid}/fd`).catch(() => [] as string[])) {
      const link = `${proc}/${pid}/fd/${fd}`;
      // Pipes, sockets and anonymous inodes have no path: only files are stat'ed.
      if (!(await readlink(link).catch(() => '')).startsWith('/')) continue;
      const b = await sys.blockDev(link);
      const name = b ? names.get(b.dev) : undefined;
      if (name) held.add(name);
    }
    if (!held.size) continue;
    const comm = (await read(`${proc}/${pid}/comm`)) || '?';
    for (const name of held) found.push(`${name} is open in process ${pid} (${comm})`);
  }
  return found;
}

// memAvailable: bytes the kernel says can be allocated without swapping.
export async function memAvailable(sys: Sys = hostSys): Promise<number> {
  const m = /MemAvailable:\s+(\d+) kB/.exec(await read(`${sys.procRoot}/meminfo`));
  return m ? Number(m[1]) * 1024 : 0;
}
