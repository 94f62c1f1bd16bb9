// A test hook for power-cut tests: with REIMAGE_TEST_CUT=NAME in the
// environment, the process kills itself with SIGKILL (no cleanup runs, like a
// power cut) when it reaches the cut point NAME. Unset, nothing happens.

// cutArmed: whether the test asked for a cut at NAME.
export const cutArmed = (name: string): boolean => process.env['REIMAGE_TEST_CUT'] === name;

// testCut: at cut point NAME, when armed, the process dies on the spot.
export function testCut(name: string, warn: (line: string) => void): void {
  if (!cutArmed(name)) return;
  warn(`${name} cut point reached (REIMAGE_TEST_CUT): killing this process`);
  process.kill(process.pid, 'SIGKILL');
}
