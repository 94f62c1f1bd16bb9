// Runs test tiers with uvu and ends with one line: `N passed, N failed`.
// Tiers: unit (no root, no processes: spawning is forbidden by a preload),
// integration (root, real loop devices, the built binary), vm (the real initrd
// in QEMU; zz-*.test.ts are a developer's local copies and never run here).
// The VM tier runs one process per file, REIMAGE_VM_LANES (default 2) at a
// time: a TCG guest keeps about one core busy, so two side by side use a
// 2-core machine; the caches they share (initrds, the fleet key, the Debian
// images) are made whole under a private name and renamed, or under a lock.
// Each file's output is printed when it ends, with its time.
import { spawn } from 'node:child_process';
import fs from 'node:fs';

const tiers = process.argv.slice(2);
const lanes = Math.max(1, Number(process.env.REIMAGE_VM_LANES ?? 2) || 1);
// The longest VM files first, so the two lanes end close together.
const FIRST = ['boot.test.ts', 'powercut.test.ts', 'faults.test.ts', 'factory.test.ts', 'images.test.ts'];
let passed = 0;
let failed = 0;

function runOne(tier, label, pattern) {
	const pre = tier === 'unit' ? ['--import', './test/unit/_forbid-spawn.mjs'] : [];
	const t0 = Date.now();
	return new Promise((resolve) => {
		const child = spawn(process.execPath, [...pre, 'node_modules/uvu/bin.js', `test/${tier}`, pattern, '-c', 'false'], {
			stdio: ['inherit', 'pipe', 'inherit'],
		});
		let out = '';
		child.stdout.setEncoding('utf8').on('data', (d) => {
			out += d;
		});
		child.on('close', (status) => {
			process.stdout.write(out);
			console.log(`${label}: ${Math.round((Date.now() - t0) / 1000)} s`);
			const num = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(out)?.[1] ?? NaN);
			const total = num('Total');
			const ok = num('Passed');
			if (Number.isNaN(total) || Number.isNaN(ok)) {
				console.log(`${label}: the runner crashed (exit ${status})`);
				failed += 1;
			} else {
				passed += ok;
				// (uvu's Total leaves skipped tests out: a file whose tests are all skipped says Total 0, Skipped N.)
				failed += Math.max(0, total - ok);
				if (status !== 0 && total === ok) failed += 1;
			}
			resolve();
		});
	});
}

for (const tier of tiers) {
	if (tier !== 'vm') {
		await runOne(tier, tier, '\\.test\\.ts$');
		continue;
	}
	const rank = (f) => (FIRST.includes(f) ? FIRST.indexOf(f) : FIRST.length);
	const queue = fs
		.readdirSync('test/vm')
		.filter((f) => f.endsWith('.test.ts') && !f.startsWith('zz-'))
		.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
	const t0 = Date.now();
	const lane = async () => {
		for (let f = queue.shift(); f; f = queue.shift()) await runOne(tier, `vm/${f}`, `^${f.replaceAll('.', '\\.')}$`);
	};
	await Promise.all(Array.from({ length: lanes }, lane));
	console.log(`vm: ${Math.round((Date.now() - t0) / 1000)} s in ${lanes} lane(s)`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
