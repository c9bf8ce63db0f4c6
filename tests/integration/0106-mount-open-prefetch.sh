#!/usr/bin/env bash
# Opening a small file for reading starts fetching its one block at once
# (the READ that follows finds it loaded); a file bigger than a block, an
# empty file and a write-only open start nothing.  Counted in .stats
# (block_prefetches, block_fetches: GETs from the store).
# STORES: file s3
# TIMEOUT: 120
set -u
. "$(dirname "$0")/../lib/mount.sh"

t_format
t_mount --cache-size 0
head -c 5000 /dev/urandom >"$T_DIR/small"
cp "$T_DIR/small" "$MNT/s1" && cp "$T_DIR/small" "$MNT/s2" &&
	cp "$T_DIR/small" "$MNT/s3" || t_fail "copy small files"
head -c $((5 << 20)) /dev/urandom >"$MNT/big" || t_fail "write big"
: >"$MNT/empty"
t_umount
t_mount --cache-size 0

# Python opens FILE (FLAGS), waits until block_prefetches reaches WANT (at
# most 20 s), waits 0.5 s more for a prefetch that should not come, closes,
# prints "PREFETCHES FETCHES".
probe() {
	python3 - "$MNT" "$@" <<'PY'
import os, sys, time
mnt, name, flags, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def stats():
    d = {}
    for line in open(os.path.join(mnt, ".stats")):
        k, _, v = line.partition(" ")
        d[k] = v.strip()
    return int(d["block_prefetches"]), int(d["block_fetches"])
fl = {"r": os.O_RDONLY, "rw": os.O_RDWR, "w": os.O_WRONLY}[flags]
fd = os.open(os.path.join(mnt, name), fl)
end = time.monotonic() + 20
while stats()[0] < want and time.monotonic() < end:
    time.sleep(0.02)
time.sleep(0.5)
print(*stats())
os.close(fd)
PY
}

read -r p0 f0 < <(probe empty r 0) || t_fail "probe"
read -r p f < <(probe s1 r $((p0 + 1))) || t_fail "probe s1"
[ "$p" = $((p0 + 1)) ] || t_fail "open of a small file: prefetches $p0 -> $p"
[ "$f" = $((f0 + 1)) ] || t_fail "open of a small file: fetches $f0 -> $f"
# the read finds the block loaded: no other GET
cmp "$T_DIR/small" "$MNT/s1" || t_fail "s1 differs"
read -r p2 f2 < <(probe empty r 0) || t_fail "probe"
[ "$f2" = "$f" ] || t_fail "read after the open prefetch fetched again ($f -> $f2)"
[ "$p2" = "$p" ] || t_fail "empty file prefetched ($p -> $p2)"
read -r p3 f3 < <(probe big r 0) || t_fail "probe big"
[ "$p3" = "$p2" ] && [ "$f3" = "$f2" ] ||
	t_fail "open of a file bigger than a block fetched ($p2/$f2 -> $p3/$f3)"
read -r p4 f4 < <(probe s2 w 0) || t_fail "probe s2"
[ "$p4" = "$p3" ] && [ "$f4" = "$f3" ] ||
	t_fail "write-only open fetched ($p3/$f3 -> $p4/$f4)"
read -r p5 _ < <(probe s3 rw $((p4 + 1))) || t_fail "probe s3"
[ "$p5" = $((p4 + 1)) ] || t_fail "read-write open of a small file: $p4 -> $p5"
cmp "$T_DIR/small" "$MNT/s2" && cmp "$T_DIR/small" "$MNT/s3" ||
	t_fail "small files differ"
t_umount
t_pass
