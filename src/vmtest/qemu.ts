// QEMU command lines for proving the initrd flow: software emulation (TCG;
// KVM guests hang on some CI hosts), serial console to a file, -no-reboot so
// a reboot or power-off ends QEMU, virtio disks with serials, USB sticks.
// blkdebug: a QEMU blkdebug rules file injecting I/O errors into this drive.
// serialSocket: the console is also a Unix socket (QEMU listens), so a test can
// type at it; everything the guest prints still goes to serialLog.
export type Drive = { file: string; serial: string; usb?: boolean; blkdebug?: string };

// net: a virtio NIC on QEMU's user network (the host's loopback is 10.0.2.2 from the guest).
export type VmSpec = { kernel: string; initrd: string; append: string; drives: Drive[]; serialLog: string; memMiB?: number; serialSocket?: string; net?: boolean };

export function qemuArgs(v: VmSpec): string[] {
  const args = ['-accel', 'tcg', '-cpu', 'max', '-m', String(v.memMiB ?? 1536), '-smp', '2', '-display', 'none', '-no-reboot', '-monitor', 'none', '-nodefaults'];
  if (v.serialSocket) args.push('-chardev', `socket,id=ser0,path=${v.serialSocket},server=on,wait=off,logfile=${v.serialLog}`, '-serial', 'chardev:ser0');
  else args.push('-serial', `file:${v.serialLog}`);
  args.push('-kernel', v.kernel, '-initrd', v.initrd, '-append', `console=ttyS0 panic=-1 ${v.append}`);
  if (v.net) args.push('-nic', 'user,model=virtio-net-pci');
  if (v.drives.some((d) => d.usb)) args.push('-device', 'qemu-xhci,id=xhci');
  v.drives.forEach((d, i) => {
    const file = d.blkdebug ? `file.driver=blkdebug,file.config=${d.blkdebug},file.image.filename=${d.file}` : `file=${d.file}`;
    args.push('-drive', `${file},format=raw,if=none,id=d${i}`);
    args.push('-device', d.usb ? `usb-storage,bus=xhci.0,drive=d${i},serial=${d.serial},removable=on` : `virtio-blk-pci,drive=d${i},serial=${d.serial}`);
  });
  return args;
}
