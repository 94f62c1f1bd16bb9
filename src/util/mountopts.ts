// Mount options for file systems reimage does not trust (the old system, the
// bundle's medium, an image at pack): read-only without a byte written (no
// journal or log replay), no setuid, no device nodes, no executables. One
// table for every place that mounts one (stages, sources, boot, pack).
const READ_ONLY: Record<string, string> = { ext2: 'ro', ext3: 'ro,noload', ext4: 'ro,noload', xfs: 'ro,norecovery', btrfs: 'ro,rescue=nologreplay' };

// Untrusted media: no setuid, no device nodes, no executables.
export const UNTRUSTED = 'nosuid,nodev,noexec';

// readOnlyOptions: mount options that read an untrusted file system without writing a byte (no journal replay).
export const readOnlyOptions = (fstype: string) => `${READ_ONLY[fstype] ?? 'ro'},${UNTRUSTED}`;
