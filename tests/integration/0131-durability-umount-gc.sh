#!/usr/bin/env bash
# A clean `tessera umount` makes everything written durable (no fsync, no
# wait: umount returns after the mount process flushed and exited), and
# with --trash-days 0 the objects of deleted, truncated, overwritten and
# unlinked-while-open files disappear from the store directory.
# STORES: file s3
# ENGINES: sqlite redis pg
# TIMEOUT: 300
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0
t_mount

# many files, no fsync, then umount at once
python3 - "$MNT" <<'PY' || t_fail "write phase"
import os, random, sys
d = sys.argv[1]
os.mkdir(os.path.join(d, "many"))
for i in range(300):
    with open(os.path.join(d, "many", "f%03d" % i), "wb") as f:
        f.write(random.Random(i).randbytes(i * 997))
with open(os.path.join(d, "large"), "wb") as f:
    f.write(random.Random(-1).randbytes(30 << 20))
PY
t_umount
# the process is gone: only what is on disk counts now
t_mount
python3 - "$MNT" <<'PY' || t_fail "data lost over a clean umount"
import os, random, sys
d = sys.argv[1]
for i in range(300):
    with open(os.path.join(d, "many", "f%03d" % i), "rb") as f:
        assert f.read() == random.Random(i).randbytes(i * 997), i
with open(os.path.join(d, "large"), "rb") as f:
    assert f.read() == random.Random(-1).randbytes(30 << 20)
PY

# objects go away after deletes (trash days 0)
wait_objects() { # wait_objects MAX SECONDS: until at most MAX objects remain
	local n
	for _ in $(seq $(($2 * 10))); do
		n=$(t_objects)
		[ "$n" -le "$1" ] && return 0
		sleep 0.1
	done
	t_fail "$n objects left, expected at most $1"
}
before=$(t_objects)
[ "$before" -gt 8 ] || t_fail "only $before objects after writing 30+ MiB"
rm -r "$MNT/many"
truncate -s 0 "$MNT/large"
wait_objects 0 30

# overwrite: compaction or overwrite leaves nothing behind but live data
head -c $((8 << 20)) /dev/urandom >"$MNT/ow"
for i in $(seq 20); do
	dd if=/dev/urandom of="$MNT/ow" bs=4k count=1 seek=$((i * 37)) conv=notrunc status=none
done
cat "$MNT/ow" >/dev/null # a read meeting many slices compacts the chunk
rm "$MNT/ow"
wait_objects 0 30

# unlink while open: objects stay until the last close
exec 8>"$MNT/held"
head -c $((6 << 20)) /dev/urandom >&8
rm "$MNT/held"
sleep 2
[ "$(t_objects)" -gt 0 ] || t_fail "objects of an open unlinked file deleted"
exec 8>&-
wait_objects 0 30
t_umount
