import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { vmBootOptions } from '../../../src/cli/vmtest.ts';

const msg = (f: () => unknown) => {
	try {
		f();
	} catch (e) {
		return (e as Error).message;
	}
	return assert.unreachable('no error') as never;
};

test('vm-test boot options: defaults, each value, --no-boot', () => {
	assert.equal(vmBootOptions({}), {});
	const o = vmBootOptions({ firmware: 'efi', marker: '^OK v=2$', 'boot-timeout': '90' });
	assert.equal([o.firmware, o.marker?.source, o.bootTimeoutS], ['efi', '^OK v=2$', 90]);
	assert.equal(vmBootOptions({ 'no-boot': true }), { boot: false });
});

test('each bad boot option is one sentence naming it and the fix', () => {
	assert.is(
		msg(() => vmBootOptions({ firmware: 'uefi' })),
		'--firmware uefi is not a firmware: write --firmware bios (SeaBIOS) or --firmware efi (OVMF)',
	);
	assert.match(
		msg(() => vmBootOptions({ marker: 'a(' })),
		/^--marker a\( is not a regular expression \(.*\): escape the special characters$/,
	);
	assert.is(
		msg(() => vmBootOptions({ marker: 'x*' })),
		'--marker x* matches an empty line, so every boot would pass: give a line the booted system prints',
	);
	assert.is(
		msg(() => vmBootOptions({ 'boot-timeout': '0' })),
		'--boot-timeout 0 is not a whole number of seconds: write e.g. --boot-timeout 300',
	);
	assert.is(
		msg(() => vmBootOptions({ 'boot-timeout': '1.5' })),
		'--boot-timeout 1.5 is not a whole number of seconds: write e.g. --boot-timeout 300',
	);
	assert.is(
		msg(() => vmBootOptions({ 'no-boot': true, marker: 'x' })),
		'--no-boot with --marker: the result is not booted, so drop one of them',
	);
});

test.run();
