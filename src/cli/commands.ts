// The CLI's commands: one table per command from which parsing, usage lines
// and help are all derived, so they cannot drift. This is a stable contract:
// users and acceptance suites script against these forms.
import { exitHelp, WIDTH, wrap } from './help.ts';

export type Flag = { type: 'string' | 'boolean'; multiple?: boolean; arg?: string; help: string; required?: true };

export type Command = { summary: string; flags: Record<string, Flag>; positionals: string[] };

const bundleFlag: Flag = { type: 'string', arg: 'DIR|URL', required: true, help: 'bundle directory made by `reimage pack` (or its manifest.json), or its https:// or http:// URL' };
// How a bundle URL is reached (sources/http.ts, net/options.ts).
const netFlags: Record<string, Flag> = {
  ca: { type: 'string', arg: 'FILE', help: "a site CA certificate (PEM) trusted for https:// besides Node's built-in CAs" },
  'auth-file': { type: 'string', arg: 'FILE', help: 'credentials for the server: one line, "basic USER:PASSWORD" or "bearer TOKEN"' },
  'stall-timeout': { type: 'string', arg: 'SECONDS', help: 'give up a download attempt after this long without a byte, then retry (default 60)' },
  deadline: { type: 'string', arg: 'SECONDS', help: 'give up a download after this long in all (default 21600; fetch keeps the bytes on hand)' },
  retries: { type: 'string', arg: 'N', help: 'download attempts in a row without progress before giving up (default 6)' },
};
const jsonFlag: Flag = { type: 'boolean', help: 'print the result as one JSON document on stdout, on failure too (src/cli/result.schema.json)' };

// assemble's flags, typed as a table (its literal types would not unify with the others').
const assembleFlags: Record<string, Flag> = {
  bundle: { type: 'string', arg: 'DIR', required: true, help: 'chunked bundle directory made by `reimage pack --chunks` (or its manifest.json)' },
  out: { type: 'string', arg: 'FILE', required: true, help: 'where to write the raw image (an interrupted run left here is reused)' },
  store: { type: 'string', arg: 'DIR', help: "the chunk store for what no seed holds (default: the bundle's own)" },
  seed: { type: 'string', multiple: true, arg: 'PATH', help: 'a file or block device to take chunks from, chunked on the fly (repeatable)' },
  'seed-index': { type: 'string', multiple: true, arg: 'INDEX:FILE', help: 'a .caibx and the file it describes, used without chunking (repeatable)' },
  jobs: { type: 'string', arg: 'N', help: 'chunks fetched at once (default 8)' },
  'dry-run': { type: 'boolean', help: 'only say how many chunks and bytes come from each seed and how many must be fetched' },
  trust: { type: 'string', multiple: true, arg: 'KEY|DIR', help: 'require a signature by one of these trusted public keys' },
  json: jsonFlag,
};

