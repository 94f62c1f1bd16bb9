#!/usr/bin/env bash
# make bench: reimage against the tools people use today, on the same image
# and the same loop-device target, in one run. Reports medians of RUNS runs
# as ratios to the raw write limit (dd from /dev/zero with O_DIRECT) and to
# the peers, then the scaling of the zstd rows from 1 to 2 to 4 GiB.
#
#   BENCH_GIB=1          image size (GiB) of the full table
#   SCALE_GIB="1 2 4"    image sizes of the scaling table ("" to skip)
#   RUNS=5               runs per command
#   BENCH_DIR=/var/tmp/reimage-bench    work directory (must not be tmpfs)
#   LOOP_DIO=1           the target loop device does direct I/O to its backing
#                        file, like a real disk; LOOP_DIO=0 makes it copy every
#                        write into the host's page cache first (see below)
#   BASELINE_REV=REV     also time reimage built from git revision REV (a
#                        regression check: each reimage row paired with the
#                        same row of REV, in the same run, as a ratio)
#   BASELINE=PATH        the same with an already built binary
#
# Why direct I/O on the target by default: a loop device without it copies
# each write into the page cache of its backing file on the same 2 CPUs the
# writer runs on, and its "write limit" is then the host's memory until the
# dirty limits are reached (0.28 s for 1 GiB, 4 GB/s), then the disk. With
# direct I/O it behaves like a disk: the limit is the disk's, and a writer's
# CPU does not slow the device down.
#
# The image: GPT; ext4 root (75 %) about 40 % full of real files (copied from
# /usr), ext4 data partition (20 %), free space. Needs root.
#
# "reimage, write stage" is the time reimage itself reports for decompressing,
# checking and writing (from RAM, every check included); "reimage run" is the
# whole command: start-up, staging into RAM, settle, restore and finish too.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin="$here/../../build/reimage"
node="$here/../../node_modules/.bin/node"
runs=${RUNS:-5}
work=${BENCH_DIR:-/var/tmp/reimage-bench}
mkdir -p "$work"
loop=""
cleanup() { if [ -n "$loop" ]; then losetup -d "$loop" 2>/dev/null || true; fi; }
trap cleanup EXIT

make_image() {
	local size=$((gib * 1024)) root data stage want
	root=$((size * 75 / 100))
	data=$((size * 20 / 100))
	rm -f "$img"
	truncate -s "${size}M" "$img"
	printf 'label: gpt\nsize=%sM,type=L,name=root\nsize=%sM,type=L,name=data\n' "$root" "$data" | sfdisk -q "$img"
	stage=$(mktemp -d "$work/stage.XXXXXX")
	mkdir -p "$stage/etc" "$stage/usr"
	printf 'LABEL=root / ext4 defaults 0 1\nLABEL=data /data ext4 defaults 0 2\n' >"$stage/etc/fstab"
	mkdir -p "$stage/data"
	want=$((root * 1024 * 1024 * 40 / 100))
	# Real files (binaries, libraries, text) until the root is about 40 % full.
	# (awk stops early, so find dies of SIGPIPE: that is expected here.)
	set +o pipefail
	find /usr -xdev -type f -size -8M -printf '%s %p\n' 2>/dev/null |
		awk -v want="$want" '{ s += $1; sub(/^[0-9]+ /, ""); print; if (s >= want) exit }' >"$work/files.txt"
	set -o pipefail
	tar -cf - -T "$work/files.txt" 2>/dev/null | tar -C "$stage" -xf -
	mkfs.ext4 -q -F -L root -d "$stage" -E offset=$((1024 * 1024)) "$img" "${root}M"
	rm -rf "$stage"
	local dstart
	dstart=$(sfdisk --json "$img" | grep -o '"start": *[0-9]*' | sed -n 2p | grep -o '[0-9]*$')
	mkfs.ext4 -q -F -L data -E offset=$((dstart * 512)) "$img" "${data}M"
}

