#!/bin/sh
# reimage entry glue, independent of the initramfs generator. It runs the
# binary and carries out the action the binary chose (/run/reimage/action):
#   continue  not armed, or plan mode: return and let the boot go on
#   reboot    success, or a failure before the point of no return (nothing
#             was written: the old system boots again)
#   poweroff  after success when configured, or on-failure=poweroff
#   shell     a failure after the point of no return, when the policy allows
#   halt      a failure after the point of no return: stop with the reason on
#             the console; the disk was made unbootable on purpose
# Everything here is readable on a serial console.
BIN=/usr/lib/reimage/reimage
ACTION_FILE=/run/reimage/action

# The binary is installed without its exec bit so dracut does not strip it.
[ -x "$BIN" ] || chmod 0755 "$BIN"
rm -f "$ACTION_FILE"
"$BIN" boot
code=$?
action=$(cat "$ACTION_FILE" 2>/dev/null)
if [ -z "$action" ]; then
    echo "reimage: the binary ended with exit $code and chose no action; stopping to be safe"
    action=halt
fi

case "$action" in
continue)
    exit 0
    ;;
reboot)
    if [ "$code" -ne 0 ]; then
        echo "reimage: failed before writing (exit $code); nothing was written. Rebooting into the old system in 10 s."
        sleep 10
    else
        echo "reimage: done; rebooting into the new system."
    fi
    sync
    reboot -f
    ;;
poweroff)
    echo "reimage: powering off (exit $code)."
    sync
    poweroff -f
    ;;
shell)
    echo "reimage: FAILED after the point of no return (exit $code). The disk will not boot."
    echo "reimage: the log is /run/initramfs/reimage.log. Starting a shell."
    while :; do sh -i; done
    ;;
*)
    echo "reimage: FAILED after the point of no return (exit $code). The disk will not boot."
    echo "reimage: the reason is above; the log is /run/initramfs/reimage.log. Halted."
    while :; do sleep 3600; done
    ;;
esac
