// Disk-image fixtures, generated once per test process by
// test/fixtures/make-disks.sh (no images are committed).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { copySparse, sh, tmpDir } from './sys.ts';

export const REPO = path.resolve(import.meta.dirname, '..', '..');
export const MAKE_DISKS = path.join(REPO, 'test', 'fixtures', 'make-disks.sh');

export interface Fixtures {
	dir: string;
	/** 320 MiB old system: GPT root (160 MiB) + data. */
	oldImg: string;
	/** 192 MiB new image: GPT root (120 MiB) + data. */
	newImg: string;
	/** Retention list for old -> new. */
	list: string;
}

let cached: Fixtures | undefined;

/**
 * The fixture images. $REIMAGE_FIXTURES names a directory to reuse (generated
 * there if empty); otherwise /tmp/reimage-fixtures-<pid>, removed at exit.
 */
export function fixtures(): Fixtures {
	if (cached) return cached;
	const fromEnv = process.env['REIMAGE_FIXTURES'];
	const dir = fromEnv ? path.resolve(fromEnv) : `/tmp/reimage-fixtures-${process.pid}`;
	const done = path.join(dir, '.complete');
	if (!fs.existsSync(done)) {
		sh('bash', [MAKE_DISKS, dir]);
		fs.writeFileSync(done, `${new Date().toISOString()}\n`);
	}
	if (!fromEnv) {
		process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
	}
	cached = {
		dir,
		oldImg: path.join(dir, 'old.img'),
		newImg: path.join(dir, 'new.img'),
		list: path.join(dir, 'kiosk.list'),
	};
	return cached;
}

/** A private copy of old.img (the target disk) in a fresh temp dir. */
export function freshOldDisk(): string {
	const d = tmpDir('reimage-disk-');
	const f = path.join(d, 'old.img');
	copySparse(fixtures().oldImg, f);
	return f;
}

/** Write a retention list into a fresh temp file; returns its path. */
export function writeList(lines: readonly string[]): string {
	const d = tmpDir('reimage-list-');
	const f = path.join(d, 'list');
	fs.writeFileSync(f, lines.join('\n') + '\n');
	return f;
}
