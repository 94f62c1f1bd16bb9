#!/bin/sh
# dracut cmdline hook (with and without systemd): on a reimage boot, dracut's
# lvm module must not activate every volume group it finds (its udev rule runs
# `vgchange -ay` for each physical volume): the target's old group would hold
# the disk busy, and a group of the same name on another disk would clash.
# reimage activates the target's groups itself, seeing only the target's
# partitions (src/stages/lvm.ts). This is what rd.lvm=0 does (parse-lvm.sh).
if getargbool 0 rd.reimage; then
    rm -f -- /etc/udev/rules.d/64-lvm*.rules
fi
