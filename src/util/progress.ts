// Progress of a long step (staging into RAM, hashing, mapping, compressing,
// decoding, writing, reading back), as a technician and a log both want it:
// on a terminal one line redrawn at most 5 times a second (percent, bytes,
// MiB/s, ETA) and ended by a newline; otherwise (a serial console, a log
// file, a pipe) a plain line at a bounded rate — never within the step's
// first second (a short step stays silent: its `done in` line is enough),
// then at most one a second, at each further 10 % or every 10 s, whichever
// comes first, and a last line at the end.
import type { Log } from './log.ts';

export type Progress = { add: (n: number) => void; end: () => void };

// Tick: what a long loop calls with the bytes it just handled.
export type Tick = (n: number) => void;

export const REDRAW_MS = 200;
export const QUIET_MS = 1000;
export const MIN_GAP_MS = 1000;
export const MAX_GAP_MS = 10_000;

const mib = (n: number) => (n / 2 ** 20).toFixed(0);

// progressLine: `LABEL:  42%  430/1024 MiB  85.3 MiB/s  ETA 7 s`.
export function progressLine(label: string, done: number, total: number, ms: number): string {
  const secs = Math.max(ms / 1000, 0.001);
  const rate = done / secs;
  const pct = total ? Math.min(100, (done / total) * 100) : 100;
  const eta = rate > 0 ? Math.max(0, (total - done) / rate) : 0;
  return `${label}: ${pct.toFixed(0).padStart(3)}%  ${mib(done)}/${mib(total)} MiB  ${(rate / 2 ** 20).toFixed(1)} MiB/s  ETA ${eta.toFixed(0)} s`;
}

export function createProgress(label: string, total: number, log: Log, tty: boolean, clock: () => number = Date.now): Progress {
  const t0 = clock();
  let done = 0;
  let lastLine = t0;
  let lastPct = 0;
  let lastDraw = 0;
  let printed = false;
  let lastDone = 0;
  const line = () => progressLine(label, done, total, clock() - t0);
  return {
    add: (n) => {
      done += n;
      const now = clock();
      if (tty) {
        if (now - lastDraw >= REDRAW_MS) {
          log.raw(`\r${line()}   `);
          lastDraw = now;
        }
        return;
      }
      if (now - t0 < QUIET_MS || now - lastLine < MIN_GAP_MS) return;
      const pct = total ? Math.floor((done / total) * 10) : 10;
      if (pct > lastPct || now - lastLine >= MAX_GAP_MS) {
        log.info(line());
        lastPct = pct;
        lastLine = now;
        lastDone = done;
        printed = true;
      }
    },
    end: () => {
      if (tty) log.raw(`\r${line()}   \n`);
      // A step that printed progress says where it ended, unless its last line already did.
      else if (printed && done !== lastDone) log.info(line());
    },
  };
}

// withProgress: FN run with a Tick that drives a progress display of TOTAL bytes named LABEL.
export async function withProgress<T>(label: string, total: number, log: Log, fn: (tick: Tick) => Promise<T>, tty = process.stderr.isTTY === true): Promise<T> {
  const p = createProgress(label, total, log, tty);
  try {
    return await fn(p.add);
  } finally {
    p.end();
  }
}
