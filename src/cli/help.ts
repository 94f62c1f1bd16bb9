// Help text, derived from the command table (commands.ts) and the exit codes
// (errors.ts), wrapped for an 80-column serial console.
import { EXIT, type ExitName } from '../errors.ts';

export const WIDTH = 80;

// wrap: TEXT as lines of at most WIDTH columns (words are never split), the
// first starting with FIRST, the others indented by INDENT spaces.
export function wrap(text: string, first: string, indent: number, width = WIDTH): string[] {
  // A line that fits is kept as it is (column alignment inside it survives).
  if (first.length + text.length <= width && !text.includes('\n')) return [first + text];
  const lines: string[] = [];
  let line = first;
  let fresh = true;
  // A word longer than a line (a deep path) is cut where the line ends.
  const room = Math.max(8, width - indent);
  const words = text
    .split(/\s+/)
    .filter(Boolean)
    .flatMap((w) => (w.length <= room ? [w] : (w.match(new RegExp(`.{1,${room}}`, 'gsu')) ?? [w])));
  for (const word of words) {
    if (!fresh && line.length + 1 + word.length > width) {
      lines.push(line);
      line = ' '.repeat(indent);
      fresh = true;
    }
    line += fresh ? word : ` ${word}`;
    fresh = false;
  }
  lines.push(line);
  return lines;
}

// What each exit code means, one short phrase each (the README has the table with examples).
export const EXIT_MEANING = {
  ok: 'ok',
  internal: 'internal error (a bug)',
  usage: 'usage',
  bundle: 'bundle invalid',
  target: 'target refused',
  retention: 'retention refused',
  memory: 'not enough RAM',
  cancelled: 'cancelled or interrupted',
  environment: 'environment',
  source: 'bundle could not be fetched',
  writeFailed: 'write failed (the disk was invalidated)',
  afterWrite: 'failed after the write (the retained set is saved: run the same command again to finish)',
  vmTest: 'vm-test failed',
} as const satisfies Record<ExitName, string>;

// exitHelp: the exit codes, grouped by the phase rule, wrapped.
export function exitHelp(): string[] {
  const entries = Object.entries(EXIT) as [ExitName, number][];
  const list = (pick: (c: number) => boolean) =>
    entries
      .filter(([, c]) => pick(c))
      .map(([n, c]) => `${c} ${EXIT_MEANING[n]}`)
      .join(', ');
  return [
    ...wrap(`Exit codes below 10: nothing was written. ${list((c) => c < EXIT.writeFailed)}.`, '', 2),
    ...wrap(`10 and above: the disk was written. ${list((c) => c >= EXIT.writeFailed && c !== EXIT.vmTest)}. ${EXIT.vmTest} ${EXIT_MEANING.vmTest}.`, '', 2),
  ];
}
