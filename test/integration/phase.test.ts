// The phase rule and the saved retained set: every failure after the point of
// no return exits 10 or above, the retained set was saved before the first
// write, and running the same command again (or `reimage restore`) brings
// every entry back exactly as a clean run does. Signals before the point of
// no return leave the target byte-identical and nothing behind.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import { checkResult } from '../helpers/schema.ts';
import * as assert from 'uvu/assert';
import { fixtures, freshOldDisk } from '../helpers/fixtures.ts';
import { BIN, frozenBundle, frozenDisk, holdingPart2, pack, reimage, RUNDIR, sigtermAt } from '../helpers/reimage.ts';
import type { Frozen } from '../helpers/reimage.ts';
import {
	attachLoop,
	describe,
	detachLoop,
	exec,
	mount,
	partNode,
	partNumberByName,
	partxUpdate,
	sfdiskJson,
	sh,
	sha256,
	umount,
	tmpDir,
} from '../helpers/sys.ts';
import type { Result } from '../helpers/sys.ts';

const t = suite('phase: after the point of no return nothing is lost');

const isUtf8 = (b: Buffer) => Buffer.from(b.toString('utf8'), 'utf8').equals(b);
const args = (bundle: string, dev: string, ...extra: string[]) => [
	'run',
	'--bundle',
	bundle,
	'--target',
	dev,
	'--retain',
	fixtures().list,
	'--yes',
	...extra,
];

/** Every restored entry of the new system on DEV: kind, mode, owner, bytes (or link target) and xattrs. */
function retainedState(dev: string): Record<string, string> {
	partxUpdate(dev);
	const table = sfdiskJson(dev);
	const root = mount(partNode(dev, partNumberByName(table, 'root')));
	const data = mount(partNode(dev, partNumberByName(table, 'data')));
	try {
		const report = JSON.parse(fs.readFileSync(path.join(root, 'var/log/reimage/report.json'), 'utf8')) as {
			outcome: string;
			entries: { path: string; pathHex?: string; outcome: string }[];
		};
		assert.is(report.outcome, 'success');
		const out: Record<string, string> = {};
		for (const e of report.entries.filter((x) => x.outcome !== 'missing-optional')) {
			assert.is(e.outcome, 'restored', e.path);
			// Paths are bytes: pathHex when not UTF-8, else the display form (\\xNN for control bytes, \\\\ for a backslash).
			const shown = e.path.replace(/\\(x[0-9a-f]{2}|\\)/g, (_m, x: string) =>
				x === '\\' ? '\\' : String.fromCharCode(parseInt(x.slice(1), 16)),
			);
			const p = e.pathHex ? Buffer.from(e.pathHex, 'hex').toString('latin1') : Buffer.from(shown, 'utf8').toString('latin1');
			const inData = p === '/kiosk' || p.startsWith('/kiosk/');
			const host = Buffer.from(inData ? data + p.slice('/kiosk'.length) : root + p, 'latin1');
			const st = fs.lstatSync(host);
			const body = st.isSymbolicLink()
				? `-> ${fs.readlinkSync(host, 'hex')}`
				: st.isFile()
					? createHash('sha256').update(fs.readFileSync(host)).digest('hex')
					: 'dir';
			const xattrs = isUtf8(host)
				? exec('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', host.toString()]).stdout.split('\n').slice(1).join(' ')
				: '(name not UTF-8)';
			out[e.path] = `${(st.mode & 0o177777).toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs} ${body} ${xattrs}`;
		}
		return out;
	} finally {
		umount(data);
		umount(root);
	}
}

let reference: Record<string, string> | undefined;
/** What a clean run on a fresh disk restores (computed once). */
function cleanState(bundle: string): Record<string, string> {
	if (reference) return reference;
	const dev = attachLoop(freshOldDisk());
	try {
		const r = reimage(args(bundle, dev));
		assert.is(r.status, 0, describe(r));
		reference = retainedState(dev);
		return reference;
	} finally {
		detachLoop(dev);
	}
}

/** Partition 2 opened at the point of no return and held until reimage ends: the reread fails (EBUSY) -> 11. DEV is attached from DISK (frozenDisk). */
const failAfterWrite = (bundle: string, dev: string, disk: Frozen, ...extra: string[]) =>
	holdingPart2(args(bundle, dev, ...extra), dev, disk, /point of no return/);

const savedIn = (bundle: string) => path.join(bundle, 'reimage-retained');

