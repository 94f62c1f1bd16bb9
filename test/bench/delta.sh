#!/bin/bash
# delta.sh [SRC] [MIB] [WORK]: what a machine holding v1 must download for v2.
# Builds two ext4 disk images of MIB MiB from SRC (test/bench/make-pair.sh:
# each file system made fresh, v2 a minor update), packs v2 with --chunks at
# our default chunk sizes and at casync's, and asks `reimage assemble
# --dry-run` what is missing given v1 — chunked whole (a disk as seed) or by
# its own index (the index reimage keeps of what it wrote). Prints one row per
# chunk size: the compressed chunk bytes to fetch ÷ the compressed v2 image.
set -euo pipefail
src=${1:-/usr/lib/x86_64-linux-gnu}
mib=${2:-1024}
work=${3:-/tmp/reimage-delta-bench}
here=$(cd "$(dirname "$0")" && pwd)
bin=${REIMAGE_BIN:-$here/../../build/reimage}
mkdir -p "$work"
if [ ! -f "$work/v2.img" ]; then "$here/make-pair.sh" "$src" "$mib" "$work"; fi
field() { node_modules/.bin/node -e "const j=JSON.parse(require('fs').readFileSync(0,'utf8'));console.log($1)"; }
echo '| chunk sizes | chunks | index ÷ raw image | pack s | seed | to fetch | compressed v2 image | fetch ÷ image | fetch + index (zstd -19) ÷ image | plan s |'
echo '|---|---|---|---|---|---|---|---|---|---|'
for sizes in ${SIZES:-4K:4K:4K 1K:4K:16K 16K:64K:256K}; do
	for v in v1 v2; do
		b=$work/$v-${sizes//:/-}
		if [ ! -f "$b/manifest.json" ]; then
			t0=$(date +%s.%N)
			"$bin" pack "$work/$v.img" --out "$b" --chunks --chunk-size "$sizes" --mount PARTLABEL=root:/ >"$b.log" 2>&1
			echo "$(date +%s.%N) - $t0" | bc >"$b.seconds"
		fi
	done
	b=$work/v2-${sizes//:/-}
	zst=$(field 'j.image.size' <"$b/manifest.json")
	idx=$(field 'j.chunks.index.size' <"$b/manifest.json")
	zidx=$(zstd -19 -c "$b/image.caibx" | wc -c)
	for seed in disk index; do
		if [ $seed = disk ]; then args=(--seed "$work/v1.img"); else args=(--seed-index "$work/v1-${sizes//:/-}/image.caibx:$work/v1.img"); fi
		t0=$(date +%s.%N)
		"$bin" assemble --bundle "$b" --out "$work/out.img" "${args[@]}" --dry-run --json >"$work/plan.json" 2>/dev/null
		t=$(echo "$(date +%s.%N) - $t0" | bc)
		wire=$(field 'j.missing.wire' <"$work/plan.json")
		n=$(field 'j.chunks' <"$work/plan.json")
		printf '| %s | %s | %s %% | %.0f | v1 %s | %s B | %s B | **%s %%** | %s %% | %.1f |\n' "$sizes" "$n" \
			"$(echo "scale=3; 100 * $idx / $(stat -c %s "$work/v2.img")" | bc)" "$(cat "$b.seconds")" "$seed" "$wire" "$zst" \
			"$(echo "scale=1; 100 * $wire / $zst" | bc)" "$(echo "scale=1; 100 * ($wire + $zidx) / $zst" | bc)" "$t"
	done
done
