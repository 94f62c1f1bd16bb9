// Real Debian images (test/images/), reimaged from v1 to v2 by `reimage
// vm-test` with the real dracut initrd, and then the result booted alone
// (SeaBIOS, OVMF): the booted system's marker unit prints its version and the
// sha256 of each identity file, and the marker given to vm-test demands v2
// with v1's identity — checked inside the booted system, not on the disk.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { reimage } from '../helpers/reimage.ts';
import { initrd, sha256File, vmKey } from '../helpers/vm.ts';
import { describe, tmpDir } from '../helpers/sys.ts';
import { debianBundle, debianDisk, identityOf, markerFor } from '../helpers/images.ts';
import { checkResult } from '../helpers/schema.ts';

const t = suite('vm: real Debian images, reimaged, then booted');

for (const firmware of ['bios', 'efi'] as const) {
	t(`${firmware}: vm-test reimages v1 with v2 and the booted result prints v2 with v1's identity (marker)`, () => {
		const v1 = debianDisk({ firmware }, 1);
		const before = sha256File(v1);
		const id = identityOf(v1);
		assert.not.equal(identityOf(debianDisk({ firmware }, 2)), id, 'v2 has an identity of its own');
		const work = tmpDir('reimage-vmtest-');
		const junit = path.join(work, 'junit.xml');
		const args = [
			'vm-test',
			'--disk',
			v1,
			'--bundle',
			debianBundle({ firmware }, vmKey().key),
			'--initrd',
			initrd(),
			'--firmware',
			firmware,
		];
		const r = reimage([...args, '--marker', markerFor(2, id), '--boot-timeout', '300', '--junit', junit, '--json']);
		assert.is(r.status, 0, describe(r));
		const v = checkResult(r.stdout) as Record<string, any>;
		assert.is(v.pass, true);
		assert.is(v.report.outcome, 'success');
		assert.is(v.report.entries.filter((e: { outcome: string }) => e.outcome === 'restored').length, 3);
		// UEFI: the reimage ran under the same OVMF variables; its entry for the new ESP is what the result booted by.
		if (firmware === 'efi')
			assert.equal(
				[v.report.efi?.outcome, v.report.efi?.created],
				['updated', 'reimage \\EFI\\BOOT\\BOOTX64.EFI'],
				JSON.stringify(v.report.efi),
			);
		else assert.is(v.report.efi?.outcome, 'skipped', JSON.stringify(v.report.efi));
		assert.is(v.boot.firmware, firmware);
		assert.is(v.boot.outcome, 'reached');
		assert.match(v.boot.line, /^REIMAGE-TEST-MARKER version=2 .* cert-meta=kiosk:kiosk:640 cert-xattr=cert-of-v1 report=success$/);
		assert.match(v.reason, new RegExp(`^the reimaged disk booted \\(${firmware === 'efi' ? 'UEFI \\(OVMF\\)' : 'BIOS \\(SeaBIOS\\)'}, `));
		assert.ok(['kvm', 'tcg'].includes(v.accel));
		assert.match(fs.readFileSync(junit, 'utf8'), /<testsuites tests="1" failures="0"/);
		assert.is(sha256File(v1), before, "the user's disk image itself is never changed");
		console.log(`  ${firmware}: the result booted to the marker in ${v.boot.seconds} s`);
	});
}

t.run();
