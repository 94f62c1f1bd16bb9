#!/bin/bash
# A bootable disk image of a real Debian 12 system (rootfs.sh), in a v1 or a
# v2, each with its own identity to keep.
#
#   test/images/disk.sh [--firmware bios|efi] [--table gpt|mbr] [--root-fs ext4|xfs|btrfs]
#                       [--root-part primary|logical] [--sector-size 512|4096] [--lvm yes|no]
#                       --version 1|2            prints the path of the cached image
#                       (and IMAGE.root beside it: the root file system's byte offset and size)
#
# Layouts (one code path; a kind is a parameter, never a copy):
#   bios + gpt: 1 BIOS boot partition (GRUB's core.img), 2 root
#   efi  + gpt: 1 ESP (FAT, made with mtools: no vfat needed on the host)
#               holding the removable-media loader EFI/BOOT/BOOTX64.EFI, 2 root
#   bios + mbr: 1 root (primary); core.img in the gap before it
#               --root-part logical: 1 extended, 5 root (logical) inside it
# --sector-size 4096 (efi + gpt): a 4Kn disk; the table is written through a
# loop device with 4096-byte sectors (sfdisk takes a file as 512-byte sectors)
# and the ESP's FAT has 4096-byte sectors. QEMU: logical_block_size=4096.
# Root file systems: ext4 (mkfs.ext4 -d, no mount); xfs and btrfs are made in
# a file of their own, filled through a loop mount (mkfs.xfs 6.1 has no
# directory import, mkfs.btrfs 6.2 no --subvol), then copied into place. btrfs
# has subvolumes @ (/) and @home (/home), mounted by fstab subvol= and the
# kernel's rootflags=subvol=@; GRUB reads the top level, so its paths are /@/….
# GRUB is put on the disk without grub-install (no loop device, no mount):
# grub-mkimage builds the loader from the image's own GRUB modules with an
# early config that finds /boot/grub/grub.cfg on any partition, and for BIOS
# boot.img and core.img are patched as grub-bios-setup would (the sector of
# core.img in boot.img, core.img's own block list). The root file system is
# made with LABEL=root (fstab and root= use the label, so a
# reimage keeps working without flags).
# --lvm yes: the root partition (GPT type LVM, MBR 8e) is an LVM physical
# volume of volume group "vgkiosk" with one logical volume "root" holding the
# root file system, named /dev/mapper/vgkiosk-root in fstab and root= (a
# RHEL-like kiosk). v1 and v2 use the same group name (two builds of one
# product), each with its own UUID. Made with lvm's activation off (the host
# may have no device-mapper): metadata only, the file system written at the
# LV's extents. The image's initramfs-tools lvm2 hook activates it at boot;
# GRUB reads it with its lvm module. To add a root file system kind,
# write root_<fs> below (the partition is given as offset and size).
#
# Each version has the identity a reimage must keep (identity.list): a
# machine-id, an SSH host key, and a cert owned by kiosk:kiosk (uid 1001 in
# v1, 1002 in v2: owners are mapped by name), mode 0640, xattr
# user.reimage-test; and /etc/reimage-test-version. At boot the unit
# reimage-marker.service prints one line to ttyS0 and powers off:
#   REIMAGE-TEST-MARKER version=2 machine-id=<sha256> ssh-host-key=<sha256>
#     cert=<sha256> cert-meta=kiosk:kiosk:640 cert-xattr=<value> report=<outcome|none>
# Images are cached in /tmp keyed by this script and rootfs.sh. Needs root.
set -euo pipefail

die() {
	printf 'disk.sh: %s\n' "$*" >&2
	exit 1
}

firmware=bios table=gpt root_fs=ext4 root_part=primary ss=512 lvm=no version=
while [[ $# -gt 0 ]]; do
	case $1 in
	--firmware) firmware=$2 ;;
	--table) table=$2 ;;
	--root-fs) root_fs=$2 ;;
	--root-part) root_part=$2 ;;
	--sector-size) ss=$2 ;;
	--lvm) lvm=$2 ;;
	--version) version=$2 ;;
	*) die "unknown option $1" ;;
	esac
	shift 2 || die "option $1 needs a value"
