// One run at a time, with real processes: many node processes import the lock
// module and race for one lock at the same instant. A stale lock (its pid is
// dead) must be taken over by exactly one of them; the rest are told who holds it.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO } from '../helpers/fixtures.ts';
import { tmpDir } from '../helpers/sys.ts';

const t = suite('lock: many processes');
const LOCK_TS = path.join(REPO, 'src/stages/lock.ts');
const RACERS = 20;

// Each racer waits for the start file, takes the lock, and holds it until the
// done file exists (made once every racer has its answer), so all the others
// see it alive, however slowly they start.
const racer = `
const [lock, go, done] = process.argv.slice(1);
const { existsSync } = await import('node:fs');
const { acquireLock } = await import(${JSON.stringify(LOCK_TS)});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
process.stdout.write('READY\\n');
while (!existsSync(go)) await sleep(1);
try {
  const release = await acquireLock(lock);
  process.stdout.write('WON\\n');
  while (!existsSync(done)) await sleep(1);
  await release();
} catch (e) {
  process.stdout.write('LOST ' + e.code + ' ' + e.message + '\\n');
}
`;

/** A pid that certainly belonged to a process that has exited. */
function deadPid(): number {
	const r = spawnSync('true');
	if (!r.pid) throw new Error('could not start true');
	return r.pid;
}

type Outcome = { won: number; lost: string[] };

async function race(lock: string): Promise<Outcome> {
	const go = `${lock}.go`;
	const done = `${lock}.done`;
	const children = Array.from({ length: RACERS }, () =>
		spawn(process.execPath, ['--input-type=module', '-e', racer, lock, go, done], { stdio: ['ignore', 'pipe', 'pipe'] }),
	);
	const outputs = children.map((c) => {
		let out = '';
		let err = '';
		let exited = false;
		c.stdout!.on('data', (d: Buffer) => void (out += d.toString()));
		c.stderr!.on('data', (d: Buffer) => void (err += d.toString()));
		return {
			ready: () => exited || out.includes('READY'),
			answered: () => exited || /WON|LOST/.test(out),
			ended: new Promise<string>((r) =>
				c.on('exit', () => {
					exited = true;
					r(out + err);
				}),
			),
		};
	});
	const until = async (cond: () => boolean) => {
		while (!cond()) await new Promise((r) => setTimeout(r, 20));
	};
	// Start them all at once, when every one has loaded the module.
	await until(() => outputs.every((o) => o.ready()));
	fs.writeFileSync(go, '');
	// The winner lets go only once every racer has taken the lock or been refused.
	await until(() => outputs.every((o) => o.answered()));
	fs.writeFileSync(done, '');
	const texts = await Promise.all(outputs.map((o) => o.ended));
	fs.rmSync(go);
	fs.rmSync(done);
	return { won: texts.filter((x) => x.includes('WON')).length, lost: texts.filter((x) => !x.includes('WON')) };
}

for (const [name, content] of [
	['a stale lock of a dead pid', () => `${deadPid()} 0123456789abcdef\n`],
	['a stale lock written by an older reimage (pid only)', () => `${deadPid()}\n`],
	['an empty lock left by an older reimage that died while writing it', () => ''],
	['no lock at all', undefined],
] as const) {
	t(`${RACERS} processes race for ${name}: exactly one takes it, the others are refused naming it (exit 4)`, async () => {
		const dir = tmpDir('reimage-lockrace-');
		for (let round = 0; round < 2; round++) {
			const lock = path.join(dir, `lock${round}`);
			if (content) fs.writeFileSync(lock, content());
			const r = await race(lock);
			assert.is(r.won, 1, `round ${round}: ${r.won} processes took the lock:\n${r.lost.slice(0, 3).join('\n')}`);
			for (const x of r.lost) assert.match(x, /^READY\nLOST 4 another reimage \(pid \d+\) is running/, x);
			assert.not.ok(fs.existsSync(lock), 'the winner released the lock');
			assert.equal(
				fs.readdirSync(dir).filter((f) => f.startsWith(`lock${round}.`)),
				[],
				'no claim or temp file left behind',
			);
		}
	});
}

t.run();
