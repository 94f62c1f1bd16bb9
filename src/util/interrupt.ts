// SIGINT, SIGTERM and SIGHUP turned into an AbortSignal. The process is never
// killed by them: the flow checks the signal between steps and inside its long
// loops (copy into RAM, decode, write), so cleanup always runs and the phase
// (before or after the point of no return) decides the outcome. A second
// signal is logged and otherwise ignored: the run is already stopping.
import { ReimageError } from '../errors.ts';

export const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

// Interrupted: what a checkpoint throws once a signal arrived (the flow rewords it by phase).
export class Interrupted extends ReimageError {
  readonly signalName: string;
  constructor(signalName: string) {
    super('cancelled', `interrupted by ${signalName}`, { signal: signalName });
    this.signalName = signalName;
  }
}

// checkpoint: throws Interrupted when SIGNAL has fired.
export function checkpoint(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new Interrupted(String(signal.reason ?? 'a signal'));
}

export type Interrupt = { signal: AbortSignal; dispose: () => void };

// catchSignals: an AbortSignal fired by the first of SIGINT/SIGTERM/SIGHUP; dispose restores the defaults.
export function catchSignals(warn: (line: string) => void, proc: Pick<NodeJS.Process, 'on' | 'off'> = process): Interrupt {
  const ctl = new AbortController();
  const handler = (name: NodeJS.Signals) => {
    if (ctl.signal.aborted) {
      warn(`${name} again: reimage is already stopping (it finishes what keeps the disk consistent first)`);
      return;
    }
    warn(`${name} received: stopping at the next safe point`);
    ctl.abort(name);
  };
  for (const s of SIGNALS) proc.on(s, handler);
  return {
    signal: ctl.signal,
    dispose: () => {
      for (const s of SIGNALS) proc.off(s, handler);
    },
  };
}
