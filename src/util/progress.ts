// Progress of a long copy: on a terminal one redrawn line (percent, MiB/s,
// ETA); otherwise a plain line every 10 % or 10 s, whichever comes first, so a
// serial console or a log file stays readable.
import type { Log } from './log.ts';

export type Progress = { add: (n: number) => void; end: () => void };

export function createProgress(label: string, total: number, log: Log, tty: boolean, clock: () => number = Date.now): Progress {
  const t0 = clock();
  let done = 0;
  let lastLine = t0;
  let lastPct = 0;
  let lastDraw = 0;
  const line = () => {
    const secs = Math.max((clock() - t0) / 1000, 0.001);
    const rate = done / secs;
    const pct = total ? (done / total) * 100 : 100;
    const eta = rate > 0 ? Math.max(0, (total - done) / rate) : 0;
    return `${label}: ${pct.toFixed(0).padStart(3)}%  ${(done / 2 ** 20).toFixed(0)}/${(total / 2 ** 20).toFixed(0)} MiB  ${(rate / 2 ** 20).toFixed(1)} MiB/s  ETA ${eta.toFixed(0)} s`;
  };
  return {
    add: (n) => {
      done += n;
      const now = clock();
      if (tty) {
        if (now - lastDraw >= 200) {
          log.raw(`\r${line()}   `);
          lastDraw = now;
        }
        return;
      }
      const pct = total ? Math.floor((done / total) * 10) : 10;
      if (pct > lastPct || now - lastLine >= 10_000) {
        log.info(line());
        lastPct = pct;
        lastLine = now;
      }
    },
    end: () => {
      if (tty) log.raw(`\r${line()}   \n`);
    },
  };
}
