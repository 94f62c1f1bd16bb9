import { EventEmitter } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { catchSignals, checkpoint, Interrupted } from '../../../src/util/interrupt.ts';

test('the first signal aborts, a second is only logged, dispose removes the handlers', () => {
	const proc = new EventEmitter();
	const warned: string[] = [];
	const i = catchSignals((l) => warned.push(l), proc as unknown as NodeJS.Process);
	assert.not.ok(i.signal.aborted);
	checkpoint(i.signal);
	proc.emit('SIGTERM', 'SIGTERM');
	assert.ok(i.signal.aborted);
	assert.throws(
		() => checkpoint(i.signal),
		(e: unknown) => e instanceof Interrupted && e.code === 7 && e.message === 'interrupted by SIGTERM',
	);
	proc.emit('SIGINT', 'SIGINT');
	assert.is(warned.length, 2);
	assert.match(warned[1]!, /already stopping/);
	i.dispose();
	for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) assert.is(proc.listenerCount(s), 0);
});

test.run();
