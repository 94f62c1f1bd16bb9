// Glue for codecs decompressed by an external tool reading the staged file.
import { stream } from '../system/exec.ts';
import type { Decoded } from './types.ts';

export function external(tool: string, args: readonly string[], file: string): Decoded {
  const s = stream(tool, args, { inputFile: file, exit: 'bundle' });
  return { stream: s.stdout, done: s.done, stop: s.kill };
}