done
[[ $version == 1 || $version == 2 ]] || die "--version 1|2 is required"
[[ $firmware == bios || $firmware == efi ]] || die "--firmware $firmware: bios or efi"
[[ $table == gpt || $table == mbr ]] || die "--table $table: gpt or mbr"
[[ $firmware/$table != efi/mbr ]] || die "--firmware efi needs --table gpt"
[[ $root_part == primary || $root_part/$table == logical/mbr ]] || die "--root-part $root_part: primary, or logical with --table mbr"
[[ $ss == 512 || $ss/$firmware/$table == 4096/efi/gpt ]] || die "--sector-size $ss: 512, or 4096 with --firmware efi --table gpt"
[[ $lvm == yes || $lvm == no ]] || die "--lvm $lvm: yes or no"
[[ $(id -u) -eq 0 ]] || die "must run as root"

here=$(cd "$(dirname "$0")" && pwd)
rootfs=$("$here/rootfs.sh")
key=$(cat "$here/rootfs.sh" "$here/disk.sh" | sha256sum | cut -c1-16)
cache=/tmp/reimage-disks-$key
out=$cache/$firmware-$table-$root_part-$ss-$root_fs$([[ $lvm == no ]] || echo -lvm)-v$version.img
if [[ -f $out ]]; then
	printf '%s\n' "$out"
	exit 0
fi
mkdir -p "$cache"
exec 9>"$out.lock"
flock 9
if [[ -f $out ]]; then
	printf '%s\n' "$out"
	exit 0
fi
stage=$(mktemp -d "$cache/.stage.XXXXXX")
mnt="" loop=""
cleanup() {
	[[ -z $mnt ]] || umount "$mnt" 2>/dev/null || true
	[[ -z $loop ]] || losetup -d "$loop" 2>/dev/null || true
	rm -rf "$stage" "$out.tmp" "$out.lock"
	[[ -f $out ]] || rm -f "$out.root"
}
trap cleanup EXIT
kver=$(cat "$rootfs/.kver")
MiB=$((1024 * 1024))

# --- the system tree ----------------------------------------------------------
tree=$stage/tree
cp -a "$rootfs" "$tree"
rm -f "$tree/.built" "$tree/.kver"
put() { # FILE MODE OWNER CONTENT
	mkdir -p "$(dirname "$1")"
	printf '%s' "$4" >"$1"
	chown "$3" "$1"
	chmod "$2" "$1"
}
# uid 1001 is kiosk in v1 and tss in v2 (kiosk moves to 1002).
if [[ $version == 1 ]]; then users=(kiosk:1001); else users=(tss:1001 kiosk:1002); fi
for u in "${users[@]}"; do
	printf '%s:x:%s:%s::/home/%s:/bin/sh\n' "${u%:*}" "${u#*:}" "${u#*:}" "${u%:*}" >>"$tree/etc/passwd"
	printf '%s:x:%s:\n' "${u%:*}" "${u#*:}" >>"$tree/etc/group"
	printf '%s:*:19000:0:99999:7:::\n' "${u%:*}" >>"$tree/etc/shadow"
done
put "$tree/etc/reimage-test-version" 0644 root:root "$version"$'\n'
put "$tree/etc/machine-id" 0444 root:root "$(printf 'machine-id v%s' "$version" | md5sum | cut -c1-32)"$'\n'
put "$tree/etc/ssh/ssh_host_ed25519_key" 0600 root:root "-----BEGIN OPENSSH PRIVATE KEY-----
test host key of image v$version
-----END OPENSSH PRIVATE KEY-----
"
kiosk=$((1000 + version)) # the numbers: the host has no user kiosk
put "$tree/etc/ssl/private/reimage-test.pem" 0640 "$kiosk:$kiosk" "-----BEGIN CERTIFICATE-----
test certificate of image v$version
-----END CERTIFICATE-----
"
setfattr -n user.reimage-test -v "cert-of-v$version" "$tree/etc/ssl/private/reimage-test.pem"
put "$tree/etc/hostname" 0644 root:root "reimage-test-v$version"$'\n'
# sub: where the system is inside the root file system, as GRUB sees it.
sub="" rootflags="" rootdev=LABEL=root
[[ $lvm == no ]] || rootdev=/dev/mapper/vgkiosk-root
case $root_fs in
btrfs)
	sub=/@ rootflags=' rootflags=subvol=@'
	put "$tree/etc/fstab" 0644 root:root "$rootdev / btrfs subvol=@ 0 0
