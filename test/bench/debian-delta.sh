#!/bin/bash
# debian-delta.sh [WORK] [MIB]: the issue-13 proof on two real Debian system
# images. v1 is a debootstrap'd Debian 12 (minbase) root file system; v2 is v1
# after a minor update made the way a distribution makes one: apt in a chroot
# upgrades from bookworm-updates and bookworm-security (SUITES) and adds a handful of
# packages (PKGS). Each becomes a GPT disk image of MIB MiB with one fresh
# ext4 (as image pipelines build them: the same files land in other blocks),
# is packed with --chunks (default 1K:4K:16K), and v2's bundle is served by
# nginx. A machine holding v1 runs `reimage fetch URL --seed v1.img`; the
# script prints the bytes nginx sent for chunks (and for the index) ÷ the
# compressed v2 image, and the same for v2 packed --delta-from v1 fetched by
# a machine that kept v1's index; then a run killed half-way (slowed link)
# and run again: no chunk the first run received may be asked for in the second
# (only the at most --jobs answers in flight at the kill come again). Needs root (chroot, mount), debootstrap, nginx, zstd.
#   ROOTFS=DIR reuses a Debian root file system (helper `boot`'s cached
#   debootstrap); without it one is debootstrapped once into WORK/rootfs.
set -euo pipefail
work=${1:-/tmp/reimage-debian-delta}
mib=${2:-1024}
pkgs=${PKGS:-less nano xz-utils bzip2 file}
# The update streams v2 takes its upgrades from: both by default (a point
# update), SUITES=bookworm-security for a security-only update.
suites=${SUITES:-bookworm-updates bookworm-security}
mirror=${MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")" && pwd)
bin=${REIMAGE_BIN:-$here/../../build/reimage}
node=$here/../../node_modules/.bin/node
mkdir -p "$work"
rootfs=${ROOTFS:-$work/rootfs}
if [ ! -x "$rootfs/usr/bin/apt-get" ]; then
	debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log"
fi

# v2: v1 + the upgrades a minor update brings + a handful of packages. apt's
# package lists are removed afterwards, as image pipelines do (debootstrap
# leaves none in v1): left in, they are 60-85 MB of v2 that no v1 holds and no
# machine needs, and they made most of the "update" this script measured before.
if [ ! -f "$work/v2.done" ]; then
	rm -rf "$work/v1" "$work/v2"
	cp -a "$rootfs" "$work/v1"
	cp -a "$rootfs" "$work/v2"
	{
		printf 'deb %s bookworm main\n' "$mirror"
		for s in $suites; do
			case $s in
			*-security) printf 'deb http://deb.debian.org/debian-security %s main\n' "$s" ;;
			*) printf 'deb %s %s main\n' "$mirror" "$s" ;;
			esac
		done
	} >"$work/v2/etc/apt/sources.list"
	cp /etc/resolv.conf "$work/v2/etc/resolv.conf"
	mount -t proc proc "$work/v2/proc"
	trap 'umount "$work/v2/proc" 2>/dev/null || true' EXIT
	chroot "$work/v2" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C sh -c \
		"apt-get -q update && apt-get -qy upgrade && apt-get -qy install --no-install-recommends $pkgs && apt-get clean && rm -rf /var/lib/apt/lists/*" >"$work/apt.log"
	umount "$work/v2/proc"
	trap - EXIT
	grep -cE '^(Unpacking|Setting up)' "$work/apt.log" >/dev/null || true
	touch "$work/v2.done"
fi
upgraded=$(grep -c '^Unpacking .*(.*) over (' "$work/apt.log" || true)
added=$(grep -c '^Unpacking ' "$work/apt.log" || true)
echo "v2 = v1 + $((added - upgraded)) packages added, $upgraded upgraded ($(cd "$work" && { diff -rq v1 v2 2>/dev/null || true; } | wc -l) paths differ)"

# The floor: v2's files that v1 lacks or has otherwise, as one solid tar | zstd -19
# (no delta method moves less than the update's own new bytes, compressed well).
floor=$(cd "$work/v2" && find . -type f -print0 | while IFS= read -r -d '' f; do cmp -s "$f" "../v1/$f" || printf '%s\0' "$f"; done |
	tar --null -T - -cf - 2>/dev/null | zstd -19 -T0 -q -c | wc -c)
echo "floor: v2's changed and new files, tar | zstd -19: $floor B"

