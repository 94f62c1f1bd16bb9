// The chunker's throughput (chunk + SHA512/256 id, one core, page cache warm)
// on FILE (default: the built binary, 123 MiB of real code and data), at
// casync's default sizes, ours, and 4 KiB fixed; casync make (which also
// compresses and stores every chunk) beside it.
//   node_modules/.bin/node test/bench/chunker.ts [FILE]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeIndex } from '../../src/chunks/make.ts';

const file = process.argv[2] ?? join(import.meta.dirname, '..', '..', 'build', 'reimage');
const tmp = mkdtempSync(join(tmpdir(), 'chunker-bench-'));
for (const [min, avg, max] of [
	[16384, 65536, 262144],
	[1024, 4096, 16384],
	[4096, 4096, 4096],
] as const) {
	await makeIndex(file, { min, avg, max }); // warm the page cache
	const m = await makeIndex(file, { min, avg, max });
	const t0 = performance.now();
	const r = spawnSync(
		'casync',
		['make', `--store=${join(tmp, 'store')}`, `--chunk-size=${min}:${avg}:${max}`, join(tmp, 'x.caibx'), file],
		{ stdio: 'ignore' },
	);
	const casync = r.status === 0 ? `${(m.bytes / 1048576 / ((performance.now() - t0) / 1000)).toFixed(0)} MiB/s` : 'not installed';
	console.log(
		`chunk ${min}:${avg}:${max}: ${m.index.ends.length} chunks, ${(m.bytes / 1048576 / m.seconds).toFixed(0)} MiB/s (casync make with its store: ${casync})`,
	);
}
rmSync(tmp, { recursive: true, force: true });
