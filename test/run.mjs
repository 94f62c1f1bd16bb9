// Runs test tiers with uvu and ends with one line: `N passed, N failed`.
// Tiers: unit (no root, no processes: spawning is forbidden by a preload),
// integration (root, real loop devices, the built binary), vm (the real initrd
// in QEMU; zz-*.test.ts are a developer's local copies and never run here).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

const tiers = process.argv.slice(2);
let passed = 0;
let failed = 0;
// The VM tier runs one process per file (each takes minutes; its initrds and
// images are cached on disk) and says how long each took; the others run whole.
const runs = tiers.flatMap((tier) =>
	tier === 'vm'
		? fs
				.readdirSync('test/vm')
				.filter((f) => f.endsWith('.test.ts') && !f.startsWith('zz-'))
				.sort()
				.map((f) => ({ tier, label: `${tier}/${f}`, pattern: `^${f.replaceAll('.', '\\.')}$` }))
		: [{ tier, label: tier, pattern: '\\.test\\.ts$' }],
);
for (const { tier, label, pattern } of runs) {
	const pre = tier === 'unit' ? ['--import', './test/unit/_forbid-spawn.mjs'] : [];
	const t0 = Date.now();
	const r = spawnSync(process.execPath, [...pre, 'node_modules/uvu/bin.js', `test/${tier}`, pattern, '-c', 'false'], {
		stdio: ['inherit', 'pipe', 'inherit'],
		encoding: 'utf8',
		maxBuffer: 1 << 28,
	});
	process.stdout.write(r.stdout ?? '');
	console.log(`${label}: ${Math.round((Date.now() - t0) / 1000)} s`);
	const num = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(r.stdout ?? '')?.[1] ?? NaN);
	const total = num('Total');
	const ok = num('Passed');
	if (Number.isNaN(total) || Number.isNaN(ok)) {
		console.log(`${label}: the runner crashed (exit ${r.status})`);
		failed += 1;
		continue;
	}
	passed += ok;
	failed += total - ok - (num('Skipped') || 0);
	if (r.status !== 0 && total === ok) failed += 1;
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
