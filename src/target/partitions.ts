// Settling a disk's partitions: make the kernel's view match the table on the
// disk and wait for the partition nodes. A kernel with a working BLKRRPART
// (a Debian kernel) rereads on its own; some kernels (this project's build
// host) never parse tables, so nodes only appear when added with BLKPG
// (`partx -u`). Both are tried, with bounded retries for EBUSY.
import { ReimageError, type ExitName } from '../errors.ts';
import { hostSys, type Sys } from '../system/sys.ts';
import { addPartition, blkidProbe, partxAdd, partxUpdate, rereadPartitions } from '../system/tools.ts';
import type { Log } from '../util/log.ts';
import { kernelPartitions, openers, sysPathOf, type Disk, type KernelPart } from './sysfs.ts';

// container: an MBR extended partition, which the kernel shows as 1 KiB (a
// place to keep its link, never a file system), not its size in the table.
export type Expected = { number: number; start: number; size: number; container?: boolean };

export type Settled = Map<number, string>;

// attempts (default 20) tries, delayMs (default 500) apart; a failure exits EXIT.
export type SettleOptions = { attempts?: number; delayMs?: number; exit: ExitName };

const fits = (q: Pick<KernelPart, 'number' | 'start' | 'size'>, p: Expected) => q.number === p.number && q.start === p.start && (p.container ? q.size <= p.size : q.size === p.size);
// sameParts: whether the kernel's partitions are exactly the expected ones (in the disk's sectors).
export const sameParts = (k: readonly Pick<KernelPart, 'number' | 'start' | 'size'>[], e: readonly Expected[]) => k.length === e.length && e.every((p) => k.some((q) => fits(q, p)));

// settle: returns partition number -> device node once the kernel agrees with `expected`.
export async function settle(d: Disk, expected: Expected[], log: Log, o: SettleOptions, sys: Sys = hostSys): Promise<Settled> {
  const attempts = o.attempts ?? 20;
  const sleep = sys.sleep;
  const dir = await sysPathOf(d, sys);
  let parts: KernelPart[] = [];
  for (let i = 1; ; i++) {
    const reread = await rereadPartitions(d.node, sys);
    parts = await kernelPartitions(dir);
    if (!sameParts(parts, expected)) {
      await partxUpdate(d.node, sys).catch((e: Error) => log.warn(`partx -u ${d.node}: ${e.message}`));
      parts = await kernelPartitions(dir);
    }
    if (parts.length < expected.length) {
      // Still missing some (the logical partitions of an MBR table, which partx -u leaves out).
      await partxAdd(d.node, sys).catch((e: Error) => log.warn(`partx -a ${d.node}: ${e.message}`));
      parts = await kernelPartitions(dir);
    }
    for (const c of expected.filter((e) => e.container && !parts.some((q) => q.number === e.number))) {
      // partx adds an MBR extended partition as a 1 KiB stub, which a disk
      // with larger logical sectors (4Kn) refuses (EINVAL): the kernel's own
      // parser makes it one logical sector, and so does this.
      const units = d.sectorSize / 512;
      await addPartition(d.node, c.number, c.start * units, units, sys).catch((e: Error) => log.warn(`addpart ${d.node} ${c.number}: ${e.message}`));
      parts = await kernelPartitions(dir);
    }
    if (sameParts(parts, expected)) break;
    // Who keeps the disk busy, named: the usual cause is a process with a partition open.
    const busy = reread ? '' : `disk busy${await openers(d, sys, d.partitions).then((w) => (w.length ? `: ${w.join('; ')}` : ''))}`;
    if (i >= attempts) {
      throw new ReimageError(
        o.exit,
        `the kernel's partitions of ${d.node} do not match the table on it after ${attempts} tries${busy ? ` (${busy})` : ''}: stop what holds the disk, or reboot, and run reimage again`,
      );
    }
    log.info(`partitions of ${d.node} not settled yet (try ${i}/${attempts}${busy ? `, ${busy}` : ''})`);
    await sleep(o.delayMs ?? 500);
  }
  const nodes: Settled = new Map();
  for (const p of parts) nodes.set(p.number, await waitNode(p, o.exit, attempts, o.delayMs ?? 500, sys));
  return nodes;
}

// The node appears asynchronously (devtmpfs/udev); it must carry the partition's dev number.
async function waitNode(p: KernelPart, exit: ExitName, attempts: number, delayMs: number, sys: Sys): Promise<string> {
  const node = `${sys.devRoot}/${p.name}`;
  for (let i = 0; i < attempts; i++) {
    if ((await sys.blockDev(node))?.dev === p.dev) return node;
    await sys.sleep(delayMs);
  }
  throw new ReimageError(exit, `partition node ${node} (${p.dev}) did not appear: is devtmpfs mounted on /dev?`);
}

// lv: VG/LV for a logical volume on the disk (node: its device-mapper path; number: its physical volume's partition).
export type PartIdentity = { node: string; number: number; label?: string; uuid?: string; partlabel?: string; partuuid?: string; fstype?: string; lv?: string };

// identify: each settled partition's file system and GPT identity, probed directly (no udev needed).
export async function identify(nodes: Settled, sys: Sys = hostSys): Promise<PartIdentity[]> {
  return Promise.all(
    [...nodes].map(async ([number, node]): Promise<PartIdentity> => {
      const b = await blkidProbe(node, undefined, sys);
      return {
        node,
        number,
        ...(b.LABEL ? { label: b.LABEL } : {}),
        ...(b.UUID ? { uuid: b.UUID.toLowerCase() } : {}),
        ...(b.PART_ENTRY_NAME ? { partlabel: b.PART_ENTRY_NAME } : {}),
        ...(b.PART_ENTRY_UUID ? { partuuid: b.PART_ENTRY_UUID.toLowerCase() } : {}),
        ...(b.TYPE ? { fstype: b.TYPE } : {}),
      };
    }),
  );
}
