// The one JSON contract (`--json`): every command that takes --json prints one
// document on stdout, on success and on every failing exit, in the shape of
// src/cli/result.schema.json ("reimage-result/1"). Each document opens with
// the same envelope: which command, its outcome and exit code, the phase it
// ended in, whether the target disk was written, and the error (its exit
// code, name, sentence and facts). `run` and `plan` then carry the report
// (src/stages/report.ts); the other commands their own result.
import { EXIT, ReimageError, describe, type ExitName } from '../errors.ts';
import { VERSION } from '../version.ts';

export const RESULT_FORMAT = 'reimage-result/1';

export type Outcome = 'success' | 'planned' | 'refused' | 'failed';

export type ErrorDoc = { code: number; name: ExitName; message: string; facts: Record<string, unknown> };

export type Envelope = {
  format: typeof RESULT_FORMAT;
  command: string;
  outcome: Outcome;
  exitCode: number;
  phase: string;
  written: boolean;
  error?: ErrorDoc;
};

const NAMES = Object.fromEntries(Object.entries(EXIT).map(([k, v]) => [v, k])) as Record<number, ExitName>;

// errorDoc: any thrown value as the contract's error object (an unknown error is internal, 1).
export function errorDoc(err: unknown): ErrorDoc {
  const d = describe(err);
  const facts = err instanceof ReimageError ? plain(err.facts) : {};
  return { code: d.code, name: NAMES[d.code] ?? 'internal', message: d.line, facts };
}

// outcomeOf: a failure that wrote the disk (10, 11) "failed"; any other failure "refused".
export const outcomeOf = (code: number): Outcome => (code === EXIT.writeFailed || code === EXIT.afterWrite ? 'failed' : 'refused');

// failureDoc: the document for COMMAND ending with ERR in PHASE; a run's own
// report (carried by the error) keeps all it knew, with the envelope on top.
export function failureDoc(command: string, phase: string, err: unknown): Record<string, unknown> {
  const error = errorDoc(err);
  const own = err instanceof ReimageError && isObject(err.report) ? err.report : undefined;
  // run and plan share the report's shape even when they failed before the flow made one.
  const report = own ?? (command === 'run' || command === 'plan' ? emptyReport() : {});
  // A usage error the flow never saw was found while reading the command line and its options.
  const at = error.code === EXIT.usage && !own ? 'usage' : phase;
  return {
    ...envelope(command, outcomeOf(error.code), error.code, at, error.code === EXIT.writeFailed || error.code === EXIT.afterWrite),
    ...report,
    exitCode: error.code,
    error,
  };
}

// successDoc: the document for COMMAND that succeeded with BODY (its own fields).
export function successDoc(command: string, body: object, outcome: Outcome = 'success'): Record<string, unknown> {
  return { ...envelope(command, outcome, EXIT.ok, command, false), ...body };
}

// emptyReport: the report of a run or plan that ended before its flow began.
function emptyReport() {
  const now = new Date().toISOString();
  return { tool: 'reimage', version: VERSION, started: now, finished: now, stages: [], entries: [], retainedSaved: [], notes: [] };
}

function envelope(command: string, outcome: Outcome, exitCode: number, phase: string, written: boolean): Envelope {
  return { format: RESULT_FORMAT, command, outcome, exitCode, phase, written };
}

// toJson: the document as printed: two-space indent, bigints as decimal strings.
export function toJson(doc: unknown): string {
  return `${JSON.stringify(doc, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`;
}

// plain: facts reduced to what JSON can carry (no functions, bigints as strings, no cycles).
function plain(facts: Record<string, unknown>): Record<string, unknown> {
  try {
    return JSON.parse(toJson(facts)) as Record<string, unknown>;
  } catch {
    return {};
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