const runFlags: Record<string, Flag> = {
  bundle: bundleFlag,
  target: { type: 'string', arg: 'DEVICE', required: true, help: 'whole-disk block device to reimage (e.g. /dev/sda, /dev/disk/by-id/…)' },
  retain: { type: 'string', arg: 'LIST', help: 'retention list (default: the one in the bundle); without any list the run is refused unless --no-retain' },
  'no-retain': { type: 'boolean', help: "keep nothing of the old system (no list, or ignore the bundle's)" },
  'old-mount': { type: 'string', multiple: true, arg: 'SPEC:PATH', help: "where the OLD system mounts, if not by the new image's labels (repeatable)" },
  trust: { type: 'string', multiple: true, arg: 'KEY|DIR', help: 'trusted ed25519 public key (.pub) or directory of them: the bundle must be signed by one (repeatable)' },
  fingerprint: { type: 'string', arg: 'FILE', help: 'refuse unless the target matches this recorded layout fingerprint' },
  compatible: { type: 'string', arg: 'STRING', help: 'refuse a bundle whose compatible string differs' },
  'max-entry-size': { type: 'string', arg: 'SIZE', help: 'largest retained file (default 256M)' },
  'max-retained': { type: 'string', arg: 'SIZE', help: 'most retained bytes in all (default 1G)' },
  'max-entries': { type: 'string', arg: 'N', help: 'most retained entries (files, directories, links) in all (default 100000)' },
  'allow-downgrade': { type: 'boolean', help: 'allow a bundle version lower than the installed one' },
  'verify-written': { type: 'boolean', help: 'read the disk back after writing and check it like the image (one rewrite from RAM on a mismatch)' },
  unmapped: { type: 'string', arg: 'POLICY', help: 'blocks the block map leaves out: zero (default: offloaded or written), write (every byte), discard, or leave' },
  'verify-raw': { type: 'boolean', help: 'decompress and check the raw sha256 in RAM before writing, even with a block map (default: only for bundles without one)' },
  'no-verify-raw': { type: 'boolean', help: 'skip that pass for a bundle without a block map (its bytes are then checked only as they are written)' },
  keep: { type: 'string', multiple: true, arg: 'SELECTOR', help: 'never write this partition and carry it into the new table: PARTLABEL=name, PARTUUID=guid or TYPE=guid (repeatable)' },
  'keep-dir': { type: 'string', multiple: true, arg: 'DIR', help: 'also save the retained set here before writing (another disk; repeatable); the bundle directory and /run/reimage are always tried' },
  'efi-entry': {
    type: 'boolean',
    help: "after writing, replace the UEFI firmware's boot entries for the old disk's partitions with one for the image's ESP (\\EFI\\BOOT\\BOOTX64.EFI); always on in the initramfs",
  },
  grow: { type: 'boolean', help: 'grow the last partition and its ext2/3/4 file system to the end of the disk' },
  yes: { type: 'boolean', help: 'do not ask for confirmation' },
  'report-url': { type: 'string', arg: 'URL', help: "POST the JSON report there at the end, whatever the outcome (3 tries; not taken: kept in the new system's outbox)" },
  'report-format': { type: 'string', arg: 'FORMAT', help: 'reimage (the --json document, default) or hawkbit (hawkBit DDI action feedback)' },
  seed: { type: 'string', multiple: true, arg: 'PATH', help: 'chunked bundle URL: also take chunks from this file or block device (the target disk always seeds) (repeatable)' },
  'seed-index': { type: 'string', multiple: true, arg: 'INDEX:FILE', help: 'chunked bundle URL: a .caibx and the file it describes, as a seed (repeatable)' },
  jobs: { type: 'string', arg: 'N', help: 'chunked bundle URL: chunks downloaded at once (default 8)' },
  ...netFlags,
  json: jsonFlag,
};

function omit(flags: Record<string, Flag>, names: readonly string[]): Record<string, Flag> {
  return Object.fromEntries(Object.entries(flags).filter(([k]) => !names.includes(k)));
}

