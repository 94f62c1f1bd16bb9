// QEMU command lines, for the two boots vm-test and the VM tier make: the
// reimage initrd (-kernel/-initrd, the flow under test) and the result (no
// kernel: the firmware boots the disk as a machine would, SeaBIOS or OVMF).
// Serial console to a file, -no-reboot so a reboot or power-off ends QEMU,
// virtio disks with serials, USB sticks. TCG unless told KVM (accel.ts).
// blkdebug: a QEMU blkdebug rules file injecting I/O errors into this drive.
// serialPipe: the console is also the FIFOs PATH.in (what a test types) and
// PATH.out (what the guest prints, for the test to drain); everything the guest
// prints still goes to serialLog. (Not a Unix socket: with one that a test
// read slowly, a byte once stood twice in the log, 'Tyype "yes"', which fits
// QEMU logging a write that failed and again when the UART retries it; a
// pipe holds 64 KiB.)
// sectorSize: the disk's logical (and physical) sector size; 4096 is a 4Kn disk (virtio only).
export type Drive = { file: string; serial: string; usb?: boolean; blkdebug?: string; sectorSize?: number };

export type Accel = 'kvm' | 'tcg';

// Ovmf: UEFI firmware as two flash images (code read-only, a private copy of the variables).
export type Ovmf = { code: string; vars: string };

// kernel/initrd/append: boot that kernel; without them the first drive is booted by the firmware.
// net: a virtio NIC on QEMU's user network (the host's loopback is 10.0.2.2 from the guest).
// pxe: boot from that NIC instead of -kernel/-initrd: QEMU's iPXE ROM gets
// BOOTFILE (an iPXE script) over TFTP from DIR, and the script loads the
// kernel and the initrd (their URLs, and the kernel arguments, are the script's).
export type Pxe = { tftp: string; bootfile: string };
export type VmSpec = {
  kernel?: string;
  initrd?: string;
  append?: string;
  drives: Drive[];
  serialLog: string;
  memMiB?: number;
  serialPipe?: string;
  net?: boolean;
  pxe?: Pxe;
  accel?: Accel;
  ovmf?: Ovmf;
};

// The console every VM boot uses, before the caller's kernel arguments.
export const CONSOLE_ARGS = 'console=ttyS0 panic=-1';

// ipxeScript: the iPXE script that network-boots the reimage initrd: DHCP, then kernel and initrd by URL (http:// or tftp://).
export function ipxeScript(kernelUrl: string, initrdUrl: string, append: string): string {
  return ['#!ipxe', 'dhcp', `kernel ${kernelUrl} ${append}`, `initrd ${initrdUrl}`, 'boot', ''].join('\n');
}

export function qemuArgs(v: VmSpec): string[] {
  const accel = v.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg', '-cpu', 'max'];
  const args = [...accel, '-m', String(v.memMiB ?? 1536), '-smp', '2', '-display', 'none', '-no-reboot', '-monitor', 'none', '-nodefaults'];
  if (v.serialPipe) args.push('-chardev', `pipe,id=ser0,path=${v.serialPipe},logfile=${v.serialLog}`, '-serial', 'chardev:ser0');
  else args.push('-serial', `file:${v.serialLog}`);
  if (v.ovmf) args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${v.ovmf.code}`, '-drive', `if=pflash,format=raw,unit=1,file=${v.ovmf.vars}`);
  if (v.pxe) args.push('-nic', `user,model=virtio-net-pci,tftp=${v.pxe.tftp},bootfile=${v.pxe.bootfile}`, '-boot', 'n');
  else if (v.kernel) args.push('-kernel', v.kernel, '-initrd', v.initrd ?? '', '-append', `${CONSOLE_ARGS} ${v.append ?? ''}`);
  // A firmware that finds nothing to boot reboots after 1 s (SeaBIOS; 0 means its default, 60 s), and -no-reboot ends QEMU.
  else args.push('-boot', 'strict=on,reboot-timeout=1000');
  if (v.net && !v.pxe) args.push('-nic', 'user,model=virtio-net-pci');
  if (v.drives.some((d) => d.usb)) args.push('-device', 'qemu-xhci,id=xhci');
  v.drives.forEach((d, i) => {
    const file = d.blkdebug ? `file.driver=blkdebug,file.config=${d.blkdebug},file.image.filename=${d.file}` : `file=${d.file}`;
    args.push('-drive', `${file},format=raw,if=none,id=d${i}`);
    const boot = !v.kernel && i === 0 ? ',bootindex=0' : '';
    const blocks = d.sectorSize && d.sectorSize !== 512 ? `,logical_block_size=${d.sectorSize},physical_block_size=${d.sectorSize}` : '';
    args.push('-device', d.usb ? `usb-storage,bus=xhci.0,drive=d${i},serial=${d.serial},removable=on${boot}` : `virtio-blk-pci,drive=d${i},serial=${d.serial}${blocks}${boot}`);
  });
  return args;
}
