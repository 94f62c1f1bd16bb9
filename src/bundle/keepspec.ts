// The syntax of a kept-partition selector (target/kept.ts says what keeping
// means): PARTLABEL=name, PARTUUID=guid or TYPE=guid (the GPT partition type).
// Validated here, once, for the manifest, the baked policy and --keep.
import { z } from 'zod';
import { usageError } from '../errors.ts';
import type { Selector } from '../target/kept.ts';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// KeepSelector: PARTLABEL=name (1-36 characters, GPT's limit), PARTUUID=guid or TYPE=guid.
export const KeepSelector = z.string().superRefine((s, ctx) => {
  const m = /^(PARTLABEL|PARTUUID|TYPE)=(.*)$/.exec(s);
  const bad = (why: string) => ctx.addIssue({ code: 'custom', message: `keep selector ${JSON.stringify(s)} ${why}` });
  if (!m) return bad('is not PARTLABEL=name, PARTUUID=guid or TYPE=guid');
  const [, kind, value = ''] = m;
  if (kind === 'PARTLABEL' && (value.length < 1 || value.length > 36 || [...value].some((c) => c < ' ' || c === '"'))) bad('needs a name of 1 to 36 printable characters (no quotes)');
  if (kind !== 'PARTLABEL' && !GUID.test(value)) bad(`needs a GUID such as 0FC63DAF-8483-4772-8E79-3D69D8477DE4 after ${kind}=`);
});

// parseSelector: TEXT as a selector, or a usage refusal naming it and WHERE it came from.
export function parseSelector(text: string, where: string): Selector {
  const r = KeepSelector.safeParse(text);
  if (!r.success) throw usageError(`${where}: ${r.error.issues[0]?.message ?? 'invalid'}: give PARTLABEL=name, PARTUUID=guid or TYPE=guid`);
  const i = text.indexOf('=');
  return { kind: text.slice(0, i) as Selector['kind'], value: text.slice(i + 1), text };
}
