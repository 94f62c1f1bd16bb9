// Runs test tiers with uvu and ends with one line: `N passed, N failed`.
// Tiers: unit (no root, no processes: spawning is forbidden by a preload),
// integration (root, real loop devices, the built binary).
import { spawnSync } from 'node:child_process';

const tiers = process.argv.slice(2);
let passed = 0;
let failed = 0;
for (const tier of tiers) {
	const pre = tier === 'unit' ? ['--import', './test/unit/_forbid-spawn.mjs'] : [];
	const r = spawnSync(process.execPath, [...pre, 'node_modules/uvu/bin.js', `test/${tier}`, '\\.test\\.ts$', '-c', 'false'], {
		stdio: ['inherit', 'pipe', 'inherit'],
		encoding: 'utf8',
		maxBuffer: 1 << 28,
	});
	process.stdout.write(r.stdout ?? '');
	const num = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(r.stdout ?? '')?.[1] ?? NaN);
	const total = num('Total');
	const ok = num('Passed');
	if (Number.isNaN(total) || Number.isNaN(ok)) {
		console.log(`tier ${tier}: the runner crashed (exit ${r.status})`);
		failed += 1;
		continue;
	}
	passed += ok;
	failed += total - ok - (num('Skipped') || 0);
	if (r.status !== 0 && total === ok) failed += 1;
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
