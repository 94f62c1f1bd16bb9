// JSON text validated against a schema at the edge, failing with one sentence:
// `<what> is not valid JSON (<why>): <fix>` or `<what> is invalid: <field>: <issue>; <fix>`.
import type { z } from 'zod';

// parseJson: TEXT parsed and validated against SCHEMA, or FAIL with one sentence.
export function parseJson<T>(text: string, schema: z.ZodType<T>, what: string, fix: string, fail: (message: string) => Error): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw fail(`${what} is not valid JSON (${(e as Error).message}): ${fix}`);
  }
  const r = schema.safeParse(json);
  if (!r.success) throw fail(`${what} is invalid: ${formatIssues(r.error)}; ${fix}`);
  return r.data;
}

// One readable line per zod issue: `image.sha256: expected 64 lowercase hex digits`.
export function formatIssues(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(top)'}: ${i.message}`)
    .join('; ');
}