t(
	'a failure after the point of no return: 11, the saved set named, --json lists every entry as not restored; the same command again restores every entry as a clean run does',
	async () => {
		const bundle = pack('zstd');
		const want = cleanState(bundle);
		const disk = frozenDisk(freshOldDisk());
		const dev = attachLoop(disk.path);
		try {
			const r = await failAfterWrite(bundle, dev, disk, '--json');
			assert.ok(r.acted);
			assert.is(r.status, 11, r.stderr);
			const line = r.stderr.trim().split('\n').at(-1) ?? '';
			assert.match(
				line,
				/^reimage: .*stop what holds the disk.*; the 19 retained entries are saved in \S+reimage-retained\/\S+: run the same command again to finish/,
			);
			checkResult(r.stdout);
			const report = JSON.parse(r.stdout) as {
				outcome: string;
				error: { code: number };
				retainedSaved: string[];
				entries: { outcome: string; notes: string[] }[];
			};
			assert.is(report.outcome, 'failed');
			assert.is(report.error.code, 11);
			assert.is(report.entries.filter((e) => e.outcome === 'not-restored').length, 19);
			const saved = fs.readdirSync(savedIn(bundle));
			assert.is(saved.length, 1);
			assert.ok(fs.existsSync(path.join(savedIn(bundle), saved[0]!, 'report.json')), 'the failure report is kept beside the saved set');

			const again = reimage(args(bundle, dev));
			assert.is(again.status, 0, describe(again));
			assert.match(again.stderr, /found the retained set an earlier run saved/);
			assert.equal(retainedState(dev), want);
			assert.not.ok(fs.existsSync(savedIn(bundle)), 'the saved set is removed once every entry is back');
		} finally {
			detachLoop(dev);
			disk.release();
		}
	},
);

t('reimage restore --from the saved set puts every entry into a mounted new system', async () => {
	const bundle = pack('zstd');
	const want = cleanState(bundle);
	const disk = frozenDisk(freshOldDisk());
	const dev = attachLoop(disk.path);
	try {
		const r = await failAfterWrite(bundle, dev, disk);
		assert.is(r.status, 11, r.stderr);
		const archive = path.join(savedIn(bundle), fs.readdirSync(savedIn(bundle))[0]!);
		partxUpdate(dev);
		const table = sfdiskJson(dev);
		const root = mount(partNode(dev, partNumberByName(table, 'root')), { rw: true });
		const data = path.join(root, 'kiosk');
		sh('mount', [partNode(dev, partNumberByName(table, 'data')), data]);
		let res: Result;
		try {
			res = reimage(['restore', '--from', archive, '--root', root, '--json']);
			// The report the flow would have written, so retainedState can read the entries.
			if (res.status === 0) {
				fs.mkdirSync(path.join(root, 'var/log/reimage'), { recursive: true });
				const rep = JSON.parse(res.stdout) as { entries: unknown[] };
				fs.writeFileSync(path.join(root, 'var/log/reimage/report.json'), JSON.stringify({ outcome: 'success', entries: rep.entries }));
			}
		} finally {
			umount(data);
			umount(root);
		}
		assert.is(res.status, 0, describe(res));
		assert.equal(retainedState(dev), want);
		const bad = reimage(['restore', '--from', tmpDir(), '--root', '/']);
		assert.is(bad.status, 2, describe(bad));
		assert.match(bad.stderr, /is not a saved retained set \(no retained\.json in it\): give the directory that holds retained\.json/);
	} finally {
		detachLoop(dev);
		disk.release();
	}
});

t(
	'a saved set is not signed: an entry the list does not name is refused (5, untouched); with an intact other system on the disk the set is ignored',
	async () => {
		const bundle = pack('zstd');
		const disk = frozenDisk(freshOldDisk());
		let dev = attachLoop(disk.path);
		try {
			const r = await failAfterWrite(bundle, dev, disk);
			assert.is(r.status, 11, r.stderr);
			const set = path.join(savedIn(bundle), fs.readdirSync(savedIn(bundle))[0]!);
			const index = path.join(set, 'retained.json');
			const good = fs.readFileSync(index, 'utf8');
			const x = JSON.parse(good) as { entries: { path: string }[] };
			x.entries.push({ ...x.entries.find((e) => e.path === '/etc/hostname')!, path: '/root/.ssh/authorized_keys' });
			fs.writeFileSync(index, JSON.stringify(x));
			const before = await sha256(dev);
			const planted = reimage(args(bundle, dev));
			assert.is(planted.status, 5, describe(planted));
			assert.match(
				planted.stderr,
				/holds \/root\/\.ssh\/authorized_keys, which the retention list in use \(\S+\) does not name: nothing was written/,
			);
			assert.is(await sha256(dev), before, 'target byte-identical');
			// The old system back on the disk (as if the set were left from long ago): the set is ignored.
			fs.writeFileSync(index, good);
			detachLoop(dev);
			sh('cp', ['--sparse=always', fixtures().oldImg, disk.path]);
			dev = attachLoop(disk.path);
			const fresh = reimage(args(bundle, dev));
			assert.is(fresh.status, 0, describe(fresh));
			assert.match(
				fresh.stderr,
				/but the disk holds an intact system that is not this bundle's image: it is ignored and the disk is read afresh/,
			);
			assert.match(fresh.stderr, /retention: 19 entries/);
		} finally {
			detachLoop(dev);
			disk.release();
		}
	},
);

