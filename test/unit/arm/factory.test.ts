import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { blsEntry, FACTORY_TITLE, GRUB_BEGIN, GRUB_END, grubCfgWith, grubScript } from '../../../src/arm/factory.ts';

const spec = {
	bundle: 'PARTUUID=aa-bb:/factory',
	target: 'partuuid:aa-bb',
	kver: '6.1',
	lockdown: ['rd.shell=0'],
	extra: ['console=ttyS0'],
};
const where = { fsUuid: '1234-uuid', kernel: '/reimage/vmlinuz', initrd: '/reimage/initrd.img' };

test('the grub.d script prints an interactive entry booting the recovery kernel with the recovery bundle and target', () => {
	const s = grubScript(spec, where);
	assert.match(s, /^#!\/bin\/sh\n/);
	assert.match(s, /cat <<'REIMAGE_EOF'\nmenuentry 'Restore factory state \(asks first\)[^']*' --id reimage-factory \{\n/);
	assert.match(s, /\tsearch --no-floppy --fs-uuid --set=root 1234-uuid\n/);
	assert.match(
		s,
		/\tlinux \/reimage\/vmlinuz rd\.reimage rd\.reimage\.bundle=PARTUUID=aa-bb:\/factory rd\.reimage\.target=partuuid:aa-bb rd\.reimage\.mode=interactive rd\.shell=0 console=ttyS0\n/,
	);
	assert.match(s, /\tinitrd \/reimage\/initrd\.img\n\}\nREIMAGE_EOF\n$/);
});

test("grub.cfg gets the entry once, between markers, the system's own entries kept", () => {
	const once = grubCfgWith("menuentry 'Debian' {\n}\n", spec, where);
	const twice = grubCfgWith(once, spec, where);
	assert.is(twice, once);
	assert.ok(once.startsWith("menuentry 'Debian' {\n}\n"));
	assert.is(once.split(GRUB_BEGIN).length, 2);
	assert.ok(once.endsWith(`${GRUB_END}\n`));
});

test('the BLS entry is the same interactive boot, paths on the ESP', () => {
	const e = blsEntry(spec, '/reimage-factory/vmlinuz', '/reimage-factory/initrd.img');
	assert.is(e.split('\n')[0], `title ${FACTORY_TITLE}`);
	assert.match(
		e,
		/\nlinux \/reimage-factory\/vmlinuz\ninitrd \/reimage-factory\/initrd\.img\noptions rd\.reimage rd\.reimage\.bundle=PARTUUID=aa-bb:\/factory .*rd\.reimage\.mode=interactive/,
	);
});

test.run();
