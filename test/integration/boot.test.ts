// `reimage boot` (the initramfs entry) run on the host against real loop
// devices: what it trusts and where it finds the bundle, up to the choice of
// target (no target disk matches, so nothing can be written).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyBundleFiles, reimage, sharedBundle } from '../helpers/reimage.ts';
import { attachLoop, describe, detachLoop, sh, tmpDir } from '../helpers/sys.ts';

const t = suite('boot: trust and the bundle location');
const RUNDIR = process.env['REIMAGE_RUNDIR'] || '/run/reimage';
const LABEL = `RT${process.pid}`.slice(0, 16);
const NO_DISK = `serial:NO-SUCH-DISK-${process.pid}`;

/** A 64 MiB ext4 file system labelled LABEL holding the shared bundle as /bundle. */
function medium(label: string): string {
	const tree = tmpDir('reimage-medium-tree-');
	copyBundleFiles(sharedBundle('zstd'), path.join(tree, 'bundle'));
	const img = path.join(tmpDir('reimage-medium-'), 'medium.img');
	fs.writeFileSync(img, '');
	fs.truncateSync(img, 64 * 2 ** 20);
	sh('mkfs.ext4', ['-q', '-L', label, '-d', tree, img]);
	return img;
}

function boot(cmdline: string, config: object | undefined): ReturnType<typeof reimage> {
	const d = tmpDir('reimage-boot-');
	fs.writeFileSync(path.join(d, 'cmdline'), `${cmdline}\n`);
	const cfg = path.join(d, 'config');
	fs.mkdirSync(cfg);
	if (config) fs.writeFileSync(path.join(cfg, 'config.json'), JSON.stringify(config));
	return reimage(['boot', '--cmdline', path.join(d, 'cmdline'), '--config', cfg], { env: { ...process.env, REIMAGE_RUNDIR: RUNDIR } });
}

const mountsLeft = () =>
	fs
		.readFileSync('/proc/self/mounts', 'utf8')
		.split('\n')
		.filter((l) => l.includes(`${RUNDIR}/`));

t(
	'an initrd config with no trusted key and no allowUnsigned refuses before the bundle is even looked for (exit 2); no kernel argument loosens it',
	() => {
		for (const extra of ['', ' rd.reimage.allow-unsigned=1']) {
			const r = boot(
				`rd.reimage rd.reimage.bundle=LABEL=${LABEL}-none:/bundle rd.reimage.target=${NO_DISK}${extra}`,
				extra ? { allowUnsigned: false } : {},
			);
			assert.is(r.status, 2, describe(r));
			assert.match(
				r.stderr,
				extra
					? /kernel argument rd\.reimage\.allow-unsigned is not known/
					: /this initrd trusts no signing key \(no \*\.pub in .*\) and its config does not set allowUnsigned/,
			);
			assert.not.match(r.stderr, /waiting for the bundle device/);
		}
	},
);

t('one device carrying the bundle label: it is used (the run then stops at the target choice, exit 4)', () => {
	const dev = attachLoop(medium(LABEL));
	try {
		const r = boot(`rd.reimage rd.reimage.bundle=LABEL=${LABEL}:/bundle rd.reimage.target=${NO_DISK}`, { allowUnsigned: true });
		assert.is(r.status, 4, describe(r));
		assert.match(r.stderr, /no trusted keys baked; unsigned bundles accepted \(allowUnsigned\)/);
		assert.match(r.stderr, new RegExp(`copy the bundle from ${dev} into RAM`));
		assert.match(r.stderr, /no disk matches the target selector serial:NO-SUCH-DISK/);
		assert.equal(mountsLeft(), []);
	} finally {
		detachLoop(dev);
	}
});

t('two devices carrying the bundle label are refused (exit 3), both named, however the location is written', () => {
	const a = attachLoop(medium(LABEL));
	const b = attachLoop(medium(LABEL));
	try {
		for (const loc of [`LABEL=${LABEL}:/bundle`, `/dev/disk/by-label/${LABEL}:/bundle`]) {
			const r = boot(`rd.reimage rd.reimage.bundle=${loc} rd.reimage.target=${NO_DISK}`, { allowUnsigned: true });
			assert.is(r.status, 3, describe(r));
			const [x, y] = [a, b].sort();
			assert.match(
				r.stderr,
				new RegExp(`the bundle location LABEL=${LABEL} is carried by 2 devices \\(${x}, ${y}\\): only one may carry it`),
			);
			assert.not.match(r.stderr, /copy the bundle/);
			assert.equal(mountsLeft(), []);
		}
	} finally {
		detachLoop(a);
		detachLoop(b);
	}
});

t.run();
