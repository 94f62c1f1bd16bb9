// Side effects that need undoing (mounts, tmpfs, open files) push a disposer;
// all of them run in reverse order, always, and a failing one never hides the
// error that ended the run.
import type { Log } from './log.ts';

export type Cleanup = {
  push: (name: string, fn: () => Promise<void>) => () => Promise<void>;
  runAll: () => Promise<void>;
};

export function createCleanup(log: Log): Cleanup {
  const stack: { name: string; fn: () => Promise<void>; done: boolean }[] = [];
  const runOne = async (e: (typeof stack)[number]) => {
    if (e.done) return;
    e.done = true;
    await e.fn().catch((err: Error) => log.warn(`cleanup "${e.name}" failed: ${err.message}`));
  };
  return {
    // Returns a function that runs this disposer now (and removes it from the stack).
    push: (name, fn) => {
      const e = { name, fn, done: false };
      stack.push(e);
      return () => runOne(e);
    },
    runAll: async () => {
      for (const e of [...stack].reverse()) await runOne(e);
    },
  };
}
