#!/usr/bin/env bash
# make bench: reimage against the tools people use today, on the same image
# and the same loop-device target, in one run. Reports medians of RUNS runs
# as ratios to the raw write limit (dd from /dev/zero with O_DIRECT).
#
#   BENCH_GIB=1   image size (GiB)      RUNS=3   runs per command
#   BENCH_DIR=/var/tmp/reimage-bench    work directory (must not be tmpfs)
#
# The image: GPT; ext4 root (75 %) about 40 % full of real files (copied from
# /usr), ext4 data partition (20 %), free space. Needs root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin="$here/../../build/reimage"
gib=${BENCH_GIB:-1}
runs=${RUNS:-3}
work=${BENCH_DIR:-/var/tmp/reimage-bench}
mkdir -p "$work"
img="$work/image-${gib}g.raw"
target_file="$work/target.img"
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

[ -f "$img" ] || make_image
raw_bytes=$(stat -c %s "$img")
echo "image: $img ($raw_bytes bytes), root about 40 % full of real files"

# Bundles and the peers' inputs, made once.
for codec in zstd bzip2 gzip xz; do
	[ -f "$work/bundle-$codec-${gib}g/manifest.json" ] || "$bin" pack "$img" --out "$work/bundle-$codec-${gib}g" --codec "$codec" >/dev/null 2>&1
done
zst="$work/bundle-zstd-${gib}g/image.raw.zst"
bz2="$work/bundle-bzip2-${gib}g/image.raw.bz2"
[ -f "$work/image-${gib}g.bmap" ] || bmaptool -q create -o "$work/image-${gib}g.bmap" "$img"

truncate -s $((raw_bytes + 64 * 1024 * 1024)) "$target_file"
loop=$(losetup -f --show "$target_file")
echo "target: $loop ($(blockdev --getsize64 "$loop") bytes, loop device on $(findmnt -n -o FSTYPE --target "$work"))"

declare -A times
t() { # name command...
	local name=$1 s e
	shift
	sync
	echo 3 >/proc/sys/vm/drop_caches
	s=$(date +%s.%N)
	"$@" >/dev/null 2>&1
	e=$(date +%s.%N)
	times[$name]+="$(awk -v a="$s" -v b="$e" 'BEGIN { printf "%.3f", b - a }') "
}
mib=$((raw_bytes / 1024 / 1024))
reimage_run() {
	local b=$1
	shift
	"$bin" run --bundle "$b" --target "$loop" --yes "$@"
}
for _ in $(seq "$runs"); do
	t "dd if=/dev/zero oflag=direct (write limit)" dd if=/dev/zero of="$loop" bs=4M count=$((mib / 4)) oflag=direct
	t "reimage run, zstd bundle" reimage_run "$work/bundle-zstd-${gib}g"
	t "reimage run, zstd bundle, --verify-raw" reimage_run "$work/bundle-zstd-${gib}g" --verify-raw
	t "reimage run, bzip2 bundle" reimage_run "$work/bundle-bzip2-${gib}g"
	t "reimage run, gzip bundle" reimage_run "$work/bundle-gzip-${gib}g"
	t "reimage run, xz bundle" reimage_run "$work/bundle-xz-${gib}g"
	t "bzcat | dd bs=1M (the classic)" sh -c "bzcat '$bz2' | dd of='$loop' bs=1M"
	t "zstd -dc | dd bs=1M" sh -c "zstd -dc '$zst' | dd of='$loop' bs=1M"
	t "zstd -dc | dd bs=4M oflag=direct" sh -c "zstd -dc '$zst' | dd of='$loop' bs=4M iflag=fullblock oflag=direct"
	t "bmaptool copy (zstd, block map)" bmaptool -q copy --bmap "$work/image-${gib}g.bmap" "$zst" "$loop"
	t "zstd -dc > /dev/null (decompression alone)" sh -c "zstd -dc '$zst' > /dev/null"
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
limit=$(echo "${times["dd if=/dev/zero oflag=direct (write limit)"]}" | median)
classic=$(echo "${times["bzcat | dd bs=1M (the classic)"]}" | median)
printf '\n%s GiB image, median of %s runs, same loop device\n\n' "$gib" "$runs"
printf '| command | median s | × write limit | × bzcat\\|dd |\n|---|---|---|---|\n'
for name in "dd if=/dev/zero oflag=direct (write limit)" "reimage run, zstd bundle" "reimage run, zstd bundle, --verify-raw" "reimage run, bzip2 bundle" "reimage run, gzip bundle" "reimage run, xz bundle" \
	"bzcat | dd bs=1M (the classic)" "zstd -dc | dd bs=1M" "zstd -dc | dd bs=4M oflag=direct" "bmaptool copy (zstd, block map)" "zstd -dc > /dev/null (decompression alone)"; do
	m=$(echo "${times[$name]}" | median)
	awk -v n="$name" -v m="$m" -v l="$limit" -v c="$classic" 'BEGIN { gsub(/\|/, "\\|", n); printf "| %s | %.2f | %.2f | %.2f |\n", n, m, m / l, m / c }'
done
