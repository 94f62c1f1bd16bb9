import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { armSpec, kernelArgs } from '../../../src/arm/entry.ts';

const cmdline = (text: string) => {
	const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'reimage-cmdline-')), 'cmdline');
	fs.writeFileSync(f, text);
	return f;
};

test('armed entries keep dracut and initramfs-tools from giving a shell, unless the policy allows one', async () => {
	const c = cmdline('BOOT_IMAGE=/vmlinuz root=UUID=x ro quiet console=ttyS0,115200 rd.shell panic=0\n');
	const locked = await armSpec('LABEL=REIMAGE:/bundle', 'serial:K', { kver: '6.1', cmdline: c });
	assert.is(
		kernelArgs(locked, 'auto'),
		'rd.reimage rd.reimage.bundle=LABEL=REIMAGE:/bundle rd.reimage.target=serial:K rd.reimage.mode=auto rd.shell=0 rd.emergency=reboot panic=10 quiet console=ttyS0,115200',
	);
	// The running system's own shell or panic settings never reach the entry.
	assert.not.match(kernelArgs(locked, 'interactive'), /(^| )(rd\.shell|panic=0|root=)( |$)/);
	const open = await armSpec('LABEL=REIMAGE:/bundle', undefined, { kver: '6.1', cmdline: c, allowShell: true });
	assert.is(
		kernelArgs(open, 'interactive'),
		'rd.reimage rd.reimage.bundle=LABEL=REIMAGE:/bundle rd.reimage.mode=interactive quiet console=ttyS0,115200',
	);
});

test('an entry for a bundle URL brings the network up (dracut: rd.neednet=1 ip=dhcp)', async () => {
	const c = cmdline('root=UUID=x console=ttyS0\n');
	const spec = await armSpec('https://fleet.example/b/', 'serial:K', { kver: '6.1', cmdline: c, allowShell: true });
	assert.is(
		kernelArgs(spec, 'auto'),
		'rd.reimage rd.reimage.bundle=https://fleet.example/b/ rd.reimage.target=serial:K rd.reimage.mode=auto console=ttyS0 rd.neednet=1 ip=dhcp',
	);
});

test.run();
