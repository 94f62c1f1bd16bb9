// The CLI contract around the flow: help, version, the binary without Node,
// the terminal confirmation (exit 7), not root (exit 8), and a failure after
// the write (exit 11) that still cleans up.
import * as fs from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtures, freshOldDisk } from '../helpers/fixtures.ts';
import { BIN, copyBundle, readManifest, reimage, sharedBundle, writeManifest } from '../helpers/reimage.ts';
import { attachLoop, describe, detachLoop, exec, sha256 } from '../helpers/sys.ts';

const t = suite('cli');

// Mounts left below this test run's own run dir (other runs on the machine use theirs).
const RUNDIR = process.env['REIMAGE_RUNDIR'] || '/run/reimage';
const mountsLeft = () =>
	fs
		.readFileSync('/proc/self/mounts', 'utf8')
		.split('\n')
		.filter((l) => l.includes(`${RUNDIR}/`));

t('--help on every command, --version, and help on no command is a usage error', () => {
	for (const cmd of ['pack', 'run', 'plan', 'verify']) {
		const r = reimage([cmd, '--help']);
		assert.is(r.status, 0, describe(r));
		assert.match(r.stdout, new RegExp(`Usage: reimage ${cmd} `));
	}
	const h = reimage(['--help']);
	assert.is(h.status, 0);
	assert.match(h.stdout, /Exit codes below 10: nothing was written\. 0 ok/);
	const missing = reimage(['restore', '--root', '/']);
	assert.is(missing.status, 2);
	assert.match(missing.stderr, /reimage restore needs --from: see reimage restore --help/);
	assert.is(reimage([]).status, 2);
	const v = reimage(['--version']);
	assert.match(v.stdout, /^reimage \d+\.\d+\.\d+/);
});

t('the manual page renders with groff without a warning, and the bash completion works in a real bash', () => {
	const man = reimage(['man']);
	assert.is(man.status, 0, describe(man));
	const g = exec('groff', ['-man', '-Tutf8', '-ww', '-z'], { input: man.stdout });
	assert.is(g.status, 0, describe(g));
	assert.is(g.stderr, '', 'groff warnings');
	// -P-cbou: plain text (no bold or underline by overstrike or SGR).
	const text = exec('groff', ['-man', '-Tutf8', '-P-cbou'], { input: man.stdout });
	assert.match(text.stdout, /KERNEL ARGUMENTS/);
	const comp = reimage(['completion']);
	assert.is(comp.status, 0, describe(comp));
	const file = `/tmp/reimage-completion-${process.pid}.bash`;
	fs.writeFileSync(file, comp.stdout);
	try {
		const lint = exec('shellcheck', ['-s', 'bash', file]);
		assert.is(lint.status, 0, describe(lint));
		const probe = [
			`source ${file}`,
			't() { COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); _reimage; echo "${COMPREPLY[*]}"; }',
			't reimage pa',
			't reimage pack --co',
			"t reimage pack --codec ''",
			"t reimage initrd --generator ''",
			't reimage run --target /dev/nul',
		].join('\n');
		const b = exec('bash', ['-c', probe]);
		assert.is(b.status, 0, describe(b));
		assert.equal(b.stdout.split('\n').slice(0, 5), [
			'pack',
			'--codec --compatible',
			'zstd gzip xz bzip2 none',
			'dracut initramfs-tools',
			'/dev/null',
		]);
	} finally {
		fs.rmSync(file, { force: true });
	}
});