t(
	'a saved set changed after it was saved is refused (5, untouched); a partial entry fails the run (11) and keeps the set; after a completed run a copy of the set is stale and ignored',
	async () => {
		const bundle = pack('zstd');
		const disk = frozenDisk(freshOldDisk());
		const dev = attachLoop(disk.path);
		try {
			const r = await failAfterWrite(bundle, dev, disk);
			assert.is(r.status, 11, r.stderr);
			const set = path.join(savedIn(bundle), fs.readdirSync(savedIn(bundle))[0]!);
			const copy = path.join(tmpDir('reimage-set-'), 'set');
			sh('cp', ['-a', set, copy]);
			const fresh = () => {
				sh('rm', ['-rf', set]);
				sh('cp', ['-a', copy, set]);
			};
			const index = path.join(set, 'retained.json');
			type Index = { entries: { path: string; staged?: string; xattrs: { name: string; value: string }[] }[] };
			const hostname = (x: Index) => x.entries.find((e) => e.path === '/etc/hostname')!;
			const before = await sha256(dev);
			// The bytes of an entry changed.
			fs.writeFileSync(path.join(set, hostname(JSON.parse(fs.readFileSync(index, 'utf8')) as Index).staged!), 'evil\n');
			const changed = reimage(args(bundle, dev));
			assert.is(changed.status, 5, describe(changed));
			assert.match(
				changed.stderr,
				/the bytes of \/etc\/hostname have sha256 [0-9a-f]{64}, not the [0-9a-f]{64} recorded when it was saved: nothing was written/,
			);
			// The index unreadable.
			fs.writeFileSync(index, '{');
			const broken = reimage(args(bundle, dev));
			assert.is(broken.status, 5, describe(broken));
			assert.match(broken.stderr, /the saved retained set in \S+ is unreadable \(.*\): nothing was written/);
			assert.is(await sha256(dev), before, 'target byte-identical');
			// An attribute the new file system refuses: the entry is partial, the run fails, the set stays.
			fresh();
			const x = JSON.parse(fs.readFileSync(index, 'utf8')) as Index;
			hostname(x).xattrs.push({ name: 'foo.bar', value: 'AQ==' });
			fs.writeFileSync(index, JSON.stringify(x));
			const partial = reimage(args(bundle, dev));
			assert.is(partial.status, 11, describe(partial));
			assert.ok(fs.existsSync(index), 'the set is kept');
			// The good set: the run completes and removes it.
			fresh();
			const done = reimage(args(bundle, dev));
			assert.is(done.status, 0, describe(done));
			assert.not.ok(fs.existsSync(savedIn(bundle)));
			// The machine is renamed later; a copy of the old set put back must not bring the old name back.
			partxUpdate(dev);
			const root = mount(partNode(dev, partNumberByName(sfdiskJson(dev), 'root')), { rw: true });
			fs.writeFileSync(path.join(root, 'etc/hostname'), 'renamed\n');
			umount(root);
			fs.mkdirSync(savedIn(bundle));
			sh('cp', ['-a', copy, set]);
			const stale = reimage(args(bundle, dev));
			assert.is(stale.status, 0, describe(stale));
			assert.match(stale.stderr, /a reimage completed on \S+: the set is stale and ignored, the disk is read afresh/);
			const after = mount(partNode(dev, partNumberByName(sfdiskJson(dev), 'root')));
			const name = fs.readFileSync(path.join(after, 'etc/hostname'), 'utf8');
			umount(after);
			assert.is(name, 'renamed\n');
		} finally {
			detachLoop(dev);
			disk.release();
		}
	},
);

