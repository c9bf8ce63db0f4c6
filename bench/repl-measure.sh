#!/usr/bin/env bash
# bench/repl-measure.sh - times of checkpoint create/restore and of a cold
# mount from the storage URL alone, for a volume of N small files plus
# big files (docs/replication.md quotes the figures).
#
#   bench/repl-measure.sh [FILES] [SMALL_BYTES] [BIG_GIB...]
#
# Default: 100000 files of 10 KiB (~1 GiB), then big files of 1 GiB
# added until the totals in BIG_GIB (e.g. "0 9": measure at ~1 GiB and
# at ~10 GiB).  Everything lives under a temp dir, removed at the end.
set -eu
BIN=${TESSERA_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/tessera}
FILES=${1:-100000}
SMALL=${2:-10240}
shift 2 2>/dev/null || shift $#
BIGS=("${@:-0}")
[ ${#BIGS[@]} -gt 0 ] || BIGS=(0)
W=$(mktemp -d /tmp/tessera-bench.XXXXXX)
export TESSERA_HOME=$W/a
HOME_B=$W/b
mkdir -p "$W/a" "$W/b" "$W/mA" "$W/mB" "$W/store"
cleanup() {
	for m in "$W/mA" "$W/mB"; do
		mountpoint -q "$m" && { "$BIN" umount "$m" || umount -l "$m"; }
	done
	rm -rf "$W"
}
trap cleanup EXIT
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

"$BIN" format vol --storage "file://$W/store/" --trash-days 0 >/dev/null
"$BIN" mount vol "$W/mA"
t=$(now)
python3 - "$W/mA" "$FILES" "$SMALL" <<'PY'
import os, sys
mnt, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = os.urandom(size)
per = 1000
for d in range((n + per - 1) // per):
    dp = os.path.join(mnt, "d%03d" % d)
    os.mkdir(dp)
    for i in range(min(per, n - d * per)):
        fd = os.open(os.path.join(dp, "f%04d" % i), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, data[i % 7:] + data[:i % 7])
        os.close(fd)
PY
echo "created $FILES files of $SMALL bytes in $(took "$t") s"
have=0
k=0
for big in "${BIGS[@]}"; do
	k=$((k + 1))
	if [ -z "$(ls -A "$W/mA" 2>/dev/null)" ]; then
		"$BIN" mount vol "$W/mA"
	fi
	t=$(now)
	while [ "$have" -lt "$big" ]; do
		dd if=/dev/zero of="$W/mA/big$have" bs=4M count=256 status=none
		have=$((have + 1))
	done
	sync
	[ "$big" -gt 0 ] && echo "wrote $big GiB of big files in $(took "$t") s"
	data=$(du -sb "$W/store/vol/chunks" | cut -f1)
	echo "== volume: $FILES small files + $big x 1 GiB, $((data >> 20)) MiB of objects"
	t=$(now)
	"$BIN" checkpoint create vol "c$k" >/dev/null
	echo "checkpoint create (through the mount): $(took "$t") s," \
		"$(stat -c %s "$W/store/vol/meta/ckpt/c$k") bytes stored"
	"$BIN" umount "$W/mA"
	echo more >"$W/junk"
	t=$(now)
	"$BIN" checkpoint restore vol "c$k" >/dev/null
	echo "checkpoint restore (unmounted, ships the new base): $(took "$t") s"
	rm -rf "${HOME_B:?}"/*
	t=$(now)
	TESSERA_HOME=$HOME_B "$BIN" mount "file://$W/store/vol" "$W/mB" 2>"$W/restore.log"
	echo "cold mount from the URL (restore + mount): $(took "$t") s;" \
		"$(grep -o 'restored volume.*' "$W/restore.log")"
	t=$(now)
	n=$(find "$W/mB" -type f | wc -l)
	echo "  (find over the mount: $n files in $(took "$t") s)"
	TESSERA_HOME=$HOME_B "$BIN" umount "$W/mB"
	"$BIN" mount vol "$W/mA" 2>/dev/null
done
"$BIN" umount "$W/mA"
