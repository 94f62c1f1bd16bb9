import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { failureDoc, successDoc, toJson } from '../../../src/cli/result.ts';
import { usageError, ReimageError } from '../../../src/errors.ts';
import { checkResult, loadSchema, validate } from '../../helpers/schema.ts';

const schema = loadSchema();
const ok = (doc: object) => validate(JSON.parse(toJson(doc)), schema);

test('the validator refuses documents that break the contract', () => {
	const good = successDoc('verify', { bundle: '/b', image: { size: 1, sha256: 'a'.repeat(64) }, raw: { size: 2, sha256: 'b'.repeat(64) } });
	assert.equal(ok(good), []);
	assert.ok(ok({ ...good, format: 'reimage-result/2' }).length);
	assert.ok(ok({ ...good, error: { code: 3, name: 'bundle', message: 'x', facts: {} } }).length, 'success with an error');
	assert.ok(ok({ ...good, outcome: 'refused', exitCode: 3 }).length, 'refused without an error');
	assert.ok(ok({ ...good, exitCode: 2 }).length, 'success with a non-zero exit');
	assert.ok(ok({ ...good, raw: { size: 2, sha256: 'nothex' } }).length);
	const failed = failureDoc('run', 'write', new ReimageError('writeFailed', 'I/O error'));
	assert.equal(ok(failed), []);
	assert.ok(ok({ ...failed, written: false }).length, 'failed but not written');
	assert.ok(
		validate({}, { type: 'object', oneOf: [] }).some((e) => /oneOf is not supported/.test(e)),
		'unknown keywords are reported',
	);
});

test('every failure is a document: usage errors, unknown errors (internal), errors with facts', () => {
	const u = checkResult(
		toJson(failureDoc('pack', 'pack', usageError('--out /x is not empty (1 entry, e.g. a): give a new or empty directory', { out: '/x' }))),
	);
	assert.equal([u.command, u.outcome, u.exitCode, u.phase, u.written], ['pack', 'refused', 2, 'usage', false]);
	assert.equal(u.error, {
		code: 2,
		name: 'usage',
		message: '--out /x is not empty (1 entry, e.g. a): give a new or empty directory',
		facts: { out: '/x' },
	});
	const i = checkResult(toJson(failureDoc('verify', 'verify', new Error('boom'))));
	assert.equal([i.exitCode, (i.error as { name: string }).name], [1, 'internal']);
	assert.match((i.error as { message: string }).message, /^internal error: boom \(this is a bug/);
	// run and plan keep the report's shape even when they fail before the flow starts.
	const t = checkResult(
		toJson(
			failureDoc('plan', 'preflight', new ReimageError('target', 'target /dev/nope does not exist: give a whole disk', { size: 10n })),
		),
	);
	assert.equal([t.phase, t.entries, (t.error as { facts: unknown }).facts], ['preflight', [], { size: '10' }]);
});

test('vm-test documents: a pass with the result boot, a fail with its reason; a bad boot outcome is refused', () => {
	const boot = { firmware: 'bios', accel: 'tcg', marker: '^M$', outcome: 'reached', seconds: 31.5, line: 'M', serialTail: ['M'] };
	const pass = { pass: true, reason: 'the reimaged disk booted', accel: 'tcg', serialTail: [], report: { outcome: 'success' }, boot };
	assert.equal(ok(successDoc('vm-test', pass)), []);
	const fail = {
		...failureDoc('vm-test', 'vm-test', new ReimageError('vmTest', 'vm-test failed: x')),
		...pass,
		pass: false,
		boot: { ...boot, outcome: 'timeout' },
	};
	assert.equal(ok(fail), []);
	assert.ok(ok(successDoc('vm-test', { ...pass, boot: { ...boot, outcome: 'booted' } })).length, 'an unknown boot outcome');
	assert.ok(ok(successDoc('vm-test', { ...pass, reason: undefined })).length, 'a verdict without its reason');
	assert.ok(ok(successDoc('vm-test', { ...pass, accel: 'hvf' })).length);
});

test.run();
