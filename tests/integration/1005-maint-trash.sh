#!/usr/bin/env bash
# tessera trash list|restore|empty: removed files are listed with their
# original paths, come back with their content (through the mount on a
# mounted SQLite volume, directly on Redis/PostgreSQL and when unmounted),
# a taken name or a removed directory fails with one clear line and leaves
# the entry in the trash, and empty removes every entry and the objects go.
# ENGINES: sqlite redis pg
# TIMEOUT: 180
. "$(dirname "$0")/../lib/mount.sh"

gen() { # gen SEED KIB FILE
	python3 -c "import random,sys; sys.stdout.buffer.write(random.Random($1).randbytes($2 << 10))" >"$3"
}
# entry PATH: the trash entry whose original path is PATH (from --json)
entry() {
	tessera trash list "$(t_vol)" --json | python3 -c '
import json, sys
e = [x["entry"] for x in json.load(sys.stdin) if x["path"] == sys.argv[1]]
print(e[0] if len(e) == 1 else "")' "$1"
}
# wait_for TEST...: retry for up to 5 s (mounts cache entries for 1 s)
wait_for() {
	for _ in $(seq 50); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
trash_empty() { [ -z "$(ls -A "$MNT/.trash")" ]; }
fewer_objects() { [ "$(t_objects)" -lt "$1" ]; }

V=$(t_vol)
t_format
t_mount
mkdir -p "$MNT/d/sub" "$MNT/gone"
gen 1 1536 "$MNT/a"
gen 2 700 "$MNT/d/b"
gen 3 300 "$MNT/d/sub/c"
echo "in a removed directory" >"$MNT/gone/e"
sync
md5a=$(md5sum <"$MNT/a")
md5b=$(md5sum <"$MNT/d/b")
md5c=$(md5sum <"$MNT/d/sub/c")
rm "$MNT/a" "$MNT/d/b" "$MNT/d/sub/c" "$MNT/gone/e"
rmdir "$MNT/gone"

# list: original paths, sizes; ?/NAME when the directory is gone
t_run 0 tessera trash list "$V"
t_grep "ENTRY .*PATH .*SIZE .*DELETED" "$T_OUT"
t_grep "^[0-9]*-[0-9]*-[0-9]*-a  *\/a  *1572864 " "$T_OUT"
t_grep " /d/b  *716800 " "$T_OUT"
t_grep " /d/sub/c  *307200 " "$T_OUT"
t_grep " ?/e  *23 " "$T_OUT"
t_run 0 tessera trash list "$V" --json
python3 - "$T_OUT" <<'PY' || t_fail "bad --json: $(cat "$T_OUT")"
import json, sys, time
v = json.load(open(sys.argv[1]))
paths = sorted(x["path"] for x in v)
assert paths == ["/a", "/d/b", "/d/sub/c", "?/e"], paths
for x in v:
    assert x["type"] == "file" and abs(x["deleted"] - time.time()) < 120, x
    assert x["parent_gone"] == (x["path"] == "?/e"), x
    assert x["entry"].endswith("-" + x["path"].split("/")[-1]), x
PY
ea=$(entry /a)
eb=$(entry /d/b)
ec=$(entry /d/sub/c)
ee=$(entry "?/e")
[ -n "$ea" ] && [ -n "$eb" ] && [ -n "$ec" ] && [ -n "$ee" ] || t_fail "entries missing"

# restore one while mounted: same content at the original path
t_run 0 tessera trash restore "$V" "$ea"
t_grep "restored '$ea' to '/a'" "$T_OUT"
wait_for test -f "$MNT/a" || t_fail "/a not back"
[ "$(md5sum <"$MNT/a")" = "$md5a" ] || t_fail "/a restored with other content"
[ ! -e "$MNT/.trash/$ea" ] || t_fail "restored entry still in the trash"

# the name is taken (by a directory: it does not go to the trash)
mkdir "$MNT/d/b"
t_run 1 tessera trash restore "$V" "$eb"
t_one_line_err
t_grep "cannot restore '$eb': '/d/b' exists" "$T_ERR"
rmdir "$MNT/d/b"
[ "$(entry /d/b)" = "$eb" ] || t_fail "failed restore lost the entry"

# the directory is gone
t_run 1 tessera trash restore "$V" "$ee"
t_one_line_err
t_grep "cannot restore '$ee': its directory (inode [0-9]*) is gone" "$T_ERR"

# unknown entry, unknown volume, usage
t_run 1 tessera trash restore "$V" "1-999999-1-nope"
t_one_line_err
t_grep "no trash entry '1-999999-1-nope'" "$T_ERR"
t_run 1 tessera trash list nosuchvol
t_one_line_err
t_run 1 tessera trash restore nosuchvol "$eb"
t_one_line_err
t_run 2 tessera trash restore "$V"
t_run 2 tessera trash frob "$V"

# --all: the rest comes back; ?/e cannot (one line, exit 1)
t_run 1 tessera trash restore "$V" --all
t_one_line_err
t_grep "'$ee'" "$T_ERR"
t_grep "restored '$eb' to '/d/b'" "$T_OUT"
t_grep "restored '$ec' to '/d/sub/c'" "$T_OUT"
wait_for test -f "$MNT/d/sub/c" || t_fail "/d/sub/c not back"
wait_for test -f "$MNT/d/b" || t_fail "/d/b not back"
[ "$(md5sum <"$MNT/d/b")" = "$md5b" ] || t_fail "/d/b content"
[ "$(md5sum <"$MNT/d/sub/c")" = "$md5c" ] || t_fail "/d/sub/c content"
[ "$(ls "$MNT/.trash")" = "$ee" ] || t_fail "trash: $(ls "$MNT/.trash")"

# empty: every entry goes, and the objects of the files with them
rm "$MNT/a" "$MNT/d/b"
sync
n0=$(t_objects)
[ "$n0" -ge 2 ] || t_fail "no objects ($n0)"
t_run 0 tessera trash empty "$V"
t_grep "emptied the trash" "$T_OUT"
wait_for trash_empty || t_fail "trash not empty: $(ls -A "$MNT/.trash")"
t_run 0 tessera trash list "$V"
t_grep "is empty" "$T_OUT"
wait_for fewer_objects "$n0" || t_fail "objects kept ($(t_objects) of $n0)"
[ "$(md5sum <"$MNT/d/sub/c")" = "$md5c" ] || t_fail "empty touched a live file"

# unmounted: list and restore open the volume themselves
rm "$MNT/d/sub/c"
t_umount
t_run 0 tessera trash list "$V"
t_grep " /d/sub/c  *307200 " "$T_OUT"
ec=$(entry /d/sub/c)
t_run 0 tessera trash restore "$V" "$ec"
t_grep "restored '$ec' to '/d/sub/c'" "$T_OUT"
t_run 1 tessera trash restore "$V" "$ec"
t_one_line_err
t_grep "no trash entry" "$T_ERR"
t_mount
[ "$(md5sum <"$MNT/d/sub/c")" = "$md5c" ] || t_fail "/d/sub/c after unmounted restore"
[ -z "$(ls -A "$MNT/.trash")" ] || t_fail "trash: $(ls -A "$MNT/.trash")"
t_umount
t_pass
