// One error base for everything a user can cause or meet. Each error carries a
// stable exit code (documented in the README) and a message that names the
// object, the value and what to do. Only the CLI entry prints and exits.

export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  bundle: 3,
  target: 4,
  retention: 5,
  memory: 6,
  cancelled: 7,
  environment: 8,
  source: 9,
  writeFailed: 10,
  afterWrite: 11,
  vmTest: 12,
} as const;

export type ExitName = keyof typeof EXIT;

export class ReimageError extends Error {
  readonly exit: ExitName;
  readonly facts: Record<string, unknown>;
  // The run's JSON report as it stood when this error ended it (set by the flow).
  report?: unknown;
  constructor(exit: ExitName, message: string, facts: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ReimageError';
    this.exit = exit;
    this.facts = facts;
  }
  get code(): number {
    return EXIT[this.exit];
  }
}

// usage: a flag, argument or combination the CLI does not accept.
export const usageError = (message: string, facts?: Record<string, unknown>) => new ReimageError('usage', message, facts);

// bundle: the bundle (or the image handed to pack) is not what it claims to be.
export const bundleError = (message: string, facts?: Record<string, unknown>) => new ReimageError('bundle', message, facts);

// target: the target disk cannot be used as it is.
export const targetError = (message: string, facts?: Record<string, unknown>) => new ReimageError('target', message, facts);

// retention: the retention list or an entry on the old system is refused.
export const retentionError = (message: string, facts?: Record<string, unknown>) => new ReimageError('retention', message, facts);

// source: the bundle could not be fetched (network, server, timeout); nothing was written.
export const sourceError = (message: string, facts?: Record<string, unknown>) => new ReimageError('source', message, facts);

// A failed external tool, carrying what it printed.
export class ToolError extends ReimageError {
  readonly tool: string;
  readonly exitCode: number | undefined;
  readonly stderrTail: string;
  constructor(tool: string, args: readonly string[], exitCode: number | undefined, stderrTail: string, exit: ExitName = 'environment') {
    const detail = stderrTail ? `: ${stderrTail}` : '';
    super(exit, `${tool} ${args.join(' ')}: exit ${exitCode ?? 'signal'}${detail}`, { tool, exitCode });
    this.tool = tool;
    this.exitCode = exitCode;
    this.stderrTail = stderrTail;
  }
}

// Renders any thrown value as one line; unknown errors keep their stack for debugging.
export function describe(err: unknown): { line: string; code: number; internal: boolean } {
  if (err instanceof ReimageError) return { line: err.message, code: err.code, internal: false };
  const e = err instanceof Error ? err : new Error(String(err));
  return { line: `internal error: ${e.message} (this is a bug; please report it with the log)`, code: EXIT.internal, internal: true };
}
