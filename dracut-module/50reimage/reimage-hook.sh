#!/bin/sh
# dracut pre-mount hook (initramfs without systemd). Hooks are sourced by
# dracut's init, so the work runs in a child shell and never exits init.
if getargbool 0 rd.reimage; then
    /bin/sh /usr/lib/reimage/reimage-entry.sh
fi