$rootdev /home btrfs subvol=@home 0 0
"
	;;
xfs) put "$tree/etc/fstab" 0644 root:root "$rootdev / xfs defaults 0 0"$'\n' ;;
*) put "$tree/etc/fstab" 0644 root:root "$rootdev / $root_fs errors=remount-ro 0 0"$'\n' ;;
esac

# The marker: the only unit the boot waits for; it powers the machine off.
# shellcheck disable=SC2016 # the script is written as is
put "$tree/usr/local/sbin/reimage-marker" 0755 root:root '#!/bin/sh
sum() { if [ -f "$1" ]; then sha256sum <"$1" | cut -c1-64; else echo missing; fi; }
c=/etc/ssl/private/reimage-test.pem
r=none
[ -f /var/log/reimage/report.json ] && r=$(grep -o "\"outcome\": *\"[a-z-]*\"" /var/log/reimage/report.json | head -1 | sed "s/.*: *//; s/\"//g")
echo "REIMAGE-TEST-MARKER version=$(cat /etc/reimage-test-version) machine-id=$(sum /etc/machine-id)" \
	"ssh-host-key=$(sum /etc/ssh/ssh_host_ed25519_key) cert=$(sum $c) cert-meta=$(stat -c %U:%G:%a $c 2>/dev/null || echo missing)" \
	"cert-xattr=$(getfattr --only-values -n user.reimage-test $c 2>/dev/null || echo missing) report=${r:-none}"
'
# No default dependencies and a target that wants nothing else: systemd starts
# the marker at once on the read-only root (seconds, not minutes, under TCG).
put "$tree/etc/systemd/system/reimage-marker.service" 0644 root:root '[Unit]
Description=reimage test marker (prints the identity, then powers off)
DefaultDependencies=no
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/reimage-marker
StandardOutput=tty
TTYPath=/dev/ttyS0
'
put "$tree/etc/systemd/system/reimage-test.target" 0644 root:root '[Unit]
Description=reimage test boot (the marker only)
Requires=reimage-marker.service
AllowIsolate=yes
'
ln -sf reimage-test.target "$tree/etc/systemd/system/default.target"
mkdir -p "$tree/boot/grub"
case $firmware in
bios) cp -a "$tree/usr/lib/grub/i386-pc" "$tree/boot/grub/" ;;
efi) cp -a "$tree/usr/lib/grub/x86_64-efi" "$tree/boot/grub/" ;;
esac
put "$tree/boot/grub/grub.cfg" 0644 root:root "serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
menuentry 'Debian 12 reimage test image v$version' {
	linux $sub/boot/vmlinuz-$kver root=$rootdev$rootflags ro console=ttyS0 panic=-1 systemd.show_status=0
	initrd $sub/boot/initrd.img-$kver
}
"

# --- the disk -------------------------------------------------------------------
root_mib=$(($(du -sm "$tree" | cut -f1) * 5 / 4 + 64))
[[ $lvm == no ]] || root_mib=$((root_mib + 8)) # the PV's label, metadata area and extent rounding
case $firmware/$table in
bios/gpt) first_mib=1 first="size=1MiB,type=21686148-6453-6F6E-744E-656564454649,name=bios" ;;
efi/gpt) first_mib=32 first="size=32MiB,type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B,name=esp" ;;
bios/mbr) first_mib=0 first= ;;
esac
[[ $root_part == primary ]] || first_mib=1 # the extended partition's first EBR and alignment
total_mib=$((1 + first_mib + root_mib + 1))
truncate -s "$((total_mib * MiB))" "$out.tmp"
mbr_type=$([[ $lvm == yes ]] && echo 8e || echo 83)
s1=$((MiB / ss)) # the first MiB, in sectors
table_dev=$out.tmp
if [[ $ss != 512 ]]; then
	loop=$(losetup -f --show --sector-size "$ss" "$out.tmp")
	table_dev=$loop
