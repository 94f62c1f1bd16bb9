// Logical volumes of the target, for a mount plan: the volume groups whose
// physical volumes are partitions of the target are activated (lvm sees only
// those partitions, so a group of the same name on another disk is never
// touched), each logical volume is probed like a partition, and the group is
// deactivated again when the plan is unmounted. The old system's groups are
// activated read-only and taken down before the write; the new system's after
// the write, and a failure to take them down is an error (the disk would stay
// held while the machine reboots). A group that spans a disk other than the
// target is refused: writing the target would break it.
import { ReimageError, type ExitName } from '../errors.ts';
import type { Manifest } from '../bundle/manifest.ts';
import { lvmAllPvs, lvmLvs, lvmPvs, vgActivate, vgDeactivate } from '../system/lvm.ts';
import { blkidProbe } from '../system/tools.ts';
import { hostSys, type Sys } from '../system/sys.ts';
import type { PartIdentity } from '../target/partitions.ts';
import type { Cleanup } from '../util/cleanup.ts';

export type Activated = { parts: PartIdentity[]; deactivate: () => Promise<void> };

type Group = { vg: string; uuid: string; nodes: string[]; count: number };

// targetGroups: the volume groups on the target's partitions; refuses a group
// with physical volumes elsewhere, and two groups of one name on the target.
export async function targetGroups(parts: PartIdentity[], exit: ExitName, sys: Sys = hostSys): Promise<Group[]> {
  const pvNodes = parts.filter((p) => p.fstype === 'LVM2_member').map((p) => p.node);
  const groups = new Map<string, Group>();
  for (const pv of await lvmPvs(pvNodes, { run: sys.run, exit })) {
    if (!pv.vgUuid) continue;
    const g = groups.get(pv.vgUuid) ?? { vg: pv.vg, uuid: pv.vgUuid, nodes: [], count: pv.vgPvCount };
    g.nodes.push(pv.node);
    groups.set(pv.vgUuid, g);
  }
  const list = [...groups.values()];
  for (const g of list) {
    if (g.count > g.nodes.length)
      throw new ReimageError(
        exit,
        `volume group ${g.vg} (${g.uuid}) has ${g.count} physical volumes but only ${g.nodes.length} on the target (${g.nodes.join(', ')}): it spans another disk, which reimaging this one would break; move it off (pvmove, vgreduce) or reimage without keeping it`,
      );
    const twin = list.find((h) => h !== g && h.vg === g.vg);
    if (twin) throw new ReimageError(exit, `two volume groups named ${g.vg} are on the target (${g.uuid} and ${twin.uuid}): rename one with vgrename UUID NEWNAME, then run reimage again`);
  }
  return list;
}

// activate: the target's volume groups activated (read-only for the old
// system), their logical volumes as identities (lv: VG/LV, number: the PV's
// partition), and how to take them down; `notes` records what was done.
export async function activate(parts: PartIdentity[], mode: 'ro' | 'rw', exit: ExitName, cleanup: Cleanup, notes: string[], sys: Sys = hostSys): Promise<Activated> {
  const groups = await targetGroups(parts, exit, sys);
  if (!groups.length) return { parts: [], deactivate: async () => {} };
  const who = mode === 'ro' ? 'old system' : 'new system';
  const undo: { name: string; run: () => Promise<void>; failed?: string }[] = [];
  const out: PartIdentity[] = [];
  try {
    for (const g of groups) {
      await vgActivate(g.vg, g.nodes, { run: sys.run, exit }, mode === 'ro');
      const u: (typeof undo)[number] = { name: g.vg, run: async () => {} };
      u.run = cleanup.push(`deactivate volume group ${g.vg}`, () =>
        vgDeactivate(g.vg, g.nodes, { run: sys.run, exit }).catch((e: Error) => {
          u.failed = e.message;
          throw e;
        }),
      );
      undo.push(u);
      notes.push(`LVM: volume group ${g.vg} (${g.uuid}) on ${g.nodes.join(', ')} activated${mode === 'ro' ? ' read-only' : ''} for the ${who}`);
      for (const lv of (await lvmLvs(g.nodes, { run: sys.run, exit })).filter((l) => l.vgUuid === g.uuid)) {
        const b = await blkidProbe(lv.path, undefined, sys);
        const number = parts.find((p) => p.node === g.nodes[0])?.number ?? 0;
        out.push({
          node: lv.path,
          number,
          lv: `${lv.vg}/${lv.name}`,
          ...(b.LABEL ? { label: b.LABEL } : {}),
          ...(b.UUID ? { uuid: b.UUID.toLowerCase() } : {}),
          ...(b.TYPE ? { fstype: b.TYPE } : {}),
        });
      }
    }
  } catch (e) {
    for (const u of undo.reverse()) await u.run();
    throw e;
  }
  const deactivate = async () => {
    for (const u of [...undo].reverse()) await u.run();
    const bad = undo.filter((u) => u.failed);
    for (const u of undo) notes.push(`LVM: volume group ${u.name} ${u.failed ? `could not be deactivated (${u.failed})` : 'deactivated'}`);
    if (bad.length)
      throw new ReimageError(
        exit,
        `volume group ${bad.map((u) => u.name).join(', ')} of the ${who} could not be deactivated (${bad[0]?.failed}): stop what holds its logical volumes (vgchange -an ${bad[0]?.name}) before rebooting`,
      );
  };
  return { parts: out, deactivate };
}

// checkLvm: before anything is written, the target's volume groups are its
// own (none spans another disk, no two share a name), and no volume group of
// the new image has the name of one on another disk of the machine (after the
// write both would claim /dev/VG/LV and /dev/mapper/VG-LV). The target's own
// old group of the same name is no clash: it is deactivated before the write
// and overwritten by it.
export async function checkLvm(m: Manifest, parts: PartIdentity[], sys: Sys = hostSys): Promise<void> {
  const names = [...new Set(m.table.partitions.flatMap((p) => (p.lvm ? [p.lvm.vg] : [])))];
  if (!names.length && !parts.some((p) => p.fstype === 'LVM2_member')) return;
  await targetGroups(parts, 'target', sys);
  if (!names.length) return;
  const ours = new Set(parts.map((p) => p.node));
  const clash = (await lvmAllPvs({ run: sys.run, exit: 'target' })).find((pv) => names.includes(pv.vg) && !ours.has(pv.node));
  if (clash)
    throw new ReimageError(
      'target',
      `volume group ${clash.vg} is also on ${clash.node}, which is not on the target, and the new image's volume group has that name: rename the other one (vgrename ${clash.vgUuid} NEWNAME) or detach its disk, then run reimage again`,
    );
}
