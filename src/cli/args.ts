// The command line of one command, parsed against its table (commands.ts);
// node's parseArgs errors become one sentence naming the option and the fix.
import { parseArgs } from 'node:util';
import { usageError } from '../errors.ts';
import { COMMANDS, type CommandName, type Flag } from './commands.ts';

export type Values = Record<string, string | boolean | string[] | undefined>;

// parse: ARGV's options and positionals for command NAME, or a usage error (exit 2).
export function parse(name: CommandName, argv: string[]): { values: Values; positionals: string[] } {
  const c = COMMANDS[name];
  const options = Object.fromEntries(Object.entries(c.flags).map(([k, f]) => [k, { type: f.type, ...('multiple' in f && f.multiple ? { multiple: true } : {}) }]));
  try {
    const r = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean' } }, allowPositionals: true, strict: true });
    return { values: r.values as Values, positionals: r.positionals };
  } catch (e) {
    throw usageError(parseProblem(name, e as NodeJS.ErrnoException));
  }
}

// parseProblem: node's parseArgs error as one sentence naming the option and the fix.
export function parseProblem(name: CommandName, e: { code?: string; message: string }): string {
  const flag = /'(-[^' ]*)/.exec(e.message)?.[1] ?? '';
  const help = `see reimage ${name} --help`;
  const f = (COMMANDS[name].flags as Record<string, Flag>)[flag.replace(/^--/, '')];
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `reimage ${name} has no option ${flag}: ${help}`;
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (f?.type === 'string') return `${flag} needs a value (${flag} ${f.arg ?? 'VALUE'}): ${help}`;
    return `${flag} takes no value: write ${flag.split('=')[0]} alone (${help})`;
  }
  return `${e.message.split('\n')[0]?.replace(/\.$/, '')}: ${help}`;
}