t('initrd: --no-systemd or --add with initramfs-tools, or a module name that is not one -> 2, nothing built', () => {
	const kver = fs.readdirSync('/lib/modules').sort().pop()!;
	const out = `/tmp/reimage-never-${process.pid}.img`;
	const cases: [string[], RegExp][] = [
		[['--generator', 'initramfs-tools', '--no-systemd'], /--no-systemd applies to dracut only/],
		[['--generator', 'initramfs-tools', '--add', 'dm'], /--add dm names a dracut module, but the generator is initramfs-tools/],
		[['--add', 'dm;reboot'], /--add "dm;reboot" is not a dracut module name/],
	];
	for (const [args, re] of cases) {
		const r = reimage(['initrd', '--out', out, '--kver', kver, ...args]);
		assert.is(r.status, 2, describe(r));
		assert.match(r.stderr, re);
		assert.not.ok(fs.existsSync(out));
	}
});

t('the binary runs with no node on PATH', () => {
	const r = exec(BIN, ['--version'], { env: { PATH: '/nonexistent' } });
	assert.is(r.status, 0, describe(r));
	assert.match(r.stdout, /^reimage /);
});

t('on a terminal, an answer other than "yes" cancels -> 7, nothing written', async () => {
	const dev = attachLoop(freshOldDisk());
	try {
		const before = await sha256(dev);
		const cmd = `${BIN} run --bundle ${sharedBundle('zstd')} --target ${dev} --retain ${fixtures().list}`;
		// script(1) gives the binary a pseudo-terminal; "no" answers the question.
		const r = exec('script', ['-qec', cmd, '/dev/null'], { input: 'no\n' });
		assert.is(r.status, 7, describe(r));
		assert.match(r.stdout, /EVERYTHING on \/dev\/loop\d+ .* will be destroyed/);
		assert.match(r.stdout, /Partitions now on it:[\s\S]*ext4\s+root/);
		assert.match(r.stdout, /Replaced: \/dev\/loop\d+p1 \(root\), \/dev\/loop\d+p2 \(data\)\./);
		assert.match(r.stdout, /\n19 retained entries from \S+ will be kept\.\r?\n/);
		assert.match(r.stdout, /not confirmed: nothing was written/);
		assert.is(await sha256(dev), before);
		assert.equal(mountsLeft(), []);
	} finally {
		detachLoop(dev);
	}
});

t('not root -> 8 before anything is opened', async () => {
	const dev = attachLoop(freshOldDisk());
	try {
		const r = exec('setpriv', [
			'--reuid=65534',
			'--regid=65534',
			'--clear-groups',
			BIN,
			'run',
			'--bundle',
			sharedBundle('zstd'),
			'--target',
			dev,
			'--yes',
		]);
		assert.is(r.status, 8, describe(r));
		assert.match(r.stderr, /reimage run needs root/);
		const plan = exec('setpriv', [
			'--reuid=65534',
			'--regid=65534',
			'--clear-groups',
			BIN,
			'plan',
			'--bundle',
			sharedBundle('zstd'),
			'--target',
			dev,
			'--no-retain',
		]);
		assert.is(plan.status, 8, describe(plan));
		assert.match(plan.stderr, /^reimage: reimage plan needs root \(/m);
	} finally {
		detachLoop(dev);
	}
});

t('a new system that does not mount after the write -> 11, mounts and RAM stage cleaned up', async () => {
	const b = copyBundle('zstd');
	const m = readManifest(b);
	const data = m.mounts.find((x) => x.path === '/kiosk') as unknown as { spec: { kind: string; value: string } };
	data.spec = { kind: 'LABEL', value: 'no-such-label' };
	writeManifest(b, m);
	const dev = attachLoop(freshOldDisk());
	try {
		const r = reimage(['run', '--bundle', b, '--target', dev, '--retain', fixtures().list, '--yes']);
		assert.is(r.status, 11, describe(r));
		assert.match(r.stderr, /LABEL=no-such-label \(for \/kiosk\) is not on \/dev\/loop\d+ after writing/);
		assert.equal(mountsLeft(), []);
		assert.equal(
			fs.readdirSync(process.env['REIMAGE_RUNDIR'] || '/run/reimage').filter((d) => d.startsWith('run-')),
			[],
			'the run dir the binary used',
		);
	} finally {
		detachLoop(dev);
	}
});

t.run();
