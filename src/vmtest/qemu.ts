// QEMU command lines for proving the initrd flow: software emulation (TCG;
// KVM guests hang on some CI hosts), serial console to a file, -no-reboot so
// a reboot or power-off ends QEMU, virtio disks with serials, USB sticks.
// blkdebug: a QEMU blkdebug rules file injecting I/O errors into this drive.
// serialSocket: the console is also a Unix socket (QEMU listens), so a test can
// type at it; everything the guest prints still goes to serialLog.
export type Drive = { file: string; serial: string; usb?: boolean; blkdebug?: string };

// net: a virtio NIC on QEMU's user network (the host's loopback is 10.0.2.2 from the guest).
// pxe: boot from that NIC instead of -kernel/-initrd: QEMU's iPXE ROM gets
// BOOTFILE (an iPXE script) over TFTP from DIR, and the script loads the
// kernel and the initrd (their URLs, and the kernel arguments, are the script's).
export type Pxe = { tftp: string; bootfile: string };
export type VmSpec = { kernel: string; initrd: string; append: string; drives: Drive[]; serialLog: string; memMiB?: number; serialSocket?: string; net?: boolean; pxe?: Pxe };

// The console every VM boot uses, before the caller's kernel arguments.
export const CONSOLE_ARGS = 'console=ttyS0 panic=-1';

// ipxeScript: the iPXE script that network-boots the reimage initrd: DHCP, then kernel and initrd by URL (http:// or tftp://).
export function ipxeScript(kernelUrl: string, initrdUrl: string, append: string): string {
  return ['#!ipxe', 'dhcp', `kernel ${kernelUrl} ${append}`, `initrd ${initrdUrl}`, 'boot', ''].join('\n');
}

export function qemuArgs(v: VmSpec): string[] {
  const args = ['-accel', 'tcg', '-cpu', 'max', '-m', String(v.memMiB ?? 1536), '-smp', '2', '-display', 'none', '-no-reboot', '-monitor', 'none', '-nodefaults'];
  if (v.serialSocket) args.push('-chardev', `socket,id=ser0,path=${v.serialSocket},server=on,wait=off,logfile=${v.serialLog}`, '-serial', 'chardev:ser0');
  else args.push('-serial', `file:${v.serialLog}`);
  if (v.pxe) args.push('-nic', `user,model=virtio-net-pci,tftp=${v.pxe.tftp},bootfile=${v.pxe.bootfile}`, '-boot', 'n');
  else args.push('-kernel', v.kernel, '-initrd', v.initrd, '-append', `${CONSOLE_ARGS} ${v.append}`);
  if (v.net && !v.pxe) args.push('-nic', 'user,model=virtio-net-pci');
  if (v.drives.some((d) => d.usb)) args.push('-device', 'qemu-xhci,id=xhci');
  v.drives.forEach((d, i) => {
    const file = d.blkdebug ? `file.driver=blkdebug,file.config=${d.blkdebug},file.image.filename=${d.file}` : `file=${d.file}`;
    args.push('-drive', `${file},format=raw,if=none,id=d${i}`);
    args.push('-device', d.usb ? `usb-storage,bus=xhci.0,drive=d${i},serial=${d.serial},removable=on` : `virtio-blk-pci,drive=d${i},serial=${d.serial}`);
  });
  return args;
}
