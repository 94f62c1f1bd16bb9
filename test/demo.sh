#!/usr/bin/env bash
# The demo: generate an old kiosk disk and a new OS image, pack the image into a
# bundle, reimage a loop device holding the old disk, and print the report.
# Needs root (loop devices, mounts). Uses build/reimage (make demo builds it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin="$here/../build/reimage"
work=$(mktemp -d /tmp/reimage-demo.XXXXXX)
loop=""
cleanup() {
	if [ -n "$loop" ]; then losetup -d "$loop" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

"$here/fixtures/make-disks.sh" "$work"
echo "== pack the new image into a bundle"
"$bin" pack "$work/new.img" --out "$work/bundle" --retain "$work/kiosk.list"
echo "== reimage a loop device holding the old kiosk disk"
loop=$(losetup -fP --show "$work/old.img")
start=$(date +%s.%N)
"$bin" run --bundle "$work/bundle" --target "$loop" --yes
end=$(date +%s.%N)
echo "== report from the new system (/var/log/reimage/report.json)"
partx -u "$loop"
mkdir -p "$work/mnt"
mount -o ro "${loop}p1" "$work/mnt"
if command -v python3 >/dev/null; then
	python3 - "$work/mnt/var/log/reimage/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"outcome: {r['outcome']}, device {r['device']['node']} ({r['device']['size']} bytes)")
print("stages: " + ", ".join(f"{s['stage']} {s['seconds']:.2f}s" for s in r['stages']))
w = r['write']
print(f"write: {w['bytes']} bytes in {w['seconds']:.2f}s ({w['bytes'] / 2**20 / max(w['seconds'], 1e-3):.0f} MiB/s), sha256 {w['sha256']}")
for e in r['entries']:
    own = f"{e['old'].get('user', e['old']['uid'])}:{e['old'].get('group', e['old']['gid'])} -> {e['new']['uid']}:{e['new']['gid']}" if 'old' in e else ''
    print(f"  {e['outcome']:<17} {e['path']} {own}")
PY
else
	cat "$work/mnt/var/log/reimage/report.json"
fi
umount "$work/mnt"
awk -v a="$start" -v b="$end" 'BEGIN { printf "demo: reimage run took %.1f s\n", b - a }'
