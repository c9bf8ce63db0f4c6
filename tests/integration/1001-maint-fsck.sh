#!/usr/bin/env bash
# tessera fsck: a clean volume is clean (also while mounted); a missing, a
# truncated and a flipped block object are each reported on one line with
# the file's path, inode and object key (the flip only with --verify), exit
# 1; --repair is refused while mounted; on SQLite a broken link count,
# directory link count, usage counter and an orphan (records edited with
# sqlite3) are found, fixed by --repair, and fsck is clean after; an unknown
# volume is one line and exit 1, a usage error exit 2.
# STORES: file s3
# ENGINES: sqlite redis pg
# TIMEOUT: 240
. "$(dirname "$0")/../lib/mount.sh"

VOL=$(t_vol)
ino() { stat -c %i "$MNT/$1"; }
obj_path() { echo "$TESSERA_HOME/$T_VOL/objects/$1"; }
obj_trunc() { # KEY LEN: rewrite the object shorter
	if [ -n "$T_S3_URL" ]; then
		python3 "$T_S3OBJ" get "$T_S3_URL" "$1" | head -c "$2" >"$T_DIR/obj"
		python3 "$T_S3OBJ" put "$T_S3_URL" "$1" <"$T_DIR/obj"
	else
		truncate -s "$2" "$(obj_path "$1")"
	fi
}
key_of() { t_obj_keys | grep "_0_$1\$"; } # the one block of a file of N bytes

t_format --trash-days 0
t_mount
mkdir -p "$MNT/d/e"
head -c 5000 /dev/urandom >"$MNT/d/f"
head -c 300000 /dev/urandom >"$MNT/d/e/g"
echo hi >"$MNT/s"
echo aaaa >"$MNT/a"
ln "$MNT/a" "$MNT/d/a2"
echo bbbbbb >"$MNT/b"
ln -s s "$MNT/l"
i_f=$(ino d/f) i_g=$(ino d/e/g) i_s=$(ino s) i_a=$(ino a) i_b=$(ino b)
i_d=$(ino d)
df "$MNT" >/dev/null # the mount adds its usage deltas to the counters

# clean, while mounted; repair refused
t_run 0 tessera fsck "$VOL" --verify
t_grep "0 problems" "$T_OUT"
t_run 1 tessera fsck "$VOL" --repair
t_one_line_err
t_umount
t_run 0 tessera fsck "$VOL"
t_grep "10 inodes, 5 blocks checked; 0 problems" "$T_OUT"

# data: missing, truncated, flipped
k_s=$(key_of 3) k_g=$(key_of 300000) k_f=$(key_of 5000)
[ -n "$k_s" ] && [ -n "$k_g" ] && [ -n "$k_f" ] || t_fail "keys: $(t_obj_keys)"
t_obj_rm "$k_s" || t_fail "cannot delete $k_s"
obj_trunc "$k_g" 1000 || t_fail "cannot truncate $k_g"
t_obj_flip "$k_f" 3000 || t_fail "cannot flip $k_f"
t_run 1 tessera fsck "$VOL"
t_grep "^/s (inode $i_s): object '$k_s' is missing$" "$T_OUT"
t_grep "^/d/e/g (inode $i_g): object '$k_g' has 1000 bytes" "$T_OUT"
! grep -q "$k_f" "$T_OUT" || t_fail "a flipped byte found without --verify"
t_grep "2 problems" "$T_OUT"
t_run 1 tessera fsck "$VOL" --verify --quiet
t_grep "^/d/f (inode $i_f): object '$k_f' does not verify: bad checksum" "$T_OUT"
t_grep "3 problems" "$T_OUT"
[ ! -s "$T_ERR" ] || t_fail "stderr: $(cat "$T_ERR")"
t_run 1 tessera fsck "$VOL" --verify --json
python3 - "$T_OUT" "$k_f" "$i_f" <<'PY' || t_fail "bad JSON: $(cat "$T_OUT")"
import json, sys
j = json.load(open(sys.argv[1]))
f = [x for x in j["findings"] if x.get("key") == sys.argv[2]]
assert j["problems"] == 3 and len(f) == 1, j
assert f[0]["path"] == "/d/f" and f[0]["inode"] == int(sys.argv[3]), f
PY
# --path: only that tree
t_run 1 tessera fsck "$VOL" --path /d/e
t_grep "1 problems" "$T_OUT"

# drop the damaged files: clean again
t_mount
rm "$MNT/s" "$MNT/d/f" "$MNT/d/e/g"
t_umount
t_run 0 tessera fsck "$VOL" --verify
t_grep "0 problems" "$T_OUT"

# metadata (SQLite): records edited behind tessera's back
if [ "$T_ENGINE" = sqlite ]; then
	be64() { printf "%016x" "$1"; }
	sqlite3 "$TESSERA_HOME/$T_VOL/meta.db" <<SQL || t_fail "sqlite3 failed"
UPDATE kv SET v = substr(v, 1, 13) || x'00000005' || substr(v, 18)
	WHERE g = 3 AND k = x'$(be64 "$i_a")';
UPDATE kv SET v = substr(v, 1, 13) || x'00000009' || substr(v, 18)
	WHERE g = 3 AND k = x'$(be64 "$i_d")';
UPDATE kv SET v = x'0000000000000001' WHERE g = 2 AND k = CAST('usedSpace' AS BLOB);
DELETE FROM kv WHERE g = 4 AND k = x'$(be64 1)62'; -- 'b' in the root
DELETE FROM kv WHERE g = 5 AND substr(v, 1, 8) = x'$(be64 "$i_b")';
SQL
	t_run 1 tessera fsck "$VOL"
	t_grep "^/a (inode $i_a): link count 5, 2 entries name it$" "$T_OUT"
	t_grep "^/d (inode $i_d): directory link count 9, should be 3$" "$T_OUT"
	t_grep "^? (inode $i_b): orphan inode" "$T_OUT"
	t_grep "usage counters say 1 bytes" "$T_OUT"
	t_grep "4 problems, 0 repaired" "$T_OUT"
	t_run 0 tessera fsck "$VOL" --repair
	t_grep "^/a (inode $i_a): link count 5, .*; repaired$" "$T_OUT"
	t_grep "repaired: moved to /.trash/0-$i_b-[0-9]*-orphan$" "$T_OUT"
	t_grep "4 problems, 4 repaired" "$T_OUT"
	t_run 0 tessera fsck "$VOL" --verify
	t_grep "0 problems" "$T_OUT"
fi

# bad input
t_run 1 tessera fsck no-such-volume
t_one_line_err
t_run 2 tessera fsck
t_run 2 tessera fsck "$VOL" --no-such-option
t_pass
