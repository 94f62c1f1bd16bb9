// The CLI's commands: their flags, help text and what they run. This is a
// stable contract: users and acceptance suites script against these forms.
export type Flag = { type: 'string' | 'boolean'; multiple?: boolean; arg?: string; help: string };

export type Command = { usage: string; summary: string; flags: Record<string, Flag>; positionals: string[] };

const bundleFlag: Flag = { type: 'string', arg: 'DIR', help: 'bundle directory made by `reimage pack` (or its manifest.json)' };
const jsonFlag: Flag = { type: 'boolean', help: 'print the report as JSON on stdout' };

const runFlags: Record<string, Flag> = {
  bundle: bundleFlag,
  target: { type: 'string', arg: 'DEVICE', help: 'whole-disk block device to reimage (e.g. /dev/sda, /dev/disk/by-id/…)' },
  retain: { type: 'string', arg: 'LIST', help: 'retention list (default: the one in the bundle)' },
  'old-mount': { type: 'string', multiple: true, arg: 'SPEC:PATH', help: 'where the OLD system mounts, if not by the new image\'s labels (repeatable)' },
  trust: { type: 'string', multiple: true, arg: 'KEY|DIR', help: 'trusted ed25519 public key (.pub) or directory of them: the bundle must be signed by one (repeatable)' },
  fingerprint: { type: 'string', arg: 'FILE', help: 'refuse unless the target matches this recorded layout fingerprint' },
  compatible: { type: 'string', arg: 'STRING', help: 'refuse a bundle whose compatible string differs' },
  'max-entry-size': { type: 'string', arg: 'SIZE', help: 'largest retained file (default 256M)' },
  'max-retained': { type: 'string', arg: 'SIZE', help: 'most retained bytes in all (default 1G)' },
  'max-entries': { type: 'string', arg: 'N', help: 'most retained entries (files, directories, links) in all (default 100000)' },
  'allow-downgrade': { type: 'boolean', help: 'allow a bundle version lower than the installed one' },
  'verify-written': { type: 'boolean', help: 'read the disk back after writing and check it like the image (one rewrite from RAM on a mismatch)' },
  unmapped: { type: 'string', arg: 'POLICY', help: 'blocks the block map leaves out: zero (default: offloaded or written), write (every byte), discard, or leave' },
  'verify-raw': { type: 'boolean', help: 'decompress and check the raw sha256 in RAM before writing (for bundles not made by reimage pack)' },
  grow: { type: 'boolean', help: 'grow the last partition and its ext2/3/4 file system to the end of the disk' },
  yes: { type: 'boolean', help: 'do not ask for confirmation' },
  json: jsonFlag,
};