for v in v1 v2; do
	img=$work/$v.img
	if [ ! -f "$img" ]; then
		printf 'LABEL=root / ext4 defaults 0 1\n' >"$work/$v/etc/fstab"
		truncate -s "${mib}M" "$img.tmp"
		printf 'label: gpt\nstart=2048, type=linux, name=root\n' | sfdisk -q "$img.tmp"
		rm -f "$work/$v.fs"
		truncate -s "$((mib - 2))M" "$work/$v.fs"
		mkfs.ext4 -q -F -b 4096 -L root -d "$work/$v" "$work/$v.fs"
		dd if="$work/$v.fs" of="$img.tmp" bs=1M seek=1 conv=notrunc,sparse status=none
		rm -f "$work/$v.fs"
		mv "$img.tmp" "$img"
	fi
	if [ ! -f "$work/www/$v/manifest.json" ]; then
		rm -rf "$work/www/$v"
		mkdir -p "$work/www"
		"$bin" pack "$img" --out "$work/www/$v" --chunks --mount PARTLABEL=root:/ >"$work/pack-$v.log" 2>&1
	fi
done

# nginx on a free port, logging the body bytes of every answer.
ng=$work/nginx
rm -rf "$ng" && mkdir -p "$ng"
port=$("$node" -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
cat >"$ng/nginx.conf" <<EOF
worker_processes 1;
pid $ng/nginx.pid;
error_log $ng/error.log;
events {}
http {
  log_format bytes '\$request_method \$uri \$status \$body_bytes_sent';
  access_log $ng/access.log bytes;
  client_body_temp_path $ng; proxy_temp_path $ng; fastcgi_temp_path $ng; uwsgi_temp_path $ng; scgi_temp_path $ng;
  server {
    listen 127.0.0.1:$port;
    root $work/www;
    location /slow/ { alias $work/www/; limit_rate ${SLOW_RATE:-1m}; }
  }
}
EOF
nginx -p "$ng" -c "$ng/nginx.conf" -g 'daemon off;' &
ngpid=$!
trap 'kill $ngpid 2>/dev/null || true' EXIT
sleep 0.5
sum() { awk -v re="$1" '$2 ~ re { n += $4 } END { print n + 0 }' "$ng/access.log"; }
zst=$("$node" -e "console.log(JSON.parse(require('fs').readFileSync('$work/www/v2/manifest.json','utf8')).image.size)")
raw=$(stat -c %s "$work/v2.img")

# One whole fetch, v1's disk as seed.
rm -rf "$work/got" && : >"$ng/access.log"
t0=$(date +%s.%N)
"$bin" fetch "http://127.0.0.1:$port/v2/" --out "$work/got" --seed "$work/v1.img" >"$work/fetch.log" 2>&1
t=$(echo "$(date +%s.%N) - $t0" | bc)
cmp "$work/got/assembled.img" "$work/v2.img"
chunks=$(sum '^/v2/chunks/')
index=$(sum '^/v2/image\.caibx')
all=$(sum '^/v2/')
pct() { echo "scale=2; 100 * $1 / $2" | bc; }
echo "compressed v2 image: $zst B (raw $raw B); the floor is $(pct "$floor" "$zst") % of it"
echo "v1→v2 fetch, v1 disk as seed: chunks $chunks B = $(pct "$chunks" "$zst") %, index $index B = $(pct "$index" "$zst") %, everything $all B = $(pct "$all" "$zst") % of the compressed image ($t s)"

# The same v2 with a delta file for machines on v1 (pack --delta-from), fetched
# by a machine that kept v1's index (--seed-index): the bytes nginx sent.
if [ ! -f "$work/www/v2d/manifest.json" ]; then
	rm -rf "$work/www/v2d"
	"$bin" pack "$work/v2.img" --out "$work/www/v2d" --chunks --delta-from "$work/www/v1" --mount PARTLABEL=root:/ >"$work/pack-v2d.log" 2>&1
fi
rm -rf "$work/got-d" && : >"$ng/access.log"
t0=$(date +%s.%N)
"$bin" fetch "http://127.0.0.1:$port/v2d/" --out "$work/got-d" --seed-index "$work/www/v1/image.caibx:$work/v1.img" >"$work/fetch-d.log" 2>&1
td=$(echo "$(date +%s.%N) - $t0" | bc)
cmp "$work/got-d/assembled.img" "$work/v2.img" && rm -rf "$work/got-d"
dall=$(sum '^/v2d/')
echo "v1→v2 fetch through the delta, v1's index kept: $(sum '\.rdelta$') B delta, everything $dall B = $(pct "$dall" "$zst") % of the compressed image ($td s)"

# On a slowed link (nginx limit_rate SLOW_RATE, which limits each connection):
# the whole compressed image with curl, against the seeded fetch (the v1 disk
# chunked on the fly, then the missing chunks) over one connection too
# (--jobs 1: the link's whole rate, as on a real slow line), each timed from
# start to a checked result.
file=$("$node" -e "console.log(JSON.parse(require('fs').readFileSync('$work/www/v2/manifest.json','utf8')).image.file)")
t0=$(date +%s.%N)
curl -sf -o "$work/full.zst" "http://127.0.0.1:$port/slow/v2/$file"
tfull=$(echo "$(date +%s.%N) - $t0" | bc)
rm -f "$work/full.zst" && rm -rf "$work/got3"
t0=$(date +%s.%N)
"$bin" fetch "http://127.0.0.1:$port/slow/v2/" --out "$work/got3" --seed "$work/v1.img" --jobs 1 >/dev/null 2>&1
tseed=$(echo "$(date +%s.%N) - $t0" | bc)
cmp "$work/got3/assembled.img" "$work/v2.img" && rm -rf "$work/got3"
rm -rf "$work/got4"
t0=$(date +%s.%N)
"$bin" fetch "http://127.0.0.1:$port/slow/v2d/" --out "$work/got4" --seed-index "$work/www/v1/image.caibx:$work/v1.img" --jobs 1 >/dev/null 2>&1
tdelta=$(echo "$(date +%s.%N) - $t0" | bc)
cmp "$work/got4/assembled.img" "$work/v2.img" && rm -rf "$work/got4"
echo "at limit_rate ${SLOW_RATE:-1m}: curl of the compressed image $tfull s; reimage fetch --seed v1.img --jobs 1 $tseed s; through the delta (v1's index kept) $tdelta s"

# Killed half-way on a slowed link, then run again.
rm -rf "$work/got2" && : >"$ng/access.log"
# Killed (SIGKILL) once KILL_AT chunk answers have started on the slowed link.
"$bin" fetch "http://127.0.0.1:$port/slow/v2/" --out "$work/got2" --seed "$work/v1.img" >/dev/null 2>&1 &
fpid=$!
while kill -0 $fpid 2>/dev/null && [ "$(grep -c '/chunks/' "$ng/access.log" || true)" -lt "${KILL_AT:-200}" ]; do sleep 0.2; done
kill -KILL $fpid 2>/dev/null || true
wait $fpid 2>/dev/null || true
cp "$ng/access.log" "$ng/first.log" && : >"$ng/access.log"
"$bin" fetch "http://127.0.0.1:$port/v2/" --out "$work/got2" --seed "$work/v1.img" >"$work/fetch2.log" 2>&1
cmp "$work/got2/assembled.img" "$work/v2.img"
whole=$(awk '$2 ~ /\/chunks\// && $3 == 200 { print $2 }' "$ng/first.log" | sed 's|.*/chunks/||' | sort -u)
again=$(awk '$2 ~ /\/chunks\// { print $2 }' "$ng/access.log" | sed 's|.*/chunks/||' | sort -u)
twice=$(comm -12 <(echo "$whole") <(echo "$again") | grep -c . || true)
first=$(awk '$2 ~ /\/chunks\// { n += $4 } END { print n + 0 }' "$ng/first.log")
second=$(sum '^/v2/chunks/')
echo "killed after ${KILL_AT:-200} chunk answers: $first chunk bytes, $(echo "$whole" | grep -c . || true) chunks whole; the rerun: $second chunk bytes ($((first + second - chunks)) B more than one whole fetch); chunks nginx finished before the kill and the rerun asked for again: $twice"
# Once more, all in place: nothing moves.
: >"$ng/access.log"
"$bin" fetch "http://127.0.0.1:$port/v2/" --out "$work/got2" --seed "$work/v1.img" >/dev/null 2>&1
echo "a third run: $(sum '^/v2/chunks/') chunk bytes"
# nginx logs an answer finished when its last bytes are in the kernel's
# socket buffer: at most --jobs (8) of them can be in flight to a fetch that
# is killed, and those must come again. Any more would be a chunk fetched
# twice although it was on hand.
[ "$twice" -le 8 ]
