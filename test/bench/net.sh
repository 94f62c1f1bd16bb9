#!/usr/bin/env bash
# make bench, network row: reimage's HTTP download of a bundle (`reimage
# fetch`: resumable, hashed while it comes, checked against the manifest)
# against `curl -o` of the same files from the same nginx on the loopback, in
# the same run, as a ratio (median of RUNS runs each, alternating).
#
#   BENCH_DIR=/var/tmp/reimage-bench   where bench.sh left its bundles
#   BENCH_GIB=1                         which image size's zstd bundle
#   RUNS=5                              runs per command
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin="$here/../../build/reimage"
runs=${RUNS:-5}
work=${BENCH_DIR:-/var/tmp/reimage-bench}
bundle="$work/bundle-zstd-${BENCH_GIB:-1}g"
[ -f "$bundle/manifest.json" ] || {
	echo "net.sh: no bundle at $bundle: run test/bench/bench.sh first (make bench does)" >&2
	exit 2
}
d=$(mktemp -d "$work/net.XXXXXX")
pid=""
stop() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
	rm -rf "$d"
}
trap stop EXIT
port=$((20000 + RANDOM % 20000))
mkdir -p "$d/www"
ln -s "$bundle" "$d/www/b"
cat >"$d/nginx.conf" <<EOF
worker_processes 1;
user root;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $d/body; proxy_temp_path $d/proxy; fastcgi_temp_path $d/fcgi; uwsgi_temp_path $d/uwsgi; scgi_temp_path $d/scgi;
  default_type application/octet-stream;
  server { listen 127.0.0.1:$port; root $d/www; }
}
EOF
nginx -p "$d" -c "$d/nginx.conf" -g 'daemon off;' &
pid=$!
for _ in $(seq 50); do
	if curl -s -o /dev/null "http://127.0.0.1:$port/b/manifest.json"; then break; fi
	sleep 0.1
done
url="http://127.0.0.1:$port/b/"
files=$(cd "$bundle" && find . -maxdepth 1 -type f ! -name '.*' -printf '%f\n' | sort)
bytes=$(cd "$bundle" && find . -maxdepth 1 -type f ! -name '.*' -printf '%s\n' | awk '{ s += $1 } END { print s }')
# The files come from the page cache for both (read once before timing).
cat "$bundle"/* >/dev/null
fetch_run() {
	rm -rf "$d/out"
	"$bin" fetch "$url" --out "$d/out" >/dev/null 2>&1
}
curl_run() {
	rm -rf "$d/out"
	mkdir "$d/out"
	local f
	for f in $files; do curl -s -f -o "$d/out/$f" "$url$f"; done
	sync -f "$d/out"
}
tr=""
tc=""
now() { date +%s.%N; }
for _ in $(seq "$runs"); do
	s=$(now)
	fetch_run
	e=$(now)
	tr+="$(awk -v a="$s" -v b="$e" 'BEGIN { printf "%.3f", b - a }') "
	s=$(now)
	curl_run
	e=$(now)
	tc+="$(awk -v a="$s" -v b="$e" 'BEGIN { printf "%.3f", b - a }') "
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
r=$(echo "$tr" | median)
c=$(echo "$tc" | median)
printf '\nNetwork: the %s bundle (%s bytes, %s) from nginx on 127.0.0.1, median of %s runs\n\n' "$(basename "$bundle")" "$bytes" "$(echo "$files" | tr '\n' ' ')" "$runs"
printf '| command | median s | MiB/s | × curl |\n|---|---|---|---|\n'
awk -v n="reimage fetch URL --out DIR (hashed, checked, resumable)" -v m="$r" -v c="$c" -v b="$bytes" 'BEGIN { printf "| %s | %.2f | %.0f | %.2f |\n", n, m, b / m / 1048576, m / c }'
awk -v n="curl -o, each file (no check)" -v m="$c" -v b="$bytes" 'BEGIN { printf "| %s | %.2f | %.0f | 1.00 |\n", n, m, b / m / 1048576 }'
