// Partitions that hold no file system reimage can mount but a container of
// other block devices (blkid TYPE): LUKS (no keys in the initramfs) and LVM
// physical volumes (logical volumes are not activated). Each is named with
// what it is and why it cannot be used, so pack and run refuse it in one
// sentence instead of failing to find a root or to mount.
const CONTAINERS: Record<string, { what: string; why: string }> = {
  crypto_LUKS: { what: 'LUKS-encrypted (crypto_LUKS)', why: 'reimage supports only unencrypted file systems' },
  LVM2_member: {
    what: 'an LVM physical volume (LVM2_member)',
    why: 'it holds logical volumes, not a file system: name the logical volume (/dev/VG/LV, or the LABEL= or UUID= of the file system in it) instead',
  },
};

// container: what a partition of this blkid TYPE is and why reimage cannot use it, or undefined for anything else.
export const container = (fstype: string | undefined) => (fstype && Object.hasOwn(CONTAINERS, fstype) ? CONTAINERS[fstype] : undefined);
