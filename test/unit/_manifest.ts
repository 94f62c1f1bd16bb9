// A small valid manifest (as parsed JSON) that unit tests edit: one ext4 root partition.
export const good = () => ({
	format: 'reimage-bundle/1',
	created: '2026-01-01T00:00:00Z',
	tool: 'reimage 0.1.0',
	image: { file: 'image.raw.zst', codec: 'zstd', size: 10, sha256: 'a'.repeat(64) },
	raw: { size: 1048576, sha256: 'b'.repeat(64) },
	table: {
		label: 'gpt',
		id: 'x',
		sectorSize: 512,
		partitions: [{ number: 1, start: 2048, size: 100, type: 'L', fs: { type: 'ext4', label: 'root' } }],
	},
	mounts: [{ path: '/', spec: { kind: 'LABEL', value: 'root' }, partition: 1, fstype: 'ext4' }],
});
