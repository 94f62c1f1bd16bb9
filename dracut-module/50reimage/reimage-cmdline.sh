#!/bin/sh
# dracut cmdline hook (initramfs without systemd). dracut's init stops when
# root= is empty, before any pre-mount hook could run; a reimage boot has no
# root of its own (the pre-mount hook reboots, halts or powers off), so when
# rd.reimage is on and root= is not, the root is marked as handled.
# shellcheck disable=SC2034 # root and rootok are read by dracut's init
if getargbool 0 rd.reimage && [ -z "$root" ]; then
    root=reimage
    rootok=1
fi
