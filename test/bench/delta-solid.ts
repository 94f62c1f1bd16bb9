// What a delta file per earlier release would move, against what the casync
// store moves, for one v1→v2 pair of chunked bundles: the chunks v2's index
// names that v1's does not, as stored (one zstd frame each, what a seeded
// fetch downloads) and as one solid zstd -19 stream; and v2's plain index as
// zstd -19 against v1's (--patch-from) and alone (the .caibx.zst a fetch
// downloads). Prints each as a share of v2's compressed image.
//   node_modules/.bin/node test/bench/delta-solid.ts V1_BUNDLE V2_BUNDLE
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { idHex, indexCount, chunkSize, parseIndex, type ChunkIndex } from '../../src/chunks/caibx.ts';
import { chunkPath, decompressChunk } from '../../src/chunks/store.ts';

const [v1, v2] = process.argv.slice(2);
if (!v1 || !v2) throw new Error('usage: delta-solid.ts V1_BUNDLE V2_BUNDLE');
type M = { image: { size: number }; chunks: { index: { file: string }; store?: string } };
const manifest = (b: string) => JSON.parse(readFileSync(join(b, 'manifest.json'), 'utf8')) as M;
const index = (b: string): ChunkIndex => {
	const x = parseIndex(readFileSync(join(b, manifest(b).chunks.index.file)));
	if (typeof x === 'string') throw new Error(`${b}: ${x}`);
	return x;
};
const zstd = (args: string[], input?: Buffer) => {
	const r = spawnSync('zstd', ['-q', '-c', ...args], { input, maxBuffer: 2 ** 31 });
	if (r.status !== 0) throw new Error(`zstd ${args.join(' ')}: ${r.stderr}`);
	return r.stdout.length;
};
const a = index(v1);
const b = index(v2);
const have = new Set(Array.from({ length: indexCount(a) }, (_, i) => idHex(a, i)));
const store = join(v2, manifest(v2).chunks.store ?? 'chunks');
const parts: Buffer[] = [];
let stored = 0;
for (let i = 0; i < indexCount(b); i++) {
	const id = idHex(b, i);
	if (have.has(id)) continue;
	have.add(id);
	const s = readFileSync(join(store, chunkPath(id)));
	stored += s.length;
	parts.push(decompressChunk(s, chunkSize(b, i)) ?? Buffer.alloc(0));
}
const raw = Buffer.concat(parts);
const image = manifest(v2).image.size;
const pct = (n: number) => `${n} B = ${((100 * n) / image).toFixed(2)} %`;
const i1 = join(v1, manifest(v1).chunks.index.file);
const i2 = join(v2, manifest(v2).chunks.index.file);
console.log(`compressed v2 image ${image} B; ${parts.length} chunks v1 lacks, ${raw.length} B raw`);
console.log(`as stored (a seeded fetch): ${pct(stored)}`);
console.log(`solid, zstd -19 --long=27: ${pct(zstd(['-19', '--long=27', '-T0'], raw))}`);
console.log(
	`v2 index alone, zstd -19: ${pct(zstd(['-19', i2]))}; against v1's (--patch-from): ${pct(zstd(['-19', '--long=27', `--patch-from=${i1}`, i2]))} (plain ${statSync(i2).size} B)`,
);
