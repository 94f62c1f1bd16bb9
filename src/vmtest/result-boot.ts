// The second half of vm-test: boot the reimaged disk alone (no -kernel: the
// firmware, the disk's own boot loader, its kernel and initramfs, as the
// machine will after the reboot) and watch its serial console for the
// marker, a regular expression the operator chooses (a systemd unit's
// success line, a login prompt, a line a test unit prints with what it
// checked). QEMU is ended as soon as the marker shows; a guest that powers
// off, reboots or stays silent until the timeout has failed.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ToolError } from '../errors.ts';
import { qemuBoot } from '../system/tools.ts';
import type { Run } from '../system/exec.ts';
import { ovmf, type Firmware } from './firmware.ts';
import { qemuArgs, type Accel, type Ovmf } from './qemu.ts';

// DEFAULT_MARKER: systemd reached its usual boot goal, or a login prompt.
export const DEFAULT_MARKER = 'Reached target .*(Multi-User System|Graphical Interface)| login:$';

// ovmf: the UEFI variables the reimage itself ran with (its boot entry in them); else a fresh store.
export type ResultBootOptions = { disk: string; work: string; firmware: Firmware; accel: Accel; marker: RegExp; timeoutS: number; memMiB?: number; run?: Run; ovmf?: Ovmf; sectorSize?: number };

// BootOutcome: reached (the marker's line), stopped (the guest ended first), timeout.
export type ResultBoot = {
  firmware: Firmware;
  accel: Accel;
  marker: string;
  outcome: 'reached' | 'stopped' | 'timeout';
  seconds: number;
  line?: string;
  serialTail: string[];
};

const POLL_MS = 250;

// Terminal colour and cursor sequences (systemd's status lines) are not part of a line's text.
const ESCAPES = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g');
const lines = (s: string) => s.split(/\r?\n|\r/).map((l) => l.replace(ESCAPES, '').trimEnd());

// markerLine: the first console line the marker matches.
export const markerLine = (serial: string, marker: RegExp): string | undefined => lines(serial).find((l) => marker.test(l));

// bootResult: boot O.disk under O.firmware until the marker, the guest's end or the timeout.
export async function bootResult(o: ResultBootOptions, now: () => number = Date.now): Promise<ResultBoot> {
  const serialLog = join(o.work, 'result-serial.log');
  const args = qemuArgs({
    drives: [{ file: o.disk, serial: 'VMTEST-RESULT', ...(o.sectorSize ? { sectorSize: o.sectorSize } : {}) }],
    serialLog,
    accel: o.accel,
    ...(o.firmware === 'efi' ? { ovmf: o.ovmf ?? (await ovmf(o.work)) } : {}),
    ...(o.memMiB ? { memMiB: o.memMiB } : {}),
  });
  const read = () => readFile(serialLog, 'utf8').catch(() => '');
  const stop = new AbortController();
  const watch = setInterval(() => {
    void read().then((s) => {
      if (markerLine(s, o.marker) !== undefined) stop.abort();
    });
  }, POLL_MS);
  const t0 = now();
  let timedOut = false;
  try {
    await qemuBoot(args, o.timeoutS * 1000, o.run ? { run: o.run } : {}, stop.signal);
  } catch (e) {
    // A timeout is this boot's verdict; any other QEMU failure (bad firmware file, no QEMU) is the caller's error.
    if (!(e instanceof ToolError && e.exitCode === undefined && e.stderrTail.startsWith('timed out'))) throw e;
    timedOut = true;
  } finally {
    clearInterval(watch);
  }
  const seconds = Math.round((now() - t0) / 100) / 10;
  const serial = await read();
  const line = markerLine(serial, o.marker);
  const tail = lines(serial)
    .filter((l) => l.trim() !== '')
    .slice(-15);
  const outcome = line !== undefined ? 'reached' : timedOut ? 'timeout' : 'stopped';
  return { firmware: o.firmware, accel: o.accel, marker: o.marker.source, outcome, seconds, ...(line !== undefined ? { line } : {}), serialTail: tail };
}

// bootReason: the one sentence for B.
export function bootReason(b: ResultBoot, timeoutS: number): string {
  const how = `${b.firmware === 'efi' ? 'UEFI (OVMF)' : 'BIOS (SeaBIOS)'}, ${b.accel.toUpperCase()}`;
  if (b.outcome === 'reached') return `the reimaged disk booted (${how}) and printed the marker in ${b.seconds} s: ${b.line}`;
  const last = b.serialTail.at(-1);
  const said = last ? `; its last console line: ${JSON.stringify(last.slice(0, 160))}` : '; it printed nothing on the serial console (is console=ttyS0 on its kernel command line?)';
  if (b.outcome === 'timeout') return `the reimaged disk did not print the marker /${b.marker}/ within ${timeoutS} s (${how})${said}`;
  return `the reimaged disk stopped after ${b.seconds} s without printing the marker /${b.marker}/ (${how})${said}`;
}