t('nowhere to save the retained set: refused before writing (8), untouched', async () => {
	const bundle = pack('zstd');
	fs.writeFileSync(savedIn(bundle), 'a file where the set would go\n');
	const ram = path.join(RUNDIR, 'retained');
	fs.mkdirSync(RUNDIR, { recursive: true });
	const planted = !fs.existsSync(ram);
	if (planted) fs.writeFileSync(ram, 'a file where the RAM copy would go\n');
	const dev = attachLoop(freshOldDisk());
	try {
		const before = await sha256(dev);
		const r = reimage(args(bundle, dev));
		assert.is(r.status, 8, describe(r));
		assert.match(
			r.stderr,
			/the 19 retained entries could not be saved anywhere before writing \(see the warnings above\): nothing was written; give --keep-dir DIR/,
		);
		assert.not.match(r.stderr, /=== point of no return/);
		assert.is(await sha256(dev), before, 'target byte-identical');
	} finally {
		detachLoop(dev);
		if (planted) fs.rmSync(ram);
	}
});

t('stdout and stderr closed early (a pipe into head): the run finishes, exit 0, nothing left mounted', async () => {
	const bundle = pack('zstd');
	const dev = attachLoop(freshOldDisk());
	try {
		const r = exec('bash', ['-c', `"${BIN}" ${args(bundle, dev).join(' ')} 2>&1 | head -n 2 >/dev/null; echo "status=\${PIPESTATUS[0]}"`]);
		assert.match(r.stdout, /status=0/, describe(r));
		assert.is(
			exec('findmnt', ['-rn', '-o', 'TARGET'])
				.stdout.split('\n')
				.filter((m) => m.startsWith(`${RUNDIR}/`))
				.join(' '),
			'',
			'nothing left mounted',
		);
	} finally {
		detachLoop(dev);
	}
});

t('SIGTERM before the point of no return: 7, target byte-identical, nothing left mounted or locked, the next run works', async () => {
	// The bundle's medium frozen: the run saves the retained set there after the capture and waits until the
	// signal was taken, so the signal lands before the point of no return however late this process sees the capture start.
	const frozen = frozenBundle(pack('zstd'));
	const bundle = frozen.path;
	const dev = attachLoop(freshOldDisk());
	try {
		const before = await sha256(dev);
		const r = await sigtermAt(args(bundle, dev), /capture retained entries into RAM \.\.\./, frozen);
		assert.ok(r.acted);
		assert.is(r.status, 7, r.stderr);
		assert.not.match(r.stderr, /retained set saved in/, 'stopped while it saved the retained set, or before');
		assert.match(
			r.stderr,
			/reimage: interrupted by SIGTERM before the point of no return: nothing was written to \/dev\/loop\d+; run reimage again when ready\n$/,
		);
		assert.not.match(r.stderr, /=== point of no return/);
		assert.is(await sha256(dev), before, 'target byte-identical');
		assert.is(
			exec('findmnt', ['-rn', '-o', 'TARGET'])
				.stdout.split('\n')
				.filter((m) => m.startsWith(`${RUNDIR}/`))
				.join(' '),
			'',
			'nothing left mounted',
		);
		assert.equal(
			fs.readdirSync(RUNDIR).filter((f) => f.startsWith('lock')),
			[],
			'the lock is released',
		);
		const plan = reimage(['plan', '--bundle', bundle, '--target', dev, '--retain', fixtures().list]);
		assert.is(plan.status, 0, describe(plan));
	} finally {
		detachLoop(dev);
		frozen.release();
	}
});

t('SIGTERM after the point of no return: 10 or 11 saying so, never a half-bootable disk, and the same command again finishes', async () => {
	const bundle = pack('zstd');
	const want = cleanState(bundle);
	// The disk frozen: the write waits until the run has taken the signal, which so lands before the run can end.
	const disk = frozenDisk(freshOldDisk());
	const dev = attachLoop(disk.path);
	try {
		const r = await sigtermAt(args(bundle, dev), /=== point of no return/, disk);
		assert.ok(r.acted);
		assert.ok(r.status === 10 || r.status === 11, r.stderr);
		assert.match(r.stderr, /interrupted by SIGTERM.*run the same command again to finish/);
		if (r.status === 10) {
			const head = Buffer.alloc(1 << 20);
			const fd = fs.openSync(dev, 'r');
			fs.readSync(fd, head, 0, head.length, 0);
			fs.closeSync(fd);
			assert.ok(
				head.every((b) => b === 0),
				'an interrupted write leaves the disk invalidated',
			);
		}
		const again = reimage(args(bundle, dev));
		assert.is(again.status, 0, describe(again));
		assert.equal(retainedState(dev), want);
	} finally {
		detachLoop(dev);
		disk.release();
	}
});

t.run();
