// Bash completion, made from the command table: commands, each command's
// options, and what each option's value is (a directory, a file, a device, one
// of a few words), so it follows the table as options are added.
import { CODECS } from '../codecs/names.ts';
import { COMMANDS, type Command, type CommandName } from './commands.ts';

// How a value named ARG in the table is completed: a compgen action or a word list.
export function valueCompletion(arg: string | undefined): string {
  if (!arg) return '';
  const words: Record<string, readonly string[]> = {
    CODEC: CODECS,
    NAME: ['dracut', 'initramfs-tools'],
    POLICY: ['zero', 'write', 'discard', 'leave'],
  };
  const list = words[arg];
  if (list) return `_reimage_reply -W '${list.join(' ')}'`;
  if (arg === 'DEVICE') return 'cur=${cur:-/dev/}; _reimage_reply -f';
  if (arg === 'DIR' || arg === 'PREFIX') return '_reimage_reply -d';
  if (/FILE|IMAGE|KEY|LIST|VMLINUZ|PATH|DIR/.test(arg)) return '_reimage_reply -f';
  // URLs, sizes, numbers, selectors: nothing to offer.
  return 'COMPREPLY=()';
}

function commandCase(name: CommandName): string[] {
  const c: Command = COMMANDS[name];
  const values = Object.entries(c.flags)
    .filter(([, f]) => f.type === 'string')
    .map(([f, d]) => `\t\t\t--${f}) ${valueCompletion(d.arg)}; return ;;`);
  const positional = c.positionals[0] ? valueCompletion(c.positionals[0]) : 'COMPREPLY=()';
  return [
    `\t${name})`,
    '\t\tcase "$prev" in',
    ...values,
    '\t\tesac',
    `\t\tif [[ $cur == -* ]]; then _reimage_reply -W '${[...Object.keys(c.flags).map((f) => `--${f}`), '--help'].join(' ')}'; else ${positional}; fi`,
    '\t\t;;',
  ];
}

// bashCompletion: the script for /usr/share/bash-completion/completions/reimage.
export function bashCompletion(): string {
  const names = Object.keys(COMMANDS) as CommandName[];
  return [
    '# bash completion for reimage (made by `reimage completion`)',
    '# _reimage_reply: COMPREPLY from compgen ARGS over the word being completed.',
    '_reimage_reply() { mapfile -t COMPREPLY < <(compgen "$@" -- "$cur"); }',
    '_reimage() {',
    '\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}',
    '\tif [ "$COMP_CWORD" -eq 1 ]; then',
    `\t\t_reimage_reply -W '${[...names, '--help', '--version'].join(' ')}'`,
    '\t\treturn',
    '\tfi',
    '\tcase "${COMP_WORDS[1]}" in',
    ...names.flatMap(commandCase),
    '\tesac',
    '}',
    'complete -o filenames -F _reimage reimage',
    '',
  ].join('\n');
}