export const COMMANDS = {
  pack: {
    summary: 'turn a raw disk image into a bundle',
    positionals: ['IMAGE'],
    flags: {
      out: { type: 'string', arg: 'DIR', required: true, help: 'bundle directory to create' },
      codec: { type: 'string', arg: 'CODEC', help: 'zstd (default), gzip, xz, bzip2 or none' },
      retain: { type: 'string', arg: 'LIST', help: 'retention list to embed in the bundle' },
      mount: { type: 'string', multiple: true, arg: 'SPEC:PATH', help: "where a partition mounts, e.g. LABEL=root:/ (default: read the image's /etc/fstab)" },
      sign: { type: 'string', arg: 'KEY', help: 'sign the manifest with this ed25519 private key (from reimage keygen)' },
      keep: {
        type: 'string',
        multiple: true,
        arg: 'SELECTOR',
        help: 'a partition every run of this bundle keeps (never written, carried into the new table): PARTLABEL=name, PARTUUID=guid or TYPE=guid (repeatable)',
      },
      compatible: { type: 'string', arg: 'STRING', help: 'which machines the image is for (checked against run --compatible / the baked policy)' },
      'image-version': { type: 'string', arg: 'VERSION', help: "the image's version (a lower one than installed is refused as a downgrade)" },
      'max-size': { type: 'string', arg: 'SIZE', help: 'a compressed IMAGE may decode to at most this many bytes (default 64G); more is refused as it is decoded' },
      bmap: { type: 'string', arg: 'FILE', help: "use this block map (bmaptool create) instead of mapping the image's non-zero blocks; it is checked against the image" },
      json: jsonFlag,
      chunks: { type: 'boolean', help: 'also write a casync-compatible chunk index (image.caibx) and chunk store (default chunks/ in the bundle)' },
      'chunk-store': { type: 'string', arg: 'DIR', help: 'with --chunks: the chunk store directory (default DIR/chunks)' },
      'chunk-size': { type: 'string', arg: 'MIN:AVG:MAX', help: 'with --chunks: chunk sizes as for casync --chunk-size (default 1K:4K:16K)' },
      'chunk-index': { type: 'string', arg: 'FILE', help: 'with --chunks: use this index from casync make (and its --chunk-store) after checking it against the image' },
      'delta-from': {
        type: 'string',
        multiple: true,
        arg: 'OLD',
        help: 'with --chunks: also a delta file for machines on the release OLD (its bundle directory or .caibx; repeatable): its missing chunks solid and the index against its own',
      },
    },
  },
  assemble: {
    summary: "build a chunked bundle's raw image from seeds already on the machine and a chunk store",
    positionals: [],
    flags: assembleFlags,
  },
  run: {
    summary: 'reimage DEVICE with the bundle, keeping the retained files',
    positionals: [],
    flags: runFlags,
  },
  plan: {
    summary: 'every check of `run`, then the plan; writes nothing',
    positionals: [],
    // What changes how the write itself goes (confirmation, read-back, unmapped blocks, keep places) means nothing to a plan;
    // --grow does: the retained entries' fit and the partitions after.
    flags: omit(runFlags, ['yes', 'verify-written', 'unmapped', 'keep-dir']),
  },
  restore: {
    summary: 'put a retained set saved by a failed run back into a mounted new system',
    positionals: [],
    flags: {
      from: { type: 'string', arg: 'DIR', required: true, help: "the saved set: the directory holding retained.json (named in the failed run's last line)" },
      root: { type: 'string', arg: 'PATH', required: true, help: "where the new system's root is mounted (its other file systems mounted below it)" },
      json: jsonFlag,
    },
  },
  verify: {
    summary: "check a bundle's schema, sizes and hashes (compressed and raw)",
    positionals: [],
    flags: { bundle: bundleFlag, trust: { type: 'string', multiple: true, arg: 'KEY|DIR', help: 'require a signature by one of these trusted public keys' }, ...netFlags, json: jsonFlag },
  },
  fetch: {
    summary: 'download a bundle to local storage, checked against its manifest; run it again to resume',
    positionals: ['URL'],
    flags: {
      out: { type: 'string', arg: 'DIR', required: true, help: 'where the bundle goes (made if missing; a partial download there is continued)' },
      trust: { type: 'string', multiple: true, arg: 'KEY|DIR', help: 'require a signature by one of these trusted public keys (checked before any other file is fetched)' },
      ...netFlags,
      seed: { type: 'string', multiple: true, arg: 'PATH', help: 'chunked bundle: assemble the raw image from this file or block device, downloading only the chunks it lacks (repeatable)' },
      'seed-index': { type: 'string', multiple: true, arg: 'INDEX:FILE', help: 'chunked bundle: a .caibx and the file it describes, as a seed (repeatable)' },
      jobs: { type: 'string', arg: 'N', help: 'chunks downloaded at once (default 8)' },
      'dry-run': { type: 'boolean', help: 'chunked bundle: bring the index, then only say how many chunks and bytes come from each seed and how many must be downloaded' },
      json: jsonFlag,
    },
  },
  capture: {
    summary: 'turn a reference disk (not mounted) into a signed factory bundle with its layout, in DIR or its recovery partition',
    positionals: [],
    flags: {
      disk: { type: 'string', arg: 'DEVICE', required: true, help: 'the reference disk (whole disk; none of its partitions may be mounted)' },
      key: { type: 'string', arg: 'KEY', required: true, help: 'sign the manifest with this ed25519 private key (from reimage keygen)' },
      keep: { type: 'string', multiple: true, arg: 'SELECTOR', help: 'a partition left out of the image and never written by a reset: PARTLABEL=NAME, PARTUUID=GUID or TYPE=GUID (repeatable)' },
      out: { type: 'string', arg: 'DIR', help: 'write the bundle into this new or empty directory' },
      recovery: { type: 'boolean', help: 'write the bundle into the recovery partition (PARTLABEL reimage-recovery) and install the "Restore factory state" boot entry' },
      kernel: { type: 'string', arg: 'FILE', help: 'with --recovery: the kernel the entry boots (kept on the recovery partition)' },
      initrd: { type: 'string', arg: 'FILE', help: 'with --recovery: the reimage initrd the entry boots (reimage initrd)' },
      config: { type: 'string', arg: 'DIR', help: "the policy baked into that initrd (its allowShell decides the entry's shell lockdown)" },
      retain: { type: 'string', arg: 'LIST', help: 'retention list to embed: what a factory reset keeps of the system it replaces' },
      codec: { type: 'string', arg: 'CODEC', help: 'zstd (default), gzip, xz, bzip2 or none' },
      json: jsonFlag,
    },
  },
  fingerprint: {
    summary: "record a disk's identity and partition table, for run --fingerprint",
    positionals: ['DEVICE'],
    flags: { out: { type: 'string', arg: 'FILE', help: 'write the fingerprint here (default: stdout)' } },
  },
  keygen: {
    summary: 'make an ed25519 signing key pair: PREFIX.key (private, 0600) and PREFIX.pub',
    positionals: [],
    flags: { out: { type: 'string', arg: 'PREFIX', required: true, help: 'path prefix of the two key files' } },
  },
  initrd: {
    summary: "build a reimage initrd with dracut for a kernel (never touches the system's own initrd)",
    positionals: [],
    flags: {
      out: { type: 'string', arg: 'FILE', required: true, help: 'where to write the initrd' },
      kver: { type: 'string', arg: 'VERSION', help: 'kernel version (default: the running kernel)' },
      config: { type: 'string', arg: 'DIR', help: 'directory baked in as /etc/reimage (config.json, retention.list, keys)' },
      generator: { type: 'string', arg: 'NAME', help: 'dracut (default when installed) or initramfs-tools' },
      'no-systemd': { type: 'boolean', help: 'dracut: leave systemd out of the initrd (reimage runs from a pre-mount hook)' },
      add: { type: 'string', multiple: true, arg: 'MODULE', help: 'dracut: also add this dracut module, e.g. dm or network (repeatable)' },
      network: { type: 'boolean', help: 'dracut: bring the network up (the network module, rd.neednet=1 ip=dhcp) for rd.reimage.bundle=https://…' },
      ca: { type: 'string', arg: 'FILE', help: 'bake this site CA (PEM) in: trusted for every https:// download besides the built-in CAs' },
      'auth-file': { type: 'string', arg: 'FILE', help: 'bake these credentials in ("basic USER:PASSWORD" or "bearer TOKEN"): sent with every download and the report; the initrd is then 0600' },
    },
  },
  arm: {
    summary: 'install a "Reimage" boot entry and make it the default of the next boots (GRUB: 3, systemd-boot: once)',
    positionals: [],
    flags: {
      bundle: { type: 'string', arg: 'LOCATION', required: true, help: 'where the initrd finds the bundle, e.g. LABEL=REIMAGE:/bundle (see rd.reimage.bundle)' },
      target: { type: 'string', arg: 'SELECTOR', help: 'target disk, e.g. serial:KIOSK42 or /dev/disk/by-id/… (see rd.reimage.target)' },
      initrd: { type: 'string', arg: 'FILE', help: 'a reimage initrd to use (default: build one with reimage initrd)' },
      config: { type: 'string', arg: 'DIR', help: 'policy directory baked into a built initrd' },
      kver: { type: 'string', arg: 'VERSION', help: 'kernel to boot (default: the running one)' },
      'boot-dir': { type: 'string', arg: 'DIR', help: 'boot directory (default /boot)' },
      cmdline: { type: 'string', arg: 'FILE', help: 'take console= and loglevel= from this kernel command line (default /proc/cmdline)' },
    },
  },
  kit: {
    summary: 'put the power-loss boot kit (kernel, reimage initrd, GRUB BIOS loader; with --esp a UEFI part) on the partition that holds the bundle',
    positionals: [],
    flags: {
      part: { type: 'string', arg: 'DEVICE', required: true, help: 'the partition of the target that holds the bundle, e.g. /dev/sda3 (kept by every reimage reading the bundle from it)' },
      esp: { type: 'string', arg: 'DEVICE', help: 'also a UEFI part on this FAT partition of the same disk, e.g. /dev/sda4 (every run must keep it)' },
      bundle: { type: 'string', arg: 'LOCATION', required: true, help: 'where the initrd finds the bundle, e.g. PARTUUID=…:/bundle (see rd.reimage.bundle)' },
      target: { type: 'string', arg: 'SELECTOR', help: 'target disk, e.g. serial:KIOSK42 (see rd.reimage.target)' },
      initrd: { type: 'string', arg: 'FILE', help: 'a reimage initrd to use (default: build one with reimage initrd)' },
      config: { type: 'string', arg: 'DIR', help: 'policy directory baked into a built initrd' },
      kver: { type: 'string', arg: 'VERSION', help: 'kernel to boot (default: the running one)' },
      'boot-dir': { type: 'string', arg: 'DIR', help: 'where vmlinuz-VERSION is (default /boot)' },
      cmdline: { type: 'string', arg: 'FILE', help: 'take console= and loglevel= from this kernel command line (default /proc/cmdline)' },
    },
  },
  disarm: {
    summary: 'remove the "Reimage" boot entries, the one-shot and the reimage initrd',
    positionals: [],
    flags: { 'boot-dir': { type: 'string', arg: 'DIR', help: 'boot directory (default /boot)' } },
  },
  'vm-test': {
    summary: 'prove a bundle against a copy of a disk image: the real initrd flow in QEMU, pass or fail',
    positionals: [],
    flags: {
      disk: { type: 'string', arg: 'IMAGE', required: true, help: "raw image of the old system's disk (a copy is reimaged; the file is not changed)" },
      bundle: { ...bundleFlag, arg: 'DIR', help: 'bundle directory made by `reimage pack`' },
      kernel: { type: 'string', arg: 'VMLINUZ', help: 'kernel to boot (default: the newest /boot/vmlinuz-*)' },
      initrd: { type: 'string', arg: 'FILE', help: 'reimage initrd (default: build one for that kernel)' },
      mem: { type: 'string', arg: 'MIB', help: 'VM memory in MiB (default 1536)' },
      keep: { type: 'string', arg: 'DIR', help: 'keep the work files (disk copy, serial log) in DIR' },
      firmware: { type: 'string', arg: 'bios|efi', help: 'boot the result with SeaBIOS (default) or OVMF (UEFI)' },
      marker: { type: 'string', arg: 'REGEX', help: 'console line the booted result must print (default: systemd reached multi-user, or a login prompt)' },
      'boot-timeout': { type: 'string', arg: 'S', help: 'seconds the result may take to print the marker (default 600)' },
      'sector-size': { type: 'string', arg: '512|4096', help: "the target disk's logical sector size (4096: a 4Kn disk, booted with --firmware efi)" },
      'no-boot': { type: 'boolean', help: 'only reimage, do not boot the result (a disk with no boot loader)' },
      junit: { type: 'string', arg: 'FILE', help: 'also write the verdict as JUnit XML to FILE, for CI test reports' },
      json: jsonFlag,
    },
  },
  man: {
    summary: 'print the manual page, reimage(8), as roff: reimage man | man -l -',
    positionals: [],
    flags: {},
  },
  completion: {
    summary: 'print the bash completion script, for /usr/share/bash-completion/completions/reimage',
    positionals: [],
    flags: {},
  },
  boot: {
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
    const rows = Object.entries(COMMANDS).flatMap(([n, c]) => wrap(c.summary, `  ${n.padEnd(13)}`, 15));
    return [
      ...wrap("reimage — reimage a machine's whole disk, keeping the files that make it this machine", '', 2),
      '',
      'Usage: reimage COMMAND [options]',
      '',
      'Commands:',
      ...rows,
      '',
      ...wrap("reimage COMMAND --help shows a command's options; reimage --version prints the version.", '', 0),
      ...exitHelp(),
      '',
    ].join('\n');
  }
  const c: Command = COMMANDS[name];
  const rows = Object.entries(c.flags).flatMap(([f, d]) => {
    const head = `  --${f}${d.arg ? ` ${d.arg}` : ''}`;
    // A long flag gets its help on the next line, so the help column stays aligned.
    return head.length > 25 ? [head, ...wrap(d.help, ' '.repeat(26), 26)] : wrap(d.help, head.padEnd(26), 26);
  });
  return [...wrap(c.summary, '', 0), '', ...wrapUsage(usageLine(name)), '', 'Options:', ...rows, `${'  --help'.padEnd(26)}show this help`, ''].join('\n');
}

// wrapUsage: `Usage: LINE` over 80 columns, breaking only between options.
export function wrapUsage(line: string): string[] {
  // Keep each option with its argument (`[--retain LIST]`) as one word while wrapping.
  const words = line.split(/ (?=\[|--)/);
  const out: string[] = [];
  let cur = 'Usage:';
  for (const w of words) {
    if (cur.trim() !== 'Usage:' && cur.length + 1 + w.length > WIDTH && cur.trim().length) {
      out.push(cur);
      cur = ' '.repeat(6);
    }
    cur += ` ${w}`;
  }
  out.push(cur);
  return out;
}

// usageLine: `reimage NAME POSITIONALS --required ARG [--optional ARG]... [--switch]`, from the table.
export function usageLine(name: CommandName): string {
  const c: Command = COMMANDS[name];
  const flags = Object.entries(c.flags)
    .sort(([, a], [, b]) => Number(b.required === true) - Number(a.required === true))
    .map(([f, d]) => {
      const one = `--${f}${d.arg ? ` ${d.arg}` : ''}`;
      return d.required ? one : `[${one}]${d.multiple ? '...' : ''}`;
    });
  return ['reimage', name, ...c.positionals, ...flags].join(' ');
}
