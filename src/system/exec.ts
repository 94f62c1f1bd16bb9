// The one place that starts processes (the only importer of execa). Every tool
// runs with LC_ALL=C, a timeout and captured output; a failure becomes a
// ToolError whose message is one line: `sfdisk --json /dev/vda: exit 1: ...`.
import { accessSync, closeSync, constants, openSync } from 'node:fs';
import { execa } from 'execa';
import { ReimageError, ToolError, type ExitName } from '../errors.ts';

const toolMissing = (tool: string) => new ReimageError('environment', `${tool} not found: install it (or add it to the initramfs) and try again`, { tool });

export type RunOptions = {
  input?: string | Buffer;
  inputFile?: string;
  timeoutMs?: number;
  // Exit codes that count as success (default [0]).
  okCodes?: readonly number[];
  // Which exit code a failure maps to (default 'environment').
  exit?: ExitName;
  cwd?: string;
  // Send stdout to this file instead of capturing it.
  outputFile?: string;
  // Extra environment variables.
  env?: Record<string, string>;
  // Aborting it ends the tool (SIGTERM) and counts as success (a watcher saw what it waited for).
  signal?: AbortSignal;
};

export type RunResult = { stdout: string; stderr: string; exitCode: number };

export type Run = (tool: string, args: readonly string[], opts?: RunOptions) => Promise<RunResult>;

const tail = (s: string) => s.trim().split('\n').slice(-2).join(' / ').slice(0, 400);

// run: start `tool args`, wait, and return its output or throw a ToolError.
export const run: Run = async (tool, args, opts = {}) => {
  const r = await execa(tool, [...args], {
    reject: false,
    env: { ...opts.env, LC_ALL: 'C', LANG: 'C' },
    timeout: opts.timeoutMs ?? 120_000,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    ...(opts.inputFile !== undefined ? { inputFile: opts.inputFile } : {}),
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    // Output sent to a file must not also be buffered (execa's maxBuffer would kill a big compressor).
    ...(opts.outputFile !== undefined ? { stdout: { file: opts.outputFile }, buffer: { stdout: false, stderr: true } } : {}),
    ...(opts.signal !== undefined ? { cancelSignal: opts.signal } : {}),
    stripFinalNewline: false,
  });
  if (r.isCanceled) return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: -1 };
  if ('code' in r && r.code === 'ENOENT') {
    throw toolMissing(tool);
  }
  const exitCode = r.exitCode ?? -1;
  if (r.timedOut) throw new ToolError(tool, args, undefined, `timed out after ${opts.timeoutMs ?? 120_000} ms`, opts.exit);
  if (!(opts.okCodes ?? [0]).includes(exitCode)) {
    throw new ToolError(tool, args, r.exitCode, tail(String(r.stderr || r.stdout)), opts.exit);
  }
  return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode };
};

export type Stream = { stdout: NodeJS.ReadableStream & AsyncIterable<Buffer>; done: Promise<void>; kill: () => void };

export type StreamOptions = { inputFile?: string; exit?: ExitName };

// stream: start `tool args` and hand back its stdout as a stream; `done`
// rejects with a ToolError if the tool fails (checked after the stream ends).
export function stream(tool: string, args: readonly string[], opts: StreamOptions = {}): Stream {
  // The tool reads the file itself (its descriptor as stdin), not through this process.
  const input = opts.inputFile !== undefined ? openInput(tool, opts.inputFile, opts.exit) : undefined;
  let child: ReturnType<typeof execa>;
  try {
    child = execa(tool, [...args], {
      reject: false,
      env: { LC_ALL: 'C', LANG: 'C' },
      buffer: { stdout: false, stderr: true },
      // (execa's types list fds 3-9 only; any open descriptor works.)
      stdin: (input ?? 'ignore') as 3 | 'ignore',
      encoding: 'buffer',
    });
  } finally {
    if (input !== undefined) closeSync(input);
  }
  const done = child.then((r) => {
    if ('code' in r && r.code === 'ENOENT') {
      throw toolMissing(tool);
    }
    if (r.exitCode !== 0 && !r.isTerminated) {
      throw new ToolError(tool, args, r.exitCode, tail(Buffer.from(r.stderr as Uint8Array).toString('utf8')), opts.exit);
    }
  });
  done.catch(() => {});
  return { stdout: child.stdout as Stream['stdout'], done, kill: () => child.kill() };
}

function openInput(tool: string, file: string, exit: ExitName = 'environment'): number {
  try {
    return openSync(file, 'r');
  } catch (e) {
    throw new ReimageError(exit, `${file} cannot be opened as the input of ${tool} (${(e as NodeJS.ErrnoException).code}): check that it exists and is readable`);
  }
}

const PATH_DIRS = () => (process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin').split(':').filter(Boolean);

// firstToolSync: the first of `tools` found on PATH (or the last one, so the
// eventual error names it).
export function firstToolSync(tools: readonly string[]): string {
  for (const t of tools) for (const d of PATH_DIRS()) if (isExecutable(`${d}/${t}`)) return t;
  return tools[tools.length - 1]!;
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// startShell: a login-less root shell on a terminal (diagnostic shells on
// tty2/tty3 in the initramfs), detached so it outlives nothing it should not.
export function startShell(tty: string): void {
  const child = execa('setsid', ['sh', '-c', `exec sh -i <${tty} >${tty} 2>&1`], { detached: true, stdio: 'ignore', reject: false });
  child.catch(() => {});
  child.unref();
}

// Via: how a tool verb runs — the runner (a Sys, or just its run) and the exit
// a failure maps to. Each verb documents its default exit; callers pass the
// phase where it matters.
export type Via = { run?: Run; exit?: ExitName };

// runVia: the runner of V (the real one by default).
export const runVia = (v: Via): Run => v.run ?? run;
