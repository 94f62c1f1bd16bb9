// Logs are steps with timing, then one summary line a technician can read on a
// serial console. Every line is also kept, so the log can be written into the
// new system at the end.
export type Log = {
  info: (line: string) => void;
  warn: (line: string) => void;
  // Runs fn as a named step and logs how long it took.
  step: <T>(name: string, fn: () => Promise<T>) => Promise<T>;
  // Every line so far, with time stamps.
  lines: () => string[];
  // Writes to the console without keeping it (progress redraws).
  raw: (text: string) => void;
};

export type Sink = { write: (text: string) => void };

export function createLog(out: Sink = process.stderr, clock: () => number = Date.now, quiet = false): Log {
  const kept: string[] = [];
  const t0 = clock();
  const emit = (prefix: string, line: string) => {
    const stamp = ((clock() - t0) / 1000).toFixed(1).padStart(6);
    kept.push(`${new Date(clock()).toISOString()} ${prefix}${line}`);
    if (!quiet) out.write(`[${stamp}] ${prefix}${line}\n`);
  };
  return {
    info: (l) => emit('', l),
    warn: (l) => emit('warning: ', l),
    raw: (t) => {
      if (!quiet) out.write(t);
    },
    lines: () => [...kept],
    step: async (name, fn) => {
      const s = clock();
      emit('', `${name} ...`);
      const v = await fn();
      emit('', `${name}: done in ${((clock() - s) / 1000).toFixed(1)} s`);
      return v;
    },
  };
}
