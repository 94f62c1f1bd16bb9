// JSON text validated against a schema at the edge, failing with one sentence:
// `<what> is not valid JSON (<why>): <fix>` or `<what> is invalid: <field>: <issue>; <fix>`.
import type { z } from 'zod';
import { formatIssues } from '../bundle/manifest.ts';

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
