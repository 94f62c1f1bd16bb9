// The firmware's boot entries as `efibootmgr -v` prints them (efibootmgr 17;
// captured under OVMF by test/fixtures/tools/capture-efi.sh), and which of
// them a reimage makes stale. An entry names its loader by the GPT partition
// GUID (PARTUUID) of an ESP: after the write, an entry for any partition of
// the old table, or of the image's own table, points at a partition that no
// longer exists or no longer holds what the entry names. Entries for other
// disks, the network or the firmware's own applications are never touched.

// ESP_TYPE: the GPT partition type of an EFI system partition.
export const ESP_TYPE = 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b';

// BootEntry: one BootXXXX variable: its number (hex), active flag, label, and
// for a hard-disk path the partition GUID and the loader's path on it.
export type BootEntry = { num: string; active: boolean; label: string; partuuid?: string; part?: number; loader?: string };

// BootVars: BootOrder and every BootXXXX entry.
export type BootVars = { order: string[]; entries: BootEntry[] };

// "Boot0001* debian<TAB>HD(1,GPT,<guid>,0x800,0x10000)/File(\EFI\debian\shimx64.efi)";
// efibootmgr 18 prints the file without File(...), so both are read.
const ENTRY = /^Boot([0-9A-Fa-f]{4})(\*?) (.*?)(?:\t(.*))?$/;
const HD = /HD\((\d+),GPT,([0-9A-Fa-f-]{36}),/;
const FILE = /HD\([^)]*\)\/(?:File\(([^)]*)\)|(\\[^\s/]*))/;

// parseBootVars: the entries and boot order in `efibootmgr -v` output.
export function parseBootVars(text: string): BootVars {
  const order =
    /^BootOrder: (.*)$/m
      .exec(text)?.[1]
      ?.split(',')
      .map((s) => s.trim().toUpperCase()) ?? [];
  const entries: BootEntry[] = [];
  for (const line of text.split('\n')) {
    const m = ENTRY.exec(line.replace(/\r$/, ''));
    if (!m) continue;
    const path = m[4] ?? '';
    const hd = HD.exec(path);
    const uuid = hd?.[2];
    const file = FILE.exec(path);
    const loader = file?.[1] ?? file?.[2];
    entries.push({
      num: (m[1] ?? '').toUpperCase(),
      active: m[2] === '*',
      label: (m[3] ?? '').trim(),
      ...(uuid ? { partuuid: uuid.toLowerCase(), part: Number(hd?.[1]) } : {}),
      ...(loader ? { loader } : {}),
    });
  }
  return { order, entries };
}

// staleEntries: the entries whose loader is on a partition in GONE (PARTUUIDs, lowercase).
export function staleEntries(v: BootVars, gone: ReadonlySet<string>): BootEntry[] {
  return v.entries.filter((e) => e.partuuid !== undefined && gone.has(e.partuuid));
}

// REMOVABLE: the removable-media loader each architecture's firmware boots (UEFI 2.x, 3.5.1.1).
const REMOVABLE: Record<string, string> = { x64: 'BOOTX64.EFI', ia32: 'BOOTIA32.EFI', arm64: 'BOOTAA64.EFI', arm: 'BOOTARM.EFI', riscv64: 'BOOTRISCV64.EFI' };

// removableLoader: \EFI\BOOT\BOOT<ARCH>.EFI for ARCH (Node's process.arch), or undefined.
export function removableLoader(arch: string = process.arch): string | undefined {
  const f = REMOVABLE[arch];
  return f && `\\EFI\\BOOT\\${f}`;
}