fi
{
	printf 'label: %s\n' "$table"
	[[ -n $first ]] && printf 'start=%s,%s\n' "$s1" "$first"
	if [[ $table == gpt ]]; then
		printf 'size=%sMiB,type=%s,name=root\n' "$root_mib" "$([[ $lvm == yes ]] && echo E6D6D379-F507-44C2-A23C-238F2A3DF928 || echo L)"
	elif [[ $root_part == logical ]]; then
		printf 'start=%s,type=5\n' "$s1" # the extended partition fills the rest; 5, the root, is inside it
		printf 'start=%s,size=%sMiB,type=%s\n' "$((2 * s1))" "$root_mib" "$mbr_type"
	else
		printf 'size=%sMiB,type=%s,bootable\n' "$root_mib" "$mbr_type"
	fi
} | sfdisk -q --no-reread "$table_dev"
parts=$(sfdisk --json "$table_dev")
if [[ -n $loop ]]; then
	losetup -d "$loop"
	loop=
fi
pstart() { printf '%s' "$parts" | grep -o '"start": *[0-9]*' | sed -n "${1}p" | grep -o '[0-9]*$'; }
psize() { printf '%s' "$parts" | grep -o '"size": *[0-9]*' | sed -n "${1}p" | grep -o '[0-9]*$'; }
rootn=$([[ -n $first || $root_part == logical ]] && echo 2 || echo 1) # its place in sfdisk's list

root_ext4() { # OFFSET_BYTES SIZE_BYTES
	mkfs.ext4 -q -L root -U "$(printf 'reimage-test-root' | md5sum | sed -E 's/(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/')" \
		-E "offset=$1" -d "$tree" "$out.tmp" "$(($2 / 1024))k"
}
# filled: a file system made by mkfs ARGS... in a file of SIZE bytes, filled
# from the tree through a loop mount by FILL (run in the mounted directory),
# then copied to OFFSET of the disk.
filled() { # OFFSET SIZE FILL MKFS ARGS...
	local off=$1 size=$2 fill=$3 fs=$stage/root.fs
	shift 3
	truncate -s "$size" "$fs"
	"$@" "$fs" >/dev/null
	mnt=$stage/mnt
	mkdir -p "$mnt"
	mount -o loop "$fs" "$mnt"
	"$fill" "$mnt"
	umount "$mnt"
	mnt=
	dd if="$fs" of="$out.tmp" bs=1M seek="$off" oflag=seek_bytes conv=notrunc,sparse status=none
	rm -f "$fs"
}
fill_plain() { cp -a "$tree/." "$1/"; }
fill_subvols() { # @ holds the system but /home, @home holds /home
	btrfs -q subvolume create "$1/@"
	btrfs -q subvolume create "$1/@home"
	tar -C "$tree" --exclude='./home/*' --xattrs --xattrs-include='*' --acls -cf - . | tar -C "$1/@" --xattrs --xattrs-include='*' --acls -xpf -
	cp -a "$tree/home/." "$1/@home/"
}
root_xfs() { filled "$1" "$2" fill_plain mkfs.xfs -q -L root -m uuid=0ca5e6f0-1d2c-4f3a-9b8e-7a6d5c4b3a1"$version" -f; }
root_btrfs() { filled "$1" "$2" fill_subvols mkfs.btrfs -q -L root -U 0ca5e6f0-1d2c-4f3a-9b8e-7a6d5c4b3a2"$version" -f; }
# lvm_root PART_OFFSET PART_SIZE: the root partition made a PV of vgkiosk
# with LV root filling it; root_at becomes the LV's byte offset and size on the disk.
lvm_root() {
	local cfg='global{activation=0} devices{obtain_device_list_from_udev=0 external_device_info_source="none"}' pe first size
	loop=$(losetup -f --show --sector-size "$ss" -o "$1" --sizelimit "$2" "$out.tmp")
	local on=(--config "$cfg" --devices "$loop")
	{
		pvcreate -q "${on[@]}" -y "$loop"
		vgcreate -q "${on[@]}" vgkiosk "$loop"
		lvcreate -q "${on[@]}" -an -Zn -y -l 100%FREE -n root vgkiosk
	} >"$stage/lvm.log" 2>&1 || die "lvm: $(grep -v leaked "$stage/lvm.log" | tail -3)"
	pe=$(pvs "${on[@]}" --noheadings --units b --nosuffix -o pe_start "$loop" 2>/dev/null | tr -d ' ')
	read -r first size < <(lvs "${on[@]}" --noheadings --units b --nosuffix -o seg_pe_ranges,lv_size vgkiosk/root 2>/dev/null | sed 's/.*:\([0-9]*\)-[0-9]* */\1 /')
	local extent
	extent=$(vgs "${on[@]}" --noheadings --units b --nosuffix -o vg_extent_size vgkiosk 2>/dev/null | tr -d ' ')
	losetup -d "$loop"
	loop=
	root_at="$(($1 + pe + first * extent)) $size"
}
export LVM_SUPPRESS_FD_WARNINGS=1
declare -F "root_$root_fs" >/dev/null || die "--root-fs $root_fs: not supported (write root_$root_fs in disk.sh)"
root_at="$(($(pstart "$rootn") * ss)) $(($(psize "$rootn") * ss))"
# shellcheck disable=SC2086 # two numbers
[[ $lvm == no ]] || lvm_root $root_at
# shellcheck disable=SC2086 # two numbers
"root_$root_fs" $root_at

