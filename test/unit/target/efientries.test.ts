// `efibootmgr -v` output captured under OVMF (test/fixtures/tools/capture-efi.sh)
// parsed into entries, and which entries a reimage makes stale.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseBootVars, removableLoader, staleEntries } from '../../../src/target/efientries.ts';
import { readCapture } from '../../helpers/fake-sys.ts';

const OLD_ESP = '0d5c1e4a-7b7a-4c0f-8e6b-5a1b2c3d4e01';

test('efibootmgr -v: boot order, firmware application, and an entry by PARTUUID with its loader', () => {
	const v = parseBootVars(readCapture('efibootmgr-v-debian').result.stdout);
	assert.equal(v.order, ['0001', '0000']);
	assert.equal(v.entries, [
		{ num: '0000', active: true, label: 'UiApp' },
		{ num: '0001', active: true, label: 'debian', partuuid: OLD_ESP, part: 1, loader: '\\EFI\\debian\\shimx64.efi' },
	]);
	const r = parseBootVars(readCapture('efibootmgr-v-removable').result.stdout);
	assert.equal(r.entries[1], {
		num: '0001',
		active: true,
		label: 'KioskOS',
		partuuid: OLD_ESP,
		part: 1,
		loader: '\\EFI\\BOOT\\BOOTX64.EFI',
	});
});

test('efibootmgr 18 prints the file without File(...); inactive entries; a label with spaces', () => {
	const v = parseBootVars(
		'BootOrder: 0003\nBoot0003  Fedora Linux\tHD(1,GPT,AAAAAAAA-1111-2222-3333-444444444444,0x800,0x100000)/\\EFI\\fedora\\shimx64.efi\n',
	);
	assert.equal(v.entries, [
		{
			num: '0003',
			active: false,
			label: 'Fedora Linux',
			partuuid: 'aaaaaaaa-1111-2222-3333-444444444444',
			part: 1,
			loader: '\\EFI\\fedora\\shimx64.efi',
		},
	]);
});

test('stale: only entries on the given partitions (never firmware applications or other disks)', () => {
	const v = parseBootVars(readCapture('efibootmgr-v-removable').result.stdout);
	assert.equal(
		staleEntries(v, new Set([OLD_ESP])).map((e) => e.num),
		['0001'],
	);
	assert.equal(staleEntries(v, new Set(['11111111-2222-3333-4444-555555555555'])), []);
	assert.equal(staleEntries(parseBootVars(readCapture('efibootmgr-v-fresh').result.stdout), new Set([OLD_ESP])), []);
});

test('the removable-media loader per architecture', () => {
	assert.is(removableLoader('x64'), '\\EFI\\BOOT\\BOOTX64.EFI');
	assert.is(removableLoader('arm64'), '\\EFI\\BOOT\\BOOTAA64.EFI');
	assert.is(removableLoader('s390x'), undefined);
});

test.run();
