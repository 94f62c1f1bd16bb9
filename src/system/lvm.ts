// LVM verbs: which volume groups and logical volumes are on a set of block
// devices (pvs/lvs, JSON validated with zod), and activating or deactivating
// one volume group. Every call sees only the devices it is given (a filter
// in --config, which every lvm2 version reads; `--devices` is 2.03.12+): a
// volume group of the same name on another disk of the machine is never seen,
// never activated and never confused with the target's.
import { z } from 'zod';
import { runVia, type Via } from './exec.ts';

const reEscape = (s: string) => s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');

// only: the --config that makes lvm see exactly DEVICES (and use no udev database, which an initramfs may not have).
export const only = (devices: readonly string[]) => {
  const accept = devices.map((d) => `"a|^${reEscape(d)}$|"`).join(',');
  const filter = `[${accept}${accept ? ',' : ''}"r|.*|"]`;
  return `devices{filter=${filter} global_filter=${filter} obtain_device_list_from_udev=0 external_device_info_source="none"}`;
};

// lvmAllPvs: every physical volume lvm finds on the machine (no filter), with its volume group.
export async function lvmAllPvs(v: Via = {}): Promise<LvmPv[]> {
  const out = await runVia(v)('lvm', ['pvs', '--config', ANY, '--reportformat', 'json', '-o', 'pv_name,vg_name,vg_uuid,pv_count'], {
    exit: v.exit ?? 'environment',
    env: { LVM_SUPPRESS_FD_WARNINGS: '1' },
  });
  return pvRows(out.stdout);
}

const ANY = 'devices{obtain_device_list_from_udev=0 external_device_info_source="none"}';

const Report = <T extends z.ZodTypeAny>(kind: string, row: T) => z.object({ report: z.array(z.object({ [kind]: z.array(row) })).min(1) });

const PvRow = z.object({ pv_name: z.string(), vg_name: z.string(), vg_uuid: z.string(), pv_count: z.string() });
export type LvmPv = { node: string; vg: string; vgUuid: string; vgPvCount: number };

// lvmPvs: the physical volumes among DEVICES, with their volume group and how many PVs the group has in all.
export async function lvmPvs(devices: readonly string[], v: Via = {}): Promise<LvmPv[]> {
  if (!devices.length) return [];
  const out = await runVia(v)('lvm', ['pvs', '--config', only(devices), '--reportformat', 'json', '-o', 'pv_name,vg_name,vg_uuid,pv_count'], {
    exit: v.exit ?? 'environment',
    env: { LVM_SUPPRESS_FD_WARNINGS: '1' },
  });
  return pvRows(out.stdout);
}

const pvRows = (stdout: string): LvmPv[] =>
  Report('pv', PvRow)
    .parse(JSON.parse(stdout))
    .report.flatMap((r) => (r['pv'] ?? []) as z.infer<typeof PvRow>[])
    .map((r) => ({ node: r.pv_name, vg: r.vg_name, vgUuid: r.vg_uuid, vgPvCount: Number(r.pv_count) || 0 }));

const LvRow = z.object({ vg_name: z.string(), vg_uuid: z.string(), lv_name: z.string(), lv_dm_path: z.string() });
export type LvmLv = { vg: string; vgUuid: string; name: string; path: string };

// lvmLvs: the logical volumes of the volume groups on DEVICES, with their device-mapper path.
export async function lvmLvs(devices: readonly string[], v: Via = {}): Promise<LvmLv[]> {
  if (!devices.length) return [];
  const out = await runVia(v)('lvm', ['lvs', '--config', only(devices), '--reportformat', 'json', '-o', 'vg_name,vg_uuid,lv_name,lv_dm_path'], {
    exit: v.exit ?? 'environment',
    env: { LVM_SUPPRESS_FD_WARNINGS: '1' },
  });
  const rows = Report('lv', LvRow)
    .parse(JSON.parse(out.stdout))
    .report.flatMap((r) => (r['lv'] ?? []) as z.infer<typeof LvRow>[]);
  return rows.map((r) => ({ vg: r.vg_name, vgUuid: r.vg_uuid, name: r.lv_name, path: r.lv_dm_path }));
}

// vgActivate: every logical volume of volume group VG, seen only on DEVICES,
// read-only when asked (the device-mapper tables, not the metadata) (exit default: environment).
export async function vgActivate(vg: string, devices: readonly string[], v: Via = {}, readOnly = false): Promise<void> {
  const ro = readOnly ? ` activation{read_only_volume_list=["${vg}"]}` : '';
  await runVia(v)('lvm', ['vgchange', '--config', only(devices) + ro, '-ay', vg], { exit: v.exit ?? 'environment', env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
}

// vgDeactivate: volume group VG's logical volumes taken down (exit default: environment).
export async function vgDeactivate(vg: string, devices: readonly string[], v: Via = {}): Promise<void> {
  await runVia(v)('lvm', ['vgchange', '--config', only(devices), '-an', vg], { exit: v.exit ?? 'environment', env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
}
