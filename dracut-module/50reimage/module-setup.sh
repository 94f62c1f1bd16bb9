#!/bin/bash
# dracut module "reimage": puts the reimage binary, its policy and the tools it
# calls into an initramfs, and runs it before the root file system is mounted
# when rd.reimage is on the kernel command line. Opt-in only: it never enters a
# host's normal initramfs unless asked for (dracut --add reimage, or
# `reimage initrd`, which does that into an explicit file).
#
# Build-time environment (set by `reimage initrd`):
#   REIMAGE_BIN     the single executable (default /usr/lib/reimage/reimage)
#   REIMAGE_GLUE    directory holding reimage-entry.sh (default: ../../initramfs)
#   REIMAGE_CONFIG  directory baked in as /etc/reimage (config.json, retention.list)
#   REIMAGE_LOCKDOWN kernel arguments baked into /etc/cmdline.d (empty: none)

# dracut provides initdir, moddir and systemdsystemunitdir.
# shellcheck disable=SC2154

# called by dracut
check() {
    # 255: only when named explicitly.
    return 255
}

# called by dracut
depends() {
    echo base fs-lib
    return 0
}

# called by dracut
installkernel() {
    # Disks and file systems a kiosk, an ATM, a USB stick or a VM may carry.
    hostonly='' instmods virtio_blk virtio_scsi virtio_pci sd_mod ahci ata_piix nvme \
        usb_storage uas xhci_pci xhci_hcd ehci_pci ehci_hcd mmc_block sdhci_pci \
        ext4 vfat xfs btrfs iso9660 nls_cp437 nls_iso8859_1 nls_utf8 dm_mod efivarfs
}

# called by dracut
install() {
    local bin="${REIMAGE_BIN:-/usr/lib/reimage/reimage}"
    local glue="${REIMAGE_GLUE:-$moddir/../../initramfs}"
    [[ -f $bin ]] || {
        derror "reimage: binary $bin not found (set REIMAGE_BIN)"
        return 1
    }
    # The Node single executable goes in WITHOUT its exec bit: dracut strips
    # every executable file at the end of the build, and stripping corrupts a
    # Node SEA (it segfaults at start). The entry glue sets the bit at run
    # time. Because dracut resolves shared libraries only for executables,
    # the binary's libraries are installed here explicitly.
    mkdir -p "$initdir/usr/lib/reimage"
    cp --preserve=timestamps "$bin" "$initdir/usr/lib/reimage/reimage"
    chmod 0644 "$initdir/usr/lib/reimage/reimage"
    local lib
    for lib in $(ldd "$bin" | sed -n -e 's/.*=> \(\/[^ ]*\) .*/\1/p' -e 's/^[[:space:]]*\(\/[^ ]*\) .*/\1/p'); do
        inst_library "$lib"
    done
    inst_simple "$glue/reimage-entry.sh" /usr/lib/reimage/reimage-entry.sh

    # What the binary calls. lbzip2/pigz are faster but optional.
    inst_multiple sh chmod cat sleep sync setsid sfdisk partx addpart blockdev blkid \
        mount umount getfattr setfattr e2fsck resize2fs debugfs xz bzip2 blkdiscard reboot poweroff
    # efibootmgr: the firmware's boot entry follows the new ESP (src/stages/efi.ts).
    inst_multiple -o lbzip2 pigz udevadm efibootmgr
    # For a technician at the diagnostic or failure shell: read the log, look at the disks.
    inst_multiple -o grep less tail head ls lsblk dmesg

    # The baked policy.
    mkdir -p "$initdir/etc/reimage"
    if [[ -n ${REIMAGE_CONFIG-} ]]; then
        local f
        for f in "$REIMAGE_CONFIG"/*; do
            [[ -f $f ]] && inst_simple "$f" "/etc/reimage/${f##*/}"
        done
    fi

    # No root shell on the console unless the baked policy allows one
    # (src/boot/lockdown.ts): dracut's getarg reads /etc/cmdline.d/*.conf as
    # kernel arguments, so rd.shell=0 rd.emergency=reboot hold even when the
    # initrd is booted by hand. `reimage initrd` sets REIMAGE_LOCKDOWN (empty
    # when allowShell); a plain `dracut --add reimage` gets the lockdown.
    local lockdown="${REIMAGE_LOCKDOWN-rd.shell=0 rd.emergency=reboot panic=10}"
    if [[ -n $lockdown ]]; then
        mkdir -p "$initdir/etc/cmdline.d"
        printf '%s\n' "$lockdown" >"$initdir/etc/cmdline.d/50reimage-lockdown.conf"
    fi

    # LVM: the binary activates the target's volume groups itself (lvm from dracut's lvm module, or here).
    inst_multiple -o lvm
    inst_hook cmdline 91 "$moddir/reimage-lvm.sh"

    if dracut_module_included "systemd"; then
        # A unit, not a dracut hook: with systemd a failing hook unit does not
        # stop the boot, and the unit gets the console for confirmation.
        inst_simple "$moddir/reimage.service" "$systemdsystemunitdir/reimage.service"
        mkdir -p "$initdir$systemdsystemunitdir/initrd.target.wants"
        ln_r "$systemdsystemunitdir/reimage.service" "$systemdsystemunitdir/initrd.target.wants/reimage.service"
    else
        inst_hook cmdline 90 "$moddir/reimage-cmdline.sh"
        inst_hook pre-mount 50 "$moddir/reimage-hook.sh"
    fi
}
