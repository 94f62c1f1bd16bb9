#!/bin/bash
# make-pair.sh SRC MIB OUTDIR: two raw GPT disk images OUTDIR/v1.img and
# OUTDIR/v2.img (MIB each) with one ext4 partition (PARTLABEL=root, 4 KiB
# blocks as an OS image has; mkfs picks 1 KiB for small ones), made
# as image pipelines do: each file system made fresh with mkfs.ext4 -d, so
# the same files land in different blocks. v1 holds a copy of SRC; v2 is a
# minor update of it: every 50th file (2 %, as a few upgraded packages'
# files are spread over the tree) rewritten, and a new one added.
set -euo pipefail
src=$1 mib=$2 out=$3
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/v1/etc" "$work/v1/usr"
cp -a "$src" "$work/v1/usr/"
printf 'LABEL=root / ext4 defaults 0 1\n' >"$work/v1/etc/fstab"
cp -a "$work/v1" "$work/v2"
n=0
while IFS= read -r -d '' f; do
	n=$((n + 1))
	[ $((n % 50)) -eq 0 ] || continue
	# An upgrade: the same file with a changed middle and a longer tail.
	{ head -c 2000 "$f"; printf 'v2 %s\n' "$f"; tail -c +2001 "$f"; head -c 3000 "$f"; } >"$f.new"
	mv "$f.new" "$f"
done < <(find "$work/v2/usr" -type f -print0 | sort -z)
changed=$(cd "$work" && { diff -rq v1 v2 || true; } | wc -l)
echo "make-pair: v2 differs from v1 in $changed files (+ one new 300 kB file)" >&2
mkdir -p "$work/v2/usr/newpkg"
head -c 300000 /dev/urandom >"$work/v2/usr/newpkg/blob"
for v in v1 v2; do
	img=$out/$v.img
	rm -f "$img"
	truncate -s "${mib}M" "$img"
	printf 'label: gpt\nstart=2048, type=linux, name=root\n' | sfdisk -q "$img"
	truncate -s "$((mib - 2))M" "$work/$v.fs"
	mkfs.ext4 -q -F -b 4096 -L root -d "$work/$v" "$work/$v.fs"
	dd if="$work/$v.fs" of="$img" bs=1M seek=1 conv=notrunc,sparse status=none
done