# GRUB: one early config for both firmwares, the modules a root needs built in.
# shellcheck disable=SC2016 # GRUB expands these
printf '%s\n' "search --no-floppy --file --set=root $sub/boot/grub/grub.cfg" "set prefix=(\$root)$sub/boot/grub" \
	'configfile $prefix/grub.cfg' >"$stage/early.cfg"
mods=(part_gpt part_msdos ext2 xfs btrfs lvm search search_fs_file configfile normal linux serial terminal echo test)
case $firmware in
bios)
	grub-mkimage -O i386-pc -d "$tree/usr/lib/grub/i386-pc" -c "$stage/early.cfg" -p /boot/grub -o "$stage/core.img" biosdisk "${mods[@]}"
	core_sector=$([[ -n $first ]] && pstart 1 || echo 1)
	core_sectors=$((($(stat -c %s "$stage/core.img") + 511) / 512))
	[[ $((core_sector + core_sectors)) -le 2048 || -n $first ]] || die "core.img ($core_sectors sectors) does not fit before the first partition"
	dd if="$stage/core.img" of="$out.tmp" bs=512 seek="$core_sector" conv=notrunc status=none
	le() { # VALUE BYTES: little-endian bytes for printf
		local v=$1 i
		for ((i = 0; i < $2; i++)); do printf '\\x%02x' $(((v >> (8 * i)) & 255)); done
	}
	at() { printf '%b' "$2" | dd of="$out.tmp" bs=1 seek="$1" conv=notrunc status=none; }
	dd if="$tree/usr/lib/grub/i386-pc/boot.img" of="$out.tmp" bs=440 count=1 conv=notrunc status=none
	at $((0x5c)) "$(le "$core_sector" 8)"       # boot.img: the sector of core.img
	at $((0x66)) '\x90\x90'                     # boot.img: trust the BIOS drive number (a hard disk)
	base=$((core_sector * 512))
	at $((base + 488)) "$(le 0 12)"             # core.img: block list terminator
	at $((base + 500)) "$(le $((core_sector + 1)) 8)$(le $((core_sectors - 1)) 2)$(le $((0x820)) 2)"
	;;
efi)
	grub-mkimage -O x86_64-efi -d "$tree/usr/lib/grub/x86_64-efi" -c "$stage/early.cfg" -p /boot/grub -o "$stage/BOOTX64.EFI" "${mods[@]}"
	esp=$stage/esp.img
	truncate -s "$(($(psize 1) * ss))" "$esp"
	fat_ss=() # mformat -S N: sectors of 128 << N bytes, the disk's own; -T: how many (it counts 512-byte ones)
	[[ $ss == 512 ]] || fat_ss=(-S 5 -T "$(psize 1)")
	mformat -i "$esp" -v ESP -N 52454954 "${fat_ss[@]}" ::
	mmd -i "$esp" ::/EFI ::/EFI/BOOT
	mcopy -i "$esp" "$stage/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
	dd if="$esp" of="$out.tmp" bs=1M seek="$(($(pstart 1) * ss))" oflag=seek_bytes conv=notrunc,sparse status=none
	;;
esac
printf '%s\n' "$root_at" >"$out.root"
mv "$out.tmp" "$out"
printf '%s\n' "$out"
