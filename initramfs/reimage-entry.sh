#!/bin/sh
# reimage entry glue, independent of the initramfs generator. It runs the
# binary and carries out the action the binary chose (/run/reimage/action):
#   continue  plan mode with a root= to boot: return and let the boot go on
#   reboot    success, or a failure before the point of no return (nothing
#             was written: the old system boots again)
#   poweroff  after success when configured, or on-failure=poweroff
#   shell     a failure after the point of no return, when the policy allows
#   halt      a failure after the point of no return: stop with the reason on
#             the console; the disk was made unbootable on purpose
# The binary writes "reboot" into the action file as soon as it starts and
# the failure action right before the point of no return, so a crash (or a
# kill) leaves the right word there. No file at all means the binary never
# started: nothing was written, reboot. A word this script does not know:
# halt. Every way out ends in reboot, poweroff, halt or the shell the policy
# allowed; this script never returns to the generator except on "continue".
# Everything here is readable on a serial console.
BIN=/usr/lib/reimage/reimage
ACTION_FILE=/run/reimage/action

# A ^C, hang-up or stop request reaches the binary (which decides what it
# means); this script survives it and still carries out the action. A
# handler, not '' (ignored): an ignored signal would stay ignored in the binary.
trap 'echo "reimage: signal received; waiting for the binary"' INT TERM HUP

# halt_forever: stop here, never return to the generator (its fallback is a shell).
halt_forever() {
    while :; do sleep 3600; done
}

# The binary is installed without its exec bit so dracut does not strip it.
[ -x "$BIN" ] || chmod 0755 "$BIN"
rm -f "$ACTION_FILE"
"$BIN" boot
code=$?
action=$(cat "$ACTION_FILE" 2>/dev/null)
if [ -z "$action" ]; then
    echo "reimage: the binary ended with exit $code before it started (no action chosen); nothing was written"
    action=reboot
    [ "$code" -ne 0 ] || code=1
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
    echo "reimage: reboot failed; halted."
    halt_forever
    ;;
poweroff)
    echo "reimage: powering off (exit $code)."
    sync
    poweroff -f
    echo "reimage: power-off failed; halted."
    halt_forever
    ;;
shell)
    echo "reimage: FAILED after the point of no return (exit $code). The disk will not boot."
    echo "reimage: the log is /run/initramfs/reimage.log. Starting a shell."
    while :; do sh -i; done
    ;;
halt)
    echo "reimage: FAILED after the point of no return (exit $code). The disk will not boot."
    echo "reimage: the reason is above; the log is /run/initramfs/reimage.log. Halted."
    halt_forever
    ;;
*)
    echo "reimage: the binary chose an unknown action \"$action\" (exit $code); halted to be safe."
    halt_forever
    ;;
esac