export const COMMANDS = {
  pack: {
    usage: 'reimage pack IMAGE --out DIR [--codec zstd|gzip|xz|bzip2|none] [--retain LIST] [--mount SPEC:PATH]... [--sign KEY] [--compatible STRING] [--image-version VERSION] [--bmap FILE]',
    summary: 'turn a raw disk image into a bundle',
    positionals: ['IMAGE'],
    flags: {
      out: { type: 'string', arg: 'DIR', help: 'bundle directory to create' },
      codec: { type: 'string', arg: 'CODEC', help: 'zstd (default), gzip, xz, bzip2 or none' },
      retain: { type: 'string', arg: 'LIST', help: 'retention list to embed in the bundle' },
      mount: { type: 'string', multiple: true, arg: 'SPEC:PATH', help: 'where a partition mounts, e.g. LABEL=root:/ (default: read the image\'s /etc/fstab)' },
      sign: { type: 'string', arg: 'KEY', help: 'sign the manifest with this ed25519 private key (from reimage keygen)' },
      compatible: { type: 'string', arg: 'STRING', help: 'which machines the image is for (checked against run --compatible / the baked policy)' },
      'image-version': { type: 'string', arg: 'VERSION', help: 'the image\'s version (a lower one than installed is refused as a downgrade)' },
      bmap: { type: 'string', arg: 'FILE', help: 'use this block map (bmaptool create) instead of mapping the image\'s non-zero blocks; it is checked against the image' },
    },
  },
  run: {
    usage: 'reimage run --bundle DIR --target DEVICE [--retain LIST] [--old-mount SPEC:PATH]... [--grow] [--verify-raw] [--verify-written] [--unmapped zero|write|discard|leave] [--fingerprint FILE] [--compatible STRING] [--allow-downgrade] [--max-entry-size SIZE] [--max-retained SIZE] [--max-entries N] [--trust KEY|DIR]... [--yes] [--json]',
    summary: 'reimage DEVICE with the bundle, keeping the retained files',
    positionals: [],
    flags: runFlags,
  },
  plan: {
    usage: 'reimage plan --bundle DIR --target DEVICE [--retain LIST] [--old-mount SPEC:PATH]... [--trust KEY|DIR]... [--json]',
    summary: 'every check of `run`, then the plan; writes nothing',
    positionals: [],
    flags: runFlags,
  },
  verify: {
    usage: 'reimage verify --bundle DIR [--trust KEY|DIR]... [--json]',
    summary: 'check a bundle\'s schema, sizes and hashes (compressed and raw)',
    positionals: [],
    flags: { bundle: bundleFlag, trust: { type: 'string', multiple: true, arg: 'KEY|DIR', help: 'require a signature by one of these trusted public keys' }, json: jsonFlag },
  },
  fingerprint: {
    usage: 'reimage fingerprint DEVICE [--out FILE]',
    summary: 'record a disk\'s identity and partition table, for run --fingerprint',
    positionals: ['DEVICE'],
    flags: { out: { type: 'string', arg: 'FILE', help: 'write the fingerprint here (default: stdout)' } },
  },
  keygen: {
    usage: 'reimage keygen --out PREFIX',
    summary: 'make an ed25519 signing key pair: PREFIX.key (private, 0600) and PREFIX.pub',
    positionals: [],
    flags: { out: { type: 'string', arg: 'PREFIX', help: 'path prefix of the two key files' } },
  },
  initrd: {
    usage: 'reimage initrd --out FILE [--kver VERSION] [--config DIR] [--generator dracut|initramfs-tools] [--no-systemd] [--add MODULE]...',
    summary: 'build a reimage initrd with dracut for a kernel (never touches the system\'s own initrd)',
    positionals: [],
    flags: {
      out: { type: 'string', arg: 'FILE', help: 'where to write the initrd' },
      kver: { type: 'string', arg: 'VERSION', help: 'kernel version (default: the running kernel)' },
      config: { type: 'string', arg: 'DIR', help: 'directory baked in as /etc/reimage (config.json, retention.list, keys)' },
      generator: { type: 'string', arg: 'NAME', help: 'dracut (default when installed) or initramfs-tools' },
      'no-systemd': { type: 'boolean', help: 'dracut: leave systemd out of the initrd (reimage runs from a pre-mount hook)' },
      add: { type: 'string', multiple: true, arg: 'MODULE', help: 'dracut: also add this dracut module, e.g. dm or network (repeatable)' },
    },
  },
  arm: {
    usage: 'reimage arm --bundle LOCATION [--target SELECTOR] [--initrd FILE] [--config DIR] [--kver VERSION] [--boot-dir DIR]',
    summary: 'install a "Reimage" boot entry and make it the next boot, once',
    positionals: [],
    flags: {
      bundle: { type: 'string', arg: 'LOCATION', help: 'where the initrd finds the bundle, e.g. LABEL=REIMAGE:/bundle (see rd.reimage.bundle)' },
      target: { type: 'string', arg: 'SELECTOR', help: 'target disk, e.g. serial:KIOSK42 or /dev/disk/by-id/… (see rd.reimage.target)' },
      initrd: { type: 'string', arg: 'FILE', help: 'a reimage initrd to use (default: build one with reimage initrd)' },
      config: { type: 'string', arg: 'DIR', help: 'policy directory baked into a built initrd' },
      kver: { type: 'string', arg: 'VERSION', help: 'kernel to boot (default: the running one)' },
      'boot-dir': { type: 'string', arg: 'DIR', help: 'boot directory (default /boot)' },
    },
  },
  disarm: {
    usage: 'reimage disarm [--boot-dir DIR]',
    summary: 'remove the "Reimage" boot entries, the one-shot and the reimage initrd',
    positionals: [],
    flags: { 'boot-dir': { type: 'string', arg: 'DIR', help: 'boot directory (default /boot)' } },
  },
  'vm-test': {
    usage: 'reimage vm-test --disk OLD.img --bundle DIR [--kernel VMLINUZ] [--initrd FILE] [--mem MIB] [--keep DIR] [--json]',
    summary: 'prove a bundle against a copy of a disk image: the real initrd flow in QEMU, pass or fail',
    positionals: [],
    flags: {
      disk: { type: 'string', arg: 'IMAGE', help: 'raw image of the old system\'s disk (a copy is reimaged; the file is not changed)' },
      bundle: bundleFlag,
      kernel: { type: 'string', arg: 'VMLINUZ', help: 'kernel to boot (default: the newest /boot/vmlinuz-*)' },
      initrd: { type: 'string', arg: 'FILE', help: 'reimage initrd (default: build one for that kernel)' },
      mem: { type: 'string', arg: 'MIB', help: 'VM memory in MiB (default 1536)' },
      keep: { type: 'string', arg: 'DIR', help: 'keep the work files (disk copy, serial log) in DIR' },
      json: jsonFlag,
    },
  },
  boot: {
    usage: 'reimage boot [--cmdline FILE] [--config DIR]',
    summary: 'the initramfs entry: act on rd.reimage.* kernel arguments and the baked policy',
    positionals: [],
    flags: {
      cmdline: { type: 'string', arg: 'FILE', help: 'kernel command line to read (default /proc/cmdline)' },
      config: { type: 'string', arg: 'DIR', help: 'policy directory (default /etc/reimage)' },
    },
  },
} satisfies Record<string, Command>;

export type CommandName = keyof typeof COMMANDS;

export function helpText(name?: CommandName): string {
  if (!name) {
    const rows = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(8)}${c.summary}`);
    return `reimage — reimage a machine's whole disk, keeping the files that make it this machine\n\nUsage: reimage COMMAND [options]\n\nCommands:\n${rows.join('\n')}\n\nreimage COMMAND --help shows a command's options; reimage --version prints the version.\nExit codes: 0 ok, 1 internal error, 2 usage, 3 bundle invalid, 4 target refused, 5 retention refused,\n6 not enough RAM, 7 cancelled, 8 environment, 10 write failed (disk invalidated), 11 failed after the write,\n12 vm-test failed.\n`;
  }
  const c: Command = COMMANDS[name];
  const rows = Object.entries(c.flags).map(([f, d]) => `  --${`${f}${d.arg ? ` ${d.arg}` : ''}`.padEnd(22)}${d.help}`);
  return `${c.summary}\n\nUsage: ${c.usage}\n\nOptions:\n${rows.join('\n')}\n  --help                  show this help\n`;
}
