#!/usr/bin/env bash
# tessera rmr: a tree of 3,000 small files in nested directories goes
# entirely, through metadata batches; with the trash on the files are in
# .trash, with it off their objects are deleted; without permission it fails
# with EACCES and removes nothing it may not; a file open elsewhere stays
# readable like after unlink.  The time of rmr and of rm -rf of the same
# tree is printed (not asserted).
# ENGINES: sqlite redis pg
# TIMEOUT: 400
. "$(dirname "$0")/../lib/mount.sh"

# mk_tree DIR NDIRS: NDIRS x 3 subdirectories of 100 one-byte files each
mk_tree() {
	python3 - "$1" "$2" <<'PY'
import os, sys
top, n = sys.argv[1], int(sys.argv[2])
for d in range(n):
    for s in range(3):
        p = os.path.join(top, "d%d" % d, "s%d" % s)
        os.makedirs(p)
        for f in range(100):
            with open(os.path.join(p, "f%d" % f), "w") as fh:
                fh.write("x")
PY
}
now() { date +%s.%N; }
nobody() { su -s /bin/sh nobody -c "$*"; }

t_format
t_mount -o allow_other

# trash on: rmr, and rm -rf of the same tree for comparison
mk_tree "$MNT/t1" 10
mk_tree "$MNT/t2" 10
echo kept >"$MNT/t1/d0/open"
exec 7<"$MNT/t1/d0/open"
t0=$(now)
t_run 0 tessera rmr "$MNT/t1"
t1=$(now)
rm -rf "$MNT/t2" || t_fail "rm -rf"
t2=$(now)
t_log "rmr of 3001 files, 41 dirs: $(awk "BEGIN { print $t1 - $t0 }") s; rm -rf of 3000 files, 41 dirs: $(awk "BEGIN { print $t2 - $t1 }") s ($T_ENGINE)"
t_grep "removed '$MNT/t1': 3001 files, 41 directories" "$T_OUT"
[ ! -e "$MNT/t1" ] || t_fail "t1 still there"
[ "$(cat <&7)" = kept ] || t_fail "a file open while removed is unreadable"
exec 7<&-
sleep 1.2 # entry timeout
[ -z "$(ls -A "$MNT")" ] || t_fail "left behind: $(ls -A "$MNT")"
n=$(ls "$MNT/.trash" | wc -l)
[ "$n" = 6001 ] || t_fail "trash should hold 6001 files (rmr and rm -rf), has $n"
ls "$MNT/.trash" | grep -q -- '-open$' || t_fail "the open file is not in the trash"

# a single file and a missing path
echo x >"$MNT/one"
t_run 0 tessera rmr --quiet "$MNT/one"
[ ! -e "$MNT/one" ] || t_fail "file not removed"
[ ! -s "$T_OUT" ] || t_fail "--quiet printed: $(cat "$T_OUT")"
t_run 1 tessera rmr "$MNT/missing"
t_one_line_err
t_run 1 tessera rmr /tmp/not-a-mount-$$
t_one_line_err

# no permission: nothing goes that the caller may not remove
mk_tree "$MNT/p" 1
mkdir "$MNT/p/mine"
for i in 1 2 3; do echo "$i" >"$MNT/p/mine/$i"; done
chown -R nobody "$MNT/p/mine"
nobody "$TESSERA_BIN rmr $MNT/p" >"$T_OUT" 2>"$T_ERR" &&
	t_fail "nobody removed a tree of root's"
t_grep "Permission denied" "$T_ERR"
t_one_line_err
[ "$(find "$MNT/p" -type f | wc -l)" = 303 ] || t_fail "files went without permission"
# nobody may empty its own directory but not remove it from root's
nobody "$TESSERA_BIN rmr $MNT/p/mine" >"$T_OUT" 2>"$T_ERR" &&
	t_fail "nobody removed its directory from root's"
t_grep "Permission denied" "$T_ERR"
[ -d "$MNT/p/mine" ] && [ -z "$(ls -A "$MNT/p/mine")" ] ||
	t_fail "mine: $(ls -A "$MNT/p/mine")"
[ "$(find "$MNT/p" -type f | wc -l)" = 300 ] || t_fail "root's files went"
t_umount

# trash off: the objects go
T_VOL=vol2
t_format --trash-days 0
t_mount
mk_tree "$MNT/t3" 2
sync
before=$(t_objects)
[ "$before" -ge 600 ] || t_fail "600 files should be at least 600 objects, $before"
t_run 0 tessera rmr "$MNT/t3"
[ ! -e "$MNT/t3" ] || t_fail "t3 still there"
[ "$(ls "$MNT/.trash" | wc -l)" = 0 ] || t_fail "trash used with --trash-days 0"
for _ in $(seq 150); do
	[ "$(t_objects)" -lt 10 ] && break
	sleep 0.2
done
[ "$(t_objects)" -lt 10 ] || t_fail "objects not deleted: $(t_objects) of $before"
t_umount
