import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { duplicateMountPath, mountPathProblem, normaliseMountPath } from '../../../src/util/mountpath.ts';

test('clean absolute paths pass', () => {
	for (const p of ['/', '/kiosk', '/boot/efi', '/a b/c\nd']) assert.is(mountPathProblem(p), undefined, p);
});

test('every non-normalised form is named', () => {
	assert.match(mountPathProblem('kiosk') ?? '', /not absolute/);
	assert.match(mountPathProblem('') ?? '', /not absolute/);
	assert.match(mountPathProblem('/../x') ?? '', /"\.\." component/);
	assert.match(mountPathProblem('/a/./b') ?? '', /"\." component/);
	assert.match(mountPathProblem('//x') ?? '', /empty component/);
	assert.match(mountPathProblem('/a//b') ?? '', /empty component/);
	assert.match(mountPathProblem('/kiosk/') ?? '', /ends with a slash/);
	assert.match(mountPathProblem('/a\0b') ?? '', /NUL/);
	assert.match(mountPathProblem('/' + 'x'.repeat(5000)) ?? '', /longer than/);
});

test('pack normalises what it can and refuses ..', () => {
	assert.is(normaliseMountPath('//a/./b/'), '/a/b');
	assert.is(normaliseMountPath('/boot/efi/'), '/boot/efi');
	assert.is(normaliseMountPath('///'), '/');
	assert.is(normaliseMountPath('/../x'), undefined);
	assert.is(normaliseMountPath('/a/../b'), undefined);
	assert.is(normaliseMountPath('a/b'), undefined);
	assert.is(normaliseMountPath('/a\0'), undefined);
});

test('duplicates are found', () => {
	assert.is(duplicateMountPath(['/', '/kiosk', '/kiosk']), '/kiosk');
	assert.is(duplicateMountPath(['/', '/kiosk']), undefined);
});

test.run();
