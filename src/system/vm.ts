// QEMU: the verbs that boot a virtual machine (vm-test).
import { runVia, type Via } from './exec.ts';

// qemuBoot: run qemu-system-x86_64 with ARGS until the guest powers off,
// TIMEOUTMS passes, or STOP is aborted (then QEMU is ended and that is no
// failure: the caller saw what it waited for) (exit default: vmTest).
export async function qemuBoot(args: readonly string[], timeoutMs: number, v: Via = {}, stop?: AbortSignal): Promise<void> {
  await runVia(v)('qemu-system-x86_64', args, { timeoutMs, exit: v.exit ?? 'vmTest', ...(stop ? { signal: stop } : {}) });
}

// qemuProbe: run a probe guest that ends QEMU through isa-debug-exit (exit 1
// from QEMU); false when it does not within TIMEOUTMS or QEMU fails.
export async function qemuProbe(args: readonly string[], timeoutMs: number, v: Via = {}): Promise<boolean> {
  return runVia(v)('qemu-system-x86_64', args, { timeoutMs, okCodes: [1], exit: v.exit ?? 'environment' }).then(
    () => true,
    () => false,
  );
}
