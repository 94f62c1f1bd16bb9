#!/bin/bash
# The one real Debian 12 root file system the test images are made from.
#
#   test/images/rootfs.sh            prints the path of the cached tree
#
# A debootstrap (minbase) of bookworm from deb.debian.org with systemd, the
# Debian kernel, an initramfs-tools initramfs that can mount ext4, XFS and
# btrfs and activate LVM (MODULES=most plus the xfsprogs, btrfs-progs and
# lvm2 hooks), and GRUB's i386-pc and x86_64-efi modules (grub-pc-bin,
# grub-efi-amd64-bin: no grub-install runs here; disk.sh puts the loader on
# each disk). Trimmed to stay small: no docs, man pages, locales, and no
# kernel modules a QEMU guest's boot never needs (GPU, sound, wireless,
# media, network drivers...); the initramfs is rebuilt after the trim.
#
# Cached under /tmp keyed by this script's sha256, so it is built once per
# machine (about 3-4 minutes here, most of it downloading); the tree is
# owned by root. Needs root and the network.
set -euo pipefail

die() {
	printf 'rootfs.sh: %s\n' "$*" >&2
	exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root"
here=$(cd "$(dirname "$0")" && pwd)
key=$(sha256sum "$here/rootfs.sh" | cut -c1-16)
out=/tmp/reimage-rootfs-$key
if [[ -f $out/.built ]]; then
	printf '%s\n' "$out"
	exit 0
fi
MIRROR=${REIMAGE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PKGS=systemd,systemd-sysv,udev,kmod,linux-image-amd64,initramfs-tools,zstd,grub-pc-bin,grub-efi-amd64-bin,xfsprogs,btrfs-progs,lvm2,attr

# One builder at a time per machine (the VM tests of several files may ask at once).
exec 9>"/tmp/reimage-rootfs.lock"
flock 9
if [[ -f $out/.built ]]; then
	printf '%s\n' "$out"
	exit 0
fi
tmp=$out.tmp
rm -rf "$tmp"
mounted=()
cleanup() {
	local m
	for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done
	[[ -f $out/.built ]] || rm -rf "$tmp"
}
trap cleanup EXIT

started=$SECONDS
debootstrap --variant=minbase --include="$PKGS" bookworm "$tmp" "$MIRROR" >"$tmp.log" 2>&1 ||
	die "debootstrap failed (log: $tmp.log): $(tail -3 "$tmp.log")"

# A small, fast initramfs: zstd, every storage and file system module (the
# trim below keeps those), no resume probe.
printf 'COMPRESS=zstd\nMODULES=most\n' >"$tmp/etc/initramfs-tools/conf.d/reimage-test.conf"
printf 'RESUME=none\n' >"$tmp/etc/initramfs-tools/conf.d/resume"

kver=$(find "$tmp/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | tail -1)
[[ -n $kver ]] || die "no kernel in the debootstrap tree"
k=$tmp/lib/modules/$kver/kernel
rm -rf "$k/drivers/gpu" "$k/drivers/media" "$k/drivers/net" "$k/drivers/infiniband" "$k/drivers/staging" \
	"$k/drivers/iio" "$k/drivers/bluetooth" "$k/drivers/isdn" "$k/drivers/hwmon" "$k/drivers/video" \
	"$k/drivers/input/touchscreen" "$k/drivers/input/joystick" "$k/drivers/usb/serial" "$k/drivers/usb/misc" \
	"$k/sound" "$k/net/wireless" "$k/net/mac80211" "$k/net/bluetooth" "$k/net/netfilter" "$k/net/ipv4/netfilter" \
	"$k/net/ipv6/netfilter" "$k/net/bridge" "$k/fs/ocfs2" "$k/fs/nls" "$k/fs/smb" "$k/fs/nfs" "$k/fs/ceph"
rm -rf "$tmp"/usr/share/{doc,man,info,locale,lintian,linda} "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*
rm -f "$tmp"/usr/lib/firmware/*.bin 2>/dev/null || true

for m in proc sys dev; do
	mount --bind "/$m" "$tmp/$m"
	mounted=("$tmp/$m" "${mounted[@]}")
done
chroot "$tmp" depmod "$kver"
chroot "$tmp" update-initramfs -u -k "$kver" >"$tmp.initramfs.log" 2>&1 || die "update-initramfs failed: $(tail -3 "$tmp.initramfs.log")"
for m in "${mounted[@]}"; do umount "$m"; done
mounted=()

# No machine identity in the shared tree: each image gets its own (disk.sh).
: >"$tmp/etc/machine-id"
rm -f "$tmp/var/lib/dbus/machine-id"
printf '%s\n' "$kver" >"$tmp/.kver"
printf 'debootstrap + initramfs: %s s\n' "$((SECONDS - started))" >"$tmp/.built"
rm -f "$tmp.log" "$tmp.initramfs.log"
mv "$tmp" "$out"
printf '%s\n' "$out"
