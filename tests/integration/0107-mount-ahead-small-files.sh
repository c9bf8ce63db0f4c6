#!/usr/bin/env bash
# Readahead across small files: files opened for reading one after another
# in inode order (as they were created) get the next files' blocks fetched
# in the background (.stats ahead_blocks), each block fetched once
# (block_fetches), and the contents stay right, also for a file rewritten
# after the window was fetched.  Opens in descending order fetch nothing
# ahead.  Two threads reading two runs of files in lock step each keep
# their own run (a run is followed by its inode numbers, whoever opens).
# STORES: file s3
# TIMEOUT: 180
set -u
. "$(dirname "$0")/../lib/mount.sh"

N=60
t_format
t_mount --cache-size 0
mkdir "$MNT/d" || t_fail "mkdir"
for i in $(seq 0 $((N - 1))); do
	head -c $((3000 + i)) /dev/urandom >"$T_DIR/f$i"
done
for i in $(seq 0 $((N - 1))); do
	cp "$T_DIR/f$i" "$MNT/d/f$i" || t_fail "copy f$i"
done
t_umount
t_mount --cache-size 0

stat_of() { awk -v k="$1" '$1 == k {print $2}' "$MNT/.stats"; }

# Read in creation order; rewrite f40 after f9 was read (its old block may
# be prefetched by then: the read must see the new data).
f0=$(stat_of block_fetches)
for i in $(seq 0 $((N - 1))); do
	if [ "$i" = 10 ]; then
		head -c 4000 /dev/urandom >"$T_DIR/f40"
		cp "$T_DIR/f40" "$MNT/d/f40" || t_fail "rewrite f40"
	fi
	cmp -s "$T_DIR/f$i" "$MNT/d/f$i" || t_fail "f$i differs"
done
ahead=$(stat_of ahead_blocks)
f1=$(stat_of block_fetches)
[ "$ahead" -ge $((N / 2)) ] || t_fail "ahead_blocks $ahead after $N files in order"
# each old block once; the rewritten f40 is read from memory
[ $((f1 - f0)) -le "$N" ] || t_fail "$((f1 - f0)) fetches for $N files"
t_umount

t_mount --cache-size 0
mkdir "$MNT/e" || t_fail "mkdir e"
for i in $(seq 0 $((N - 1))); do
	cp "$T_DIR/f$i" "$MNT/e/g$i" || t_fail "copy g$i"
done
t_umount

# Two threads, strictly alternating opens: d/f0, e/g0, d/f1, e/g1, ...
t_mount --cache-size 0
python3 - "$MNT" "$T_DIR" "$N" <<'PY' || t_fail "lock-step readers"
import os, sys, threading
mnt, src, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
turn = threading.Condition()
state = {"next": 0, "bad": []}
def reader(k, d, prefix):
    for i in range(n):
        with turn:
            turn.wait_for(lambda: state["next"] == 2 * i + k)
        name = "f40" if (prefix, i) == ("f", 40) else "f%d" % i
        want = open(os.path.join(src, name), "rb").read()
        if open(os.path.join(mnt, d, "%s%d" % (prefix, i)), "rb").read() != want:
            state["bad"].append("%s/%s%d" % (d, prefix, i))
        with turn:
            state["next"] += 1
            turn.notify_all()
t = [threading.Thread(target=reader, args=(0, "d", "f")),
     threading.Thread(target=reader, args=(1, "e", "g"))]
for x in t: x.start()
for x in t: x.join()
if state["bad"]:
    sys.exit("differ: " + " ".join(state["bad"][:5]))
PY
ahead=$(stat_of ahead_blocks)
[ "$ahead" -ge "$N" ] || t_fail "ahead_blocks $ahead after two lock-step readers of $N files each"
t_umount

t_mount --cache-size 0
for i in $(seq $((N - 1)) -1 0); do
	cmp -s "$T_DIR/f$i" "$MNT/d/f$i" || t_fail "f$i differs (descending)"
done
ahead=$(stat_of ahead_blocks)
[ "$ahead" = 0 ] || t_fail "ahead_blocks $ahead after a descending read"
t_umount
t_pass
