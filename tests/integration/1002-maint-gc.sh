#!/usr/bin/env bash
# tessera gc: finds an injected old object no slice references (leaked),
# keeps a young one and deletes only with --delete; a listing that fails
# on its second page (fault layer) deletes nothing; an object referenced
# only by a checkpoint or only by a clone survives gc --delete, and the
# data reads back.  On the file store objects are backdated with touch
# (the real one-hour rule); s3rver cannot backdate, so S3 runs use the
# test-only TESSERA_GC_MIN_AGE_S.
# STORES: file s3
# ENGINES: sqlite redis pg
# TIMEOUT: 240
. "$(dirname "$0")/../lib/mount.sh"

OBJ=$TESSERA_HOME/$T_VOL/objects
gen() { # gen SEED KIB FILE
	python3 -c "import random,sys; sys.stdout.buffer.write(random.Random($1).randbytes($2 << 10))" >"$3"
}
has() { t_obj_keys | grep -qx "$1"; }
jget() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$T_OUT" "$1"; }
# put_obj KEY: a copy of an existing block under KEY
put_obj() {
	local src
	src=$(t_obj_keys | head -n1)
	if [ -n "$T_S3_URL" ]; then
		python3 "$T_S3OBJ" get "$T_S3_URL" "$src" |
			python3 "$T_S3OBJ" put "$T_S3_URL" "$1"
	else
		mkdir -p "$(dirname "$OBJ/$1")"
		cp "$OBJ/$src" "$OBJ/$1"
	fi
}
# age_all: every block object older than gc's bound
age_all() {
	[ -n "$T_S3_URL" ] || find "$OBJ/$T_VOL/chunks" -type f -exec touch -d '2 hours ago' {} +
}
if [ -n "$T_S3_URL" ]; then
	export TESSERA_GC_MIN_AGE_S=4
fi
gc() { tessera gc "$(t_vol)" --quiet "$@"; }

t_format --trash-days 0
t_mount
gen 1 1500 "$T_DIR/a"
gen 2 300 "$T_DIR/c"
cp "$T_DIR/a" "$MNT/a"
cp "$T_DIR/c" "$MNT/c"
echo small >"$MNT/s"
sync
n0=$(t_objects)
[ "$n0" -ge 3 ] || t_fail "expected at least 3 objects, got $n0"

# an old leaked object and a young one (unused slice ids, valid keys)
old=$T_VOL/chunks/900/900001/900001234_0_4096
young=$T_VOL/chunks/900/900002/900002345_0_4096
put_obj "$old"
if [ -n "$T_S3_URL" ]; then
	sleep 5
else
	touch -d '2 hours ago' "$OBJ/$old"
fi
put_obj "$young"

t_run 0 gc --json
[ "$(jget leaked_objects)" = 1 ] || t_fail "leaked: $(cat "$T_OUT")"
[ "$(jget young_objects)" -ge 1 ] || t_fail "young: $(cat "$T_OUT")"
[ "$(jget pending_deletes)" = 0 ] || t_fail "pending: $(cat "$T_OUT")"
has "$old" || t_fail "a dry run deleted the leaked object"

# the second page of the listing fails: exit 1, one line, nothing deleted
TESSERA_FAULT="ops=list,keys=$T_VOL/chunks/,page=2,after=1,err=1" \
	t_run 1 gc --delete
sed -i '/injecting faults/d' "$T_ERR" # obj_open's notice of the layer
t_one_line_err
t_grep "cannot list" "$T_ERR"
has "$old" || t_fail "a failed listing still deleted"
[ "$(t_objects)" = $((n0 + 2)) ] || t_fail "objects changed after a failed gc"

[ -z "$T_S3_URL" ] || put_obj "$young" # young again (4 s bound)
t_run 0 gc --delete
t_grep "deleted 1 leaked" "$T_OUT"
! has "$old" || t_fail "the leaked object is still there"
has "$young" || t_fail "a young object was deleted"
[ "$(t_objects)" = $((n0 + 1)) ] || t_fail "gc deleted more than the leak"
t_obj_rm "$young"

# referenced only by a checkpoint: c is deleted after c1
t_run 0 tessera checkpoint create "$(t_vol)" c1
t_obj_keys >"$T_DIR/k-all"
rm "$MNT/c"
sync
sleep 2
t_umount
age_all
[ -z "$T_S3_URL" ] || sleep 5
t_run 0 gc --json
[ "$(jget kept_by_checkpoints)" -ge 1 ] || t_fail "kept: $(cat "$T_OUT")"
[ "$(jget leaked_objects)" = 0 ] || t_fail "checkpoint objects seen as leaked: $(cat "$T_OUT")"
t_run 0 gc --delete
diff "$T_DIR/k-all" <(t_obj_keys) >&2 || t_fail "gc deleted objects a checkpoint references"
t_run 0 tessera checkpoint restore "$(t_vol)" c1
t_mount
cmp "$T_DIR/c" "$MNT/c" || t_fail "restored file differs"
cmp "$T_DIR/a" "$MNT/a" || t_fail "file a differs after restore"

# referenced only by a clone: a goes, a2 keeps its slices
t_run 0 tessera clone "$MNT/a" "$MNT/a2"
rm "$MNT/a"
sync
sleep 2
age_all
[ -z "$T_S3_URL" ] || sleep 5
t_run 0 gc --delete
t_grep "deleted 0 leaked" "$T_OUT"
t_umount
t_run 0 gc --delete
t_mount
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
cmp "$T_DIR/a" "$MNT/a2" || t_fail "the clone lost data to gc"
t_umount

# bad input
t_run 1 tessera gc nosuchvol
t_one_line_err
t_run 2 tessera gc
t_run 2 tessera gc "$(t_vol)" --threads 0
exit 0
