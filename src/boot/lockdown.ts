// No unauthenticated root shell on a kiosk. The initramfs generators fall back
// to a root shell on the console when something goes wrong, unless told not to:
//
// - dracut (dracut-ng modules.d/10emergency/dracut-emergency.sh and
//   modules.d/99base/dracut-lib.sh emergency_shell(); dracut 059:
//   98dracut-systemd/dracut-emergency.sh): `getargbool 1 rd.shell` — a shell
//   unless `rd.shell=0`; then `rd.emergency=reboot|poweroff|halt` is carried
//   out (default halt in 059, poweroff in dracut-ng). Both are read with
//   getarg, which also reads /etc/cmdline.d/*.conf inside the initrd.
// - initramfs-tools (scripts/functions panic(), 0.142): with `panic=N` (N > 0)
//   "Rebooting automatically due to panic= boot argument" after N seconds,
//   else `sh -i` on the console. /init sets `panic` from /conf/conf.d/* and
//   then from the kernel command line.
// - the kernel itself: `panic=N` reboots N seconds after a kernel panic (init
//   dying included) instead of hanging.
//
// Reboot, not halt: these paths run before our binary has written anything
// (after the point of no return the binary and its glue decide, and they halt);
// rebooting brings the old system back, the one-shot arm being consumed.
// The baked policy's `allowShell` lifts all of it (a lab or a technician's
// initrd); the kernel arguments cannot, see config.ts.

export const PANIC_SECONDS = 10;

// lockdownArgs: the kernel arguments `arm` writes and the initrd bakes in
// (/etc/cmdline.d for dracut, conf.d for initramfs-tools) unless shells are allowed.
export const lockdownArgs = (allowShell: boolean): string[] => (allowShell ? [] : ['rd.shell=0', 'rd.emergency=reboot', `panic=${PANIC_SECONDS}`]);
