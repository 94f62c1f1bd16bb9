import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tableProblem } from '../../../src/image/bounds.ts';

// The MBR fixture's layout: 1 primary, 2 extended to the end, logicals 5 and 6 inside it.
const dos = (over: Partial<Record<number, { start: number; size: number }>> = {}) => ({
	label: 'dos',
	sectorSize: 512,
	partitions: [
		{ number: 1, start: 2048, size: 81920, type: '83' },
		{ number: 2, start: 83968, size: 79872, type: '5' },
		{ number: 5, start: 86016, size: 32768, type: '83' },
		{ number: 6, start: 120832, size: 43008, type: '83' },
	].map((p) => ({ ...p, ...over[p.number] })),
});
const DISK = 163840 * 512;

test('tableProblem: a table inside its image or disk passes; GPT and 4Kn sectors counted by the table', () => {
	assert.is(tableProblem(dos(), DISK, 'the image'), undefined);
	const gpt = { label: 'gpt', sectorSize: 4096, partitions: [{ number: 1, start: 256, size: 1000, type: 'L' }] };
	assert.is(tableProblem(gpt, 1256 * 4096, '/dev/sda'), undefined);
	assert.match(
		tableProblem(gpt, 1256 * 512 * 8 - 1, '/dev/sda') ?? '',
		/partition 1 of the image's table ends at byte 5144576, past the end of \/dev\/sda \(5144575 bytes\)/,
	);
});

test('tableProblem: past the disk (what run checks before writing), a logical outside its extended partition, overlaps', () => {
	assert.match(
		tableProblem(dos({ 6: { start: 120832, size: 66624 } }), DISK, '/dev/loop0') ?? '',
		/partition 6 .* past the end of \/dev\/loop0/,
	);
	assert.match(
		tableProblem(dos({ 2: { start: 83968, size: 79871 } }), DISK, 'the image') ?? '',
		/logical partition 6 .* lies outside extended partition 2 \(sectors 83968-163838\)/,
	);
	assert.match(
		tableProblem(dos({ 5: { start: 86016, size: 40000 } }), DISK, 'the image') ?? '',
		/partitions 5 and 6 of the image's table overlap \(sectors 120832-126015\)/,
	);
	assert.match(
		tableProblem({ ...dos(), partitions: dos().partitions.filter((p) => p.number !== 2) }, DISK, 'the image') ?? '',
		/lies outside any extended partition/,
	);
});

test.run();
