// A small JSON Schema validator over the subset src/cli/result.schema.json
// uses (type, const, enum, properties, required, items, minimum, maximum,
// minLength, pattern, $ref into $defs, allOf, if/then/else, not, boolean
// schemas), so tests check real --json output against the documented
// contract without a new dependency. An unknown keyword is an error: the
// schema cannot silently use more than this checks.
import * as fs from 'node:fs';
import * as path from 'node:path';

type Schema = boolean | { [k: string]: unknown };

const KNOWN = new Set([
	'$schema',
	'$id',
	'title',
	'description',
	'$defs',
	'type',
	'const',
	'enum',
	'properties',
	'required',
	'items',
	'minimum',
	'maximum',
	'minLength',
	'pattern',
	'$ref',
	'allOf',
	'if',
	'then',
	'else',
	'not',
]);

export const RESULT_SCHEMA = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'src', 'cli', 'result.schema.json');

// loadSchema: the result schema as parsed JSON.
export const loadSchema = (file = RESULT_SCHEMA): Schema => JSON.parse(fs.readFileSync(file, 'utf8')) as Schema;

const typeOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v);
const isType = (v: unknown, t: string) => typeOf(v) === t || (t === 'number' && typeof v === 'number');

// validate: the problems of VALUE against SCHEMA (empty: valid), each `path: what`.
export function validate(value: unknown, schema: Schema, root: Schema = schema, at = '$'): string[] {
	if (schema === true) return [];
	if (schema === false) return [`${at}: must not be present`];
	const s = schema as Record<string, unknown>;
	const errs: string[] = [];
	for (const k of Object.keys(s)) if (!KNOWN.has(k)) errs.push(`${at}: schema keyword ${k} is not supported by the test validator`);
	if (typeof s.$ref === 'string') {
		const name = /^#\/\$defs\/(.+)$/.exec(s.$ref)?.[1];
		const defs = (root as Record<string, Record<string, Schema>>).$defs;
		const target = name && defs ? defs[name] : undefined;
		if (target === undefined) return [`${at}: unresolved $ref ${s.$ref}`];
		errs.push(...validate(value, target, root, at));
	}
	if (typeof s.type === 'string' && !isType(value, s.type)) return [...errs, `${at}: expected ${s.type}, got ${typeOf(value)}`];
	if ('const' in s && JSON.stringify(value) !== JSON.stringify(s.const))
		errs.push(`${at}: expected ${JSON.stringify(s.const)}, got ${JSON.stringify(value)}`);
	if (Array.isArray(s.enum) && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(value)))
		errs.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(s.enum)}`);
	if (typeof value === 'number') {
		if (typeof s.minimum === 'number' && value < s.minimum) errs.push(`${at}: ${value} < ${s.minimum}`);
		if (typeof s.maximum === 'number' && value > s.maximum) errs.push(`${at}: ${value} > ${s.maximum}`);
	}
	if (typeof value === 'string') {
		if (typeof s.minLength === 'number' && value.length < s.minLength) errs.push(`${at}: shorter than ${s.minLength}`);
		if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(value))
			errs.push(`${at}: ${JSON.stringify(value)} does not match ${s.pattern}`);
	}
	if (typeOf(value) === 'object') {
		const o = value as Record<string, unknown>;
		for (const r of (s.required as string[] | undefined) ?? []) if (!(r in o)) errs.push(`${at}: ${r} is required`);
		for (const [k, sub] of Object.entries((s.properties as Record<string, Schema> | undefined) ?? {})) {
			if (k in o && o[k] !== undefined) errs.push(...validate(o[k], sub, root, `${at}.${k}`));
		}
	}
	if (Array.isArray(value) && s.items !== undefined)
		for (const [i, v] of value.entries()) errs.push(...validate(v, s.items as Schema, root, `${at}[${i}]`));
	for (const sub of (s.allOf as Schema[] | undefined) ?? []) errs.push(...validate(value, sub, root, at));
	if (s.not !== undefined && validate(value, s.not as Schema, root, at).length === 0)
		errs.push(`${at}: must not match ${JSON.stringify(s.not)}`);
	if (s.if !== undefined) {
		const branch = validate(value, s.if as Schema, root, at).length === 0 ? s.then : s.else;
		if (branch !== undefined) errs.push(...validate(value, branch as Schema, root, at));
	}
	return errs;
}

// checkResult: throws, naming every problem, unless TEXT is one --json document valid against the result schema.
export function checkResult(text: string): Record<string, unknown> {
	const doc = JSON.parse(text) as Record<string, unknown>;
	const errs = validate(doc, loadSchema());
	if (errs.length) throw new Error(`--json output does not match src/cli/result.schema.json:\n${errs.join('\n')}\n${text.slice(0, 2000)}`);
	return doc;
}
