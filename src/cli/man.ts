// The manual page, reimage(8), made from the same tables as --help (commands,
// kernel arguments, exit codes), so it cannot drift from the binary it ships with.
import { KERNEL_ARGS } from '../boot/cmdline.ts';
import { EXIT, type ExitName } from '../errors.ts';
import { VERSION } from '../version.ts';
import { COMMANDS, type Command, usageLine, type CommandName } from './commands.ts';
import { EXIT_MEANING } from './help.ts';

// roff: TEXT safe as roff input: backslashes and hyphens escaped, and a line
// never starting with a control character.
export function roff(text: string): string {
  return (
    text
      .replace(/\\/g, '\\e')
      .replace(/-/g, '\\-')
      // Non-ASCII (…, —, ×) as groff's Unicode escapes: troff reads bytes.
      .replace(/[^\p{ASCII}]/gu, (c) => `\\[u${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}]`)
      .split('\n')
      .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
      .join('\n')
  );
}

function commandSection(name: CommandName): string[] {
  const c: Command = COMMANDS[name];
  return [
    `.SS ${roff(name)}`,
    roff(c.summary),
    '.PP',
    `.B ${roff(usageLine(name))}`,
    ...Object.entries(c.flags).flatMap(([f, d]) => ['.TP', `.B \\-\\-${roff(f)}${d.arg ? ` \\fI${roff(d.arg)}\\fR` : ''}`, roff(d.help)]),
  ];
}

// manPage: reimage(8) as roff (`reimage man | man -l -`).
export function manPage(): string {
  const names = Object.keys(COMMANDS) as CommandName[];
  const exits = (Object.entries(EXIT) as [ExitName, number][]).flatMap(([n, code]) => ['.TP', `.B ${code}`, roff(EXIT_MEANING[n])]);
  return [
    `.TH REIMAGE 8 "" "reimage ${roff(VERSION)}" "System Administration"`,
    '.nh',
    '.ad l',
    '.SH NAME',
    "reimage \\- reimage a machine's whole disk, keeping the files that make it this machine",
    '.SH SYNOPSIS',
    ...names.flatMap((n) => ['.PP', `.B ${roff(usageLine(n))}`]),
    '.SH DESCRIPTION',
    roff(
      'reimage writes a signed bundle (a compressed whole-disk image with its manifest) to a whole disk, from a running system or from its own initramfs, ' +
        'and keeps the files named by a retention list (machine-id, host keys, certificates, site configuration) with their owner, group, mode and attributes. ' +
        'Every check runs before the point of no return; until then the disk is not touched.',
    ),
    '.SH COMMANDS',
    ...names.flatMap(commandSection),
    '.SH KERNEL ARGUMENTS',
    'Read by the reimage initramfs (reimage boot):',
    ...Object.entries(KERNEL_ARGS).flatMap(([k, help]) => ['.TP', `.B ${roff(k)}`, roff(help)]),
    '.SH EXIT STATUS',
    'Below 10, nothing was written; 10 and above, the disk was written.',
    ...exits,
    '.SH FILES',
    '.TP',
    '.B /etc/reimage/',
    roff('the policy baked into the initrd: config.json, retention.list, trusted keys'),
    '.TP',
    '.B /var/log/reimage/report.json',
    roff('the report of the last run, in the new system'),
    '.SH SEE ALSO',
    '.BR dracut (8),',
    '.BR sfdisk (8),',
    '.BR bmaptool (1),',
    '.BR casync (1)',
    '',
  ].join('\n');
}
