// Which accelerator vm-test's QEMU gets. KVM only when it really runs a guest
// here: /dev/kvm can exist and open while every guest hangs in it (nested
// virtualisation without the CPU's extensions, as on this project's CI
// machine). The proof is a 512-byte boot sector that prints to the serial
// port and ends QEMU through isa-debug-exit: under working KVM it takes well
// under a second, so PROBE_MS bounds the wait. REIMAGE_VM_ACCEL=kvm|tcg
// skips the probe (CI that knows its machine; a test that must not wait).
import { constants } from 'node:fs';
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { usageError } from '../errors.ts';
import { qemuProbe } from '../system/tools.ts';
import type { Run } from '../system/exec.ts';
import type { Accel } from './qemu.ts';

export const PROBE_MS = 5000;

// The probe guest (16-bit real mode, loaded at 0x7c00 by the BIOS):
//   mov dx,0x3f8; mov si,msg; l: lodsb; or al,al; jz d; out dx,al; jmp l
//   d: mov al,0; out 0xf4,al; hlt; jmp $      msg: "KVM-OK\n",0
const CODE = [0xba, 0xf8, 0x03, 0xbe, 0x15, 0x7c, 0xac, 0x08, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8, 0xb0, 0x00, 0xe6, 0xf4, 0xf4, 0xeb, 0xfe];

// probeSector: the probe's boot sector.
export function probeSector(): Buffer {
  const b = Buffer.alloc(512);
  Buffer.from(CODE).copy(b, 0);
  b.write('KVM-OK\n\0', CODE.length, 'latin1');
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

export type AccelChoice = { accel: Accel; why: string };

// chooseAccel: the accelerator for this machine (ENV's REIMAGE_VM_ACCEL first, then the probe in WORK).
export async function chooseAccel(work: string, env: NodeJS.ProcessEnv = process.env, run?: Run): Promise<AccelChoice> {
  const forced = env.REIMAGE_VM_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return { accel: forced, why: `REIMAGE_VM_ACCEL=${forced}` };
  if (forced !== undefined && forced !== '' && forced !== 'auto') throw usageError(`REIMAGE_VM_ACCEL=${forced} is not an accelerator: set kvm, tcg or auto (or unset it)`);
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { accel: 'tcg', why: '/dev/kvm is not usable' };
  }
  const img = join(work, 'kvm-probe.img');
  await writeFile(img, probeSector());
  const args = ['-accel', 'kvm', '-m', '16', '-nodefaults', '-display', 'none', '-no-reboot', '-serial', 'none', '-drive', `file=${img},format=raw,if=virtio`];
  const ok = await qemuProbe([...args, '-device', 'isa-debug-exit,iobase=0xf4,iosize=1'], PROBE_MS, run ? { run } : {});
  return ok ? { accel: 'kvm', why: 'a probe guest ran under KVM' } : { accel: 'tcg', why: `a probe guest did not finish under KVM within ${PROBE_MS / 1000} s` };
}