declare -A times
# t NAME COMMAND...: one timed run, caches dropped first; reimage's own
# write-stage time (its "in N s" line) is kept too, and its peak RSS.
t() {
	local name=$1 s e out
	shift
	sync
	echo 3 >/proc/sys/vm/drop_caches
	out=$(mktemp)
	s=$(date +%s.%N)
	rm -f "$work/last.rss"
	"$@" >/dev/null 2>"$out"
	e=$(date +%s.%N)
	times[$name]+="$(awk -v a="$s" -v b="$e" 'BEGIN { printf "%.3f", b - a }') "
	local w
	w=$(grep -o 'image to .* in [0-9.]* s' "$out" | grep -o 'in [0-9.]* s' | grep -o '[0-9.]*' || true)
	if [ -n "$w" ]; then
		times["$name, write stage"]+="$w "
		rss["$name"]=$(cat "$work/last.rss")
	fi
	rm -f "$out"
}
declare -A rss
median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
med() { echo "${times[$1]-}" | median; }

# prepare GIB: the image, its bundles and bmaps, and a loop-device target.
prepare() {
	gib=$1
	img="$work/image-${gib}g.raw"
	[ -f "$img" ] || make_image
	raw_bytes=$(stat -c %s "$img")
	echo "image: $img ($raw_bytes bytes), root about 40 % full of real files" >&2
	local codec
	for codec in "$@"; do
		[ "$codec" = "$gib" ] && continue
		# A bundle from an older pack (no block map) is rebuilt.
		# (pack refuses a non-empty --out: the old bundle goes first.)
		if [ ! -f "$work/bundle-$codec-${gib}g/image.bmap" ]; then
			rm -rf "$work/bundle-$codec-${gib}g"
			"$bin" pack "$img" --out "$work/bundle-$codec-${gib}g" --codec "$codec" >/dev/null 2>&1
		fi
	done
	zst="$work/bundle-zstd-${gib}g/image.raw.zst"
	# The classic: an image compressed by single-threaded `bzip2 -9` (not by
	# lbzip2, which pack uses), in a bundle whose manifest is updated to it.
	bzc="$work/bundle-bzip2-classic-${gib}g"
	bz2="$bzc/image.raw.bz2"
	if [ -d "$work/bundle-bzip2-${gib}g" ] && [ ! -f "$bzc/.complete" ]; then
		rm -rf "$bzc"
		cp -a "$work/bundle-bzip2-${gib}g" "$bzc"
		bzip2 -9 -c "$img" >"$bz2"
		"$node" -e 'const fs = require("fs"), c = require("crypto"); const [m, f] = process.argv.slice(1);
			const j = JSON.parse(fs.readFileSync(m, "utf8")); const b = fs.readFileSync(f);
			j.image.size = b.length; j.image.sha256 = c.createHash("sha256").update(b).digest("hex");
			fs.writeFileSync(m, JSON.stringify(j, null, 2) + "\n");' "$bzc/manifest.json" "$bz2"
		touch "$bzc/.complete"
	fi
	[ -f "$work/image-${gib}g.bmap" ] || bmaptool -q create -o "$work/image-${gib}g.bmap" "$img"
	if [ -n "$loop" ]; then losetup -d "$loop"; fi
	rm -f "$work/target.img"
	truncate -s $((raw_bytes + 64 * 1024 * 1024)) "$work/target.img"
	if [ "${LOOP_DIO:-1}" = 1 ]; then
		loop=$(losetup -f --show --direct-io=on "$work/target.img")
	else
		loop=$(losetup -f --show "$work/target.img")
	fi
	loopmode=buffered
	[ "$(cat "/sys/block/${loop#/dev/}/loop/dio" 2>/dev/null)" = 1 ] && loopmode="direct I/O"
	echo "target: $loop ($(blockdev --getsize64 "$loop") bytes, loop device ($loopmode) on $(findmnt -n -o FSTYPE --target "$work"))" >&2
	mib=$((raw_bytes / 1024 / 1024))
}
reimage_run() {
	local b=$1
	shift
	/usr/bin/time -f '%M' -o "$work/last.rss" "$bin" run --bundle "$b" --target "$loop" --no-retain --yes "$@"
}
# The baseline: a binary built from another revision, in a worktree of its own.
baseline=${BASELINE-}
if [ -z "$baseline" ] && [ -n "${BASELINE_REV-}" ]; then
	baseline="$work/reimage-$BASELINE_REV"
	if [ ! -x "$baseline" ]; then
		bwt="$work/baseline-tree"
		git -C "$here/../.." worktree remove --force "$bwt" 2>/dev/null || rm -rf "$bwt"
		git -C "$here/../.." worktree add -f --detach "$bwt" "$BASELINE_REV" >/dev/null
		cp -al "$here/../../node_modules" "$bwt/node_modules" && touch "$bwt/node_modules/.stamp"
		make -C "$bwt" bin >/dev/null
		cp "$bwt/build/reimage" "$baseline"
		git -C "$here/../.." worktree remove --force "$bwt"
	fi
fi
baseline_run() {
	local b=$1 keep=()
	shift
	# A revision from before the retention guard has no --no-retain (and needs none).
	if "$baseline" run --help 2>/dev/null | grep -q -- --no-retain; then keep=(--no-retain); fi
	/usr/bin/time -f '%M' -o "$work/last.rss" "$baseline" run --bundle "$b" --target "$loop" "${keep[@]}" --yes "$@"
}
LIMIT="dd if=/dev/zero oflag=direct (write limit)"
limit_run() { dd if=/dev/zero of="$loop" bs=4M count=$((mib / 4)) oflag=direct; }

# row NAME: | name | median s | x write limit | x PEER |
row() {
	local m
	m=$(med "$1")
	[ -n "$m" ] || return 0
	awk -v n="$1" -v m="$m" -v l="$(med "$LIMIT")" -v c="$(med "$2")" -v r="${rss[$1]-}" 'BEGIN { gsub(/\|/, "\\|", n); printf "| %s | %.2f | %.2f | %.2f | %s |\n", n, m, m / l, m / c, (r == "" ? "" : sprintf("%d", r / 1024)) }'
}

# ---------------------------------------------------------------- full table
gib=${BENCH_GIB:-1}
prepare "$gib" zstd bzip2 gzip xz
Z="$work/bundle-zstd-${gib}g"
for _ in $(seq "$runs"); do
	t "$LIMIT" limit_run
	t "reimage run, zstd, block map (unmapped=zero)" reimage_run "$Z"
	t "reimage run, zstd, block map, unmapped=leave" reimage_run "$Z" --unmapped leave
	t "reimage run, zstd, every byte (unmapped=write)" reimage_run "$Z" --unmapped write
	t "reimage run, zstd, --verify-raw" reimage_run "$Z" --verify-raw
	t "reimage run, bzip2 (bzip2 -9 file)" reimage_run "$bzc"
	if [ -n "$baseline" ]; then
		t "baseline: reimage run, zstd, block map (unmapped=zero)" baseline_run "$Z"
		t "baseline: reimage run, zstd, every byte (unmapped=write)" baseline_run "$Z" --unmapped write
		t "baseline: reimage run, bzip2 (bzip2 -9 file)" baseline_run "$bzc"
	fi
	t "reimage run, gzip" reimage_run "$work/bundle-gzip-${gib}g"
	t "reimage run, xz" reimage_run "$work/bundle-xz-${gib}g"
	t "bzcat | dd bs=1M (the classic, bzip2 -9 file)" sh -c "bzcat '$bz2' | dd of='$loop' bs=1M"
	t "zstd -dc | dd bs=1M" sh -c "zstd -dc '$zst' | dd of='$loop' bs=1M"
	t "zstd -dc | dd bs=4M oflag=direct" sh -c "zstd -dc '$zst' | dd of='$loop' bs=4M iflag=fullblock oflag=direct"
	t "bmaptool copy (zstd, block map)" bmaptool -q copy --bmap "$work/image-${gib}g.bmap" "$zst" "$loop"
	t "bmaptool copy (raw image, block map)" bmaptool -q copy --bmap "$work/image-${gib}g.bmap" "$img" "$loop"
	t "zstd -dc > /dev/null (decompression alone)" sh -c "zstd -dc '$zst' > /dev/null"
done

printf '\n%s GiB image, median of %s runs, same loop device (%s); peak RSS of reimage in MiB\n\n' "$gib" "$runs" "$loopmode"
printf '| command | median s | × write limit | × peer | peak RSS |\n|---|---|---|---|---|\n'
ZDD="zstd -dc | dd bs=4M oflag=direct"
BZ="bzcat | dd bs=1M (the classic, bzip2 -9 file)"
BMT="bmaptool copy (zstd, block map)"
row "$LIMIT" "$LIMIT"
for n in "reimage run, zstd, block map (unmapped=zero)" "reimage run, zstd, block map, unmapped=leave"; do row "$n" "$BMT"; row "$n, write stage" "$BMT"; done
for n in "reimage run, zstd, every byte (unmapped=write)" "reimage run, zstd, --verify-raw"; do row "$n" "$ZDD"; row "$n, write stage" "$ZDD"; done
for n in "reimage run, bzip2 (bzip2 -9 file)" "reimage run, gzip" "reimage run, xz"; do row "$n" "$BZ"; row "$n, write stage" "$BZ"; done
for n in "$BZ" "zstd -dc | dd bs=1M" "$ZDD" "$BMT" "bmaptool copy (raw image, block map)" "zstd -dc > /dev/null (decompression alone)"; do row "$n" "$ZDD"; done
echo
if [ -n "$baseline" ]; then
	printf '\nAgainst the baseline (%s), same run: × baseline below 1.00 is faster\n\n| command | median s | baseline s | × baseline |\n|---|---|---|---|\n' "${BASELINE_REV:-$baseline}"
	for n in "reimage run, zstd, block map (unmapped=zero)" "reimage run, zstd, every byte (unmapped=write)" "reimage run, bzip2 (bzip2 -9 file)"; do
		for k in "$n" "$n, write stage"; do
			m=$(med "$k") bm=$(med "baseline: $k")
			[ -n "$m" ] && [ -n "$bm" ] && awk -v n="$k" -v m="$m" -v b="$bm" 'BEGIN { printf "| %s | %.2f | %.2f | %.2f |\n", n, m, b, m / b }'
		done
	done
	echo
fi
echo "× peer: reimage's zstd block-map rows against bmaptool copy (zstd), its every-byte rows against zstd -dc | dd oflag=direct, its bzip2/gzip/xz rows against bzcat | dd; the peers' rows against zstd -dc | dd oflag=direct."

# ------------------------------------------------------------- scaling table
if [ -n "${SCALE_GIB-1 2 4}" ]; then
	printf '\nScaling (median of %s runs each; × write limit of the same size; loop device: %s; peak RSS of reimage in MiB)\n\n' "$runs" "$loopmode"
	printf '| GiB | write limit s | reimage block map s (×) | … write stage s (×) | reimage every byte s (×) | … write stage s (×) | zstd -dc \\| dd direct s (×) | bmaptool copy s (×) | reimage peak RSS |\n|---|---|---|---|---|---|---|---|---|\n'
	for g in ${SCALE_GIB-1 2 4}; do
		unset times rss
		declare -A times rss
		prepare "$g" zstd
		Z="$work/bundle-zstd-${g}g"
		for _ in $(seq "$runs"); do
			t "$LIMIT" limit_run
			t "map" reimage_run "$Z"
			t "full" reimage_run "$Z" --unmapped write
			t "zdd" sh -c "zstd -dc '$zst' | dd of='$loop' bs=4M iflag=fullblock oflag=direct"
			t "bmt" bmaptool -q copy --bmap "$work/image-${g}g.bmap" "$zst" "$loop"
		done
		awk -v g="$g" -v l="$(med "$LIMIT")" -v a="$(med map)" -v aw="$(med "map, write stage")" -v b="$(med full)" -v bw="$(med "full, write stage")" -v c="$(med zdd)" -v d="$(med bmt)" -v r="${rss[map]-0}" \
			'BEGIN { printf "| %s | %.2f | %.2f (%.2f) | %.2f (%.2f) | %.2f (%.2f) | %.2f (%.2f) | %.2f (%.2f) | %.2f (%.2f) | %d |\n", g, l, a, a / l, aw, aw / l, b, b / l, bw, bw / l, c, c / l, d, d / l, r / 1024 }'
	done
fi
