import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ReimageError } from '../../../src/errors.ts';
import type { ListEntry } from '../../../src/retention/list.ts';
import { retentionInUse } from '../../../src/retention/guard.ts';

const one = [{ line: 1, text: '/etc/machine-id' } as unknown as ListEntry];

const refusal = (f: () => unknown): ReimageError => {
	try {
		f();
	} catch (e) {
		return e as ReimageError;
	}
	throw new Error('not refused');
};

test('no list, or a list without entries, is refused (exit 2) unless --no-retain', () => {
	const none = refusal(() => retentionInUse(undefined, false, () => {}));
	assert.is(none.code, 2);
	assert.match(
		none.message,
		/^no retention list \(neither --retain nor one in the bundle\).*give --retain LIST, or --no-retain to keep nothing$/,
	);
	const empty = refusal(() => retentionInUse({ name: 'empty.list', entries: [] }, false, () => {}));
	assert.is(empty.code, 2);
	assert.match(empty.message, /^retention list empty\.list names no entries.*--no-retain/);
});

test('--no-retain keeps nothing, says so, and ignores a list the bundle carries', () => {
	const warned: string[] = [];
	assert.equal(retentionInUse(undefined, true, (l) => warned.push(l)).entries, []);
	assert.equal(retentionInUse({ name: 'bundle.list', entries: one }, true, (l) => warned.push(l)).entries, []);
	assert.match(warned[0] ?? '', /--no-retain: nothing of the old system will be kept/);
	assert.match(warned[1] ?? '', /the 1 lines of bundle\.list are ignored/);
	assert.equal(retentionInUse({ name: 'k.list', entries: one }, false, () => {}).entries, one);
});

test.run();
