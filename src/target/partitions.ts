// Settling a disk's partitions: make the kernel's view match the table on the
// disk and wait for the partition nodes. A kernel with a working BLKRRPART
// (a Debian kernel) rereads on its own; some kernels (this project's build
// host) never parse tables, so nodes only appear when added with BLKPG
// (`partx -u`). Both are tried, with bounded retries for EBUSY.
import { stat } from 'node:fs/promises';
import { ReimageError, type ExitName } from '../errors.ts';
import { blkidProbe, partxUpdate, rereadPartitions } from '../system/tools.ts';
import type { Log } from '../util/log.ts';
import { kernelPartitions, major, minor, openers, sysPathOf, type Disk, type KernelPart } from './sysfs.ts';

// An extended MBR partition is known to the kernel only as a 1–2 sector stub
// (the kernel and partx both cut it), so only its start is compared.
export type Expected = { number: number; start: number; size: number; extended?: boolean };

export type Settled = Map<number, string>;

export type SettleOptions = { attempts?: number; delayMs?: number; exit: ExitName; sleep?: (ms: number) => Promise<void> };

const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// sameParts: whether the kernel's partitions are exactly the expected ones (in the disk's sectors).
export const sameParts = (k: readonly Pick<KernelPart, 'number' | 'start' | 'size'>[], e: readonly Expected[]) =>
  k.length === e.length && e.every((p) => k.some((q) => q.number === p.number && q.start === p.start && (q.size === p.size || p.extended === true)));

// settle: returns partition number -> device node once the kernel agrees with `expected`.
export async function settle(d: Disk, expected: Expected[], log: Log, o: SettleOptions): Promise<Settled> {
  const attempts = o.attempts ?? 20;
  const sleep = o.sleep ?? wait;
  const sys = await sysPathOf(d);
  let parts: KernelPart[] = [];
  for (let i = 1; ; i++) {
    const reread = await rereadPartitions(d.node);
    parts = await kernelPartitions(sys);
    if (!sameParts(parts, expected)) {
      await partxUpdate(d.node).catch((e: Error) => log.warn(`partx -u ${d.node}: ${e.message}`));
      parts = await kernelPartitions(sys);
    }
    if (sameParts(parts, expected)) break;
    // Who keeps the disk busy, named: the usual cause is a process with a partition open.
    const busy = reread ? '' : `disk busy${await openers(d).then((w) => (w.length ? `: ${w.join('; ')}` : ''))}`;
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
  for (const p of parts) nodes.set(p.number, await waitNode(p, o.exit, attempts, o.delayMs ?? 500, sleep));
  return nodes;
}

// The node appears asynchronously (devtmpfs/udev); it must carry the partition's dev number.
async function waitNode(p: KernelPart, exit: ExitName, attempts: number, delayMs: number, sleep: (ms: number) => Promise<void>): Promise<string> {
  const node = `/dev/${p.name}`;
  for (let i = 0; i < attempts; i++) {
    const st = await stat(node).catch(() => undefined);
    if (st?.isBlockDevice() && `${major(st.rdev)}:${minor(st.rdev)}` === p.dev) return node;
    await sleep(delayMs);
  }
  throw new ReimageError(exit, `partition node ${node} (${p.dev}) did not appear: is devtmpfs mounted on /dev?`);
}

export type PartIdentity = { node: string; number: number; label?: string; uuid?: string; partlabel?: string; partuuid?: string; fstype?: string };

// identify: each settled partition's file system and GPT identity, probed directly (no udev needed).
export async function identify(nodes: Settled): Promise<PartIdentity[]> {
  return Promise.all(
    [...nodes].map(async ([number, node]): Promise<PartIdentity> => {
      const b = await blkidProbe(node);
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
