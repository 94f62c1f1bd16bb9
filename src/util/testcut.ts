// Test hooks for power-cut tests: with REIMAGE_TEST_CUT=NAME in the
// environment, the process kills itself with SIGKILL (no cleanup runs, like a
// power cut) when it reaches the cut point NAME; with REIMAGE_TEST_PAUSE=NAME
// (the kernel argument rd.reimage.test-pause in the initramfs) it waits there
// for the test to cut the power of its VM. Unset, nothing happens.

// cutArmed: whether the test asked for a cut at NAME.
export const cutArmed = (name: string): boolean => process.env['REIMAGE_TEST_CUT'] === name;

// testCut: at cut point NAME, when armed, the process dies on the spot.
export function testCut(name: string, warn: (line: string) => void): void {
  if (!cutArmed(name)) return;
  warn(`${name} cut point reached (REIMAGE_TEST_CUT): killing this process`);
  process.kill(process.pid, 'SIGKILL');
}

// PAUSE_MS: how long a pause waits before the run goes on (a test cuts long before).
const PAUSE_MS = 30 * 60_000;

// testPause: at pause point NAME, when asked for, the run waits (a VM test kills QEMU meanwhile).
export async function testPause(name: string, warn: (line: string) => void): Promise<void> {
  if (process.env['REIMAGE_TEST_PAUSE'] !== name) return;
  warn(`${name} pause point reached (rd.reimage.test-pause): waiting for the power cut`);
  await new Promise((r) => setTimeout(r, PAUSE_MS));
}
