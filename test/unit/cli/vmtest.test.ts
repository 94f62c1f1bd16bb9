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

test('vm-test --sector-size: 512 or 4096; a 4Kn disk is booted by OVMF, never SeaBIOS', () => {
	assert.equal(vmBootOptions({ 'sector-size': '4096', firmware: 'efi' }).sectorSize, 4096);
	assert.equal(vmBootOptions({ 'sector-size': '4096', 'no-boot': true }), { boot: false, sectorSize: 4096 });
	assert.equal(vmBootOptions({ 'sector-size': '512' }), { sectorSize: 512 });
	assert.is(
		msg(() => vmBootOptions({ 'sector-size': '4k' })),
		'--sector-size 4k is not a disk sector size: write --sector-size 512 or --sector-size 4096 (4Kn)',
	);
	for (const firmware of [undefined, 'bios'])
		assert.is(
			msg(() => vmBootOptions({ 'sector-size': '4096', ...(firmware ? { firmware } : {}) })),
			'--sector-size 4096 with BIOS firmware: SeaBIOS cannot boot a 4Kn disk, so add --firmware efi (or --no-boot)',
		);
});
