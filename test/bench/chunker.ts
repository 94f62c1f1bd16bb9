// The chunker's throughput (chunk + SHA512/256 id, page cache warm) on FILE
// (default: the built binary, 123 MiB of real code and data), at casync's
// default sizes, ours, and 4 KiB fixed: in one pass on one core, and as a
// seed is chunked (src/chunks/parallel.ts, every core; the same cuts, checked
// here); casync make (which also compresses and stores every chunk) beside it.
//   node_modules/.bin/node test/bench/chunker.ts [FILE]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chunker } from '../../src/chunks/chunker.ts';
import { scanIds } from '../../src/chunks/parallel.ts';

const file = process.argv[2] ?? join(import.meta.dirname, '..', '..', 'build', 'reimage');
const tmp = mkdtempSync(join(tmpdir(), 'chunker-bench-'));
for (const [min, avg, max] of [
	[16384, 65536, 262144],
	[1024, 4096, 16384],
	[4096, 4096, 4096],
] as const) {
	const c = chunker({ min, avg, max });
	await scanIds(file, c, undefined, { workers: 1 }); // warm the page cache
	const t1 = performance.now();
	const one = await scanIds(file, c, undefined, { workers: 1 });
	const s1 = (performance.now() - t1) / 1000;
	const t2 = performance.now();
	const all = await scanIds(file, c);
	const s2 = (performance.now() - t2) / 1000;
	if (!all.ids.equals(one.ids) || all.ends.length !== one.ends.length) throw new Error('the parallel scan differs from one pass');
	const mib = one.bytes / 1048576;
	const m = { bytes: one.bytes, seconds: s1, index: { ends: one.ends } };
	const t0 = performance.now();
	const r = spawnSync(
		'casync',
		['make', `--store=${join(tmp, 'store')}`, `--chunk-size=${min}:${avg}:${max}`, join(tmp, 'x.caibx'), file],
		{ stdio: 'ignore' },
	);
	const casync = r.status === 0 ? `${(m.bytes / 1048576 / ((performance.now() - t0) / 1000)).toFixed(0)} MiB/s` : 'not installed';
	console.log(
		`chunk ${min}:${avg}:${max}: ${m.index.ends.length} chunks, one pass ${(mib / s1).toFixed(0)} MiB/s, every core ${(mib / s2).toFixed(0)} MiB/s (${all.regions} regions, ${all.stitched} chunks stitched) (casync make with its store: ${casync})`,
	);
}
rmSync(tmp, { recursive: true, force: true });
