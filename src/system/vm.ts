// QEMU: the one verb that boots a virtual machine (vm-test).
import { runVia, type Via } from './exec.ts';

// qemuBoot: run qemu-system-x86_64 with ARGS until the guest powers off or
// TIMEOUTMS passes (exit default: vmTest).
export async function qemuBoot(args: readonly string[], timeoutMs: number, v: Via = {}): Promise<void> {
  await runVia(v)('qemu-system-x86_64', args, { timeoutMs, exit: v.exit ?? 'vmTest' });
}
