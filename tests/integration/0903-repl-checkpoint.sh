#!/usr/bin/env bash
# Checkpoints: create (through the mount), then overwrite and delete
# files; the deletion worker (trash-days 0) keeps every object a kept
# checkpoint references; restore brings back the old contents byte for
# byte and queues what was written after the checkpoint; once the
# checkpoint is deleted its objects are collected.
# TIMEOUT: 300
. "$(dirname "$0")/../lib/mount.sh"

keys() { # the block objects of the volume, sorted
	find "$TESSERA_HOME/$T_VOL/objects/$T_VOL/chunks" -type f 2>/dev/null |
		grep -v '\.tmp' | sort
}
# all_exist FILE: every key listed in FILE exists
all_exist() { while read -r k; do [ -e "$k" ] || return 1; done <"$1"; }
none_exist() { while read -r k; do [ -e "$k" ] && return 1; done <"$1"; return 0; }
# wait_gone FILE: poll until none of FILE's keys exist (20 s)
wait_gone() {
	for _ in $(seq 200); do
		none_exist "$1" && return 0
		sleep 0.1
	done
	return 1
}
sums() { (cd "$MNT" && find . -path ./.trash -prune -o -type f -print | sort | xargs md5sum); }
put() { # put FILE SEED MIB
	python3 -c "import random,sys; sys.stdout.buffer.write(random.Random($2).randbytes($3 << 20))" >"$MNT/$1"
	sync "$MNT/$1"
}

t_format --trash-days 0
t_mount
put keep 1 1
keys >"$T_DIR/k0"
put mod 2 2
keys >"$T_DIR/k1"
put del 3 3
keys >"$T_DIR/k2"
mkdir -p "$MNT/sub/deeper"
put sub/deeper/x 4 1
comm -13 "$T_DIR/k0" "$T_DIR/k1" >"$T_DIR/mod-old"
comm -13 "$T_DIR/k1" "$T_DIR/k2" >"$T_DIR/del"
[ -s "$T_DIR/mod-old" ] && [ -s "$T_DIR/del" ] || t_fail "no objects found"
sums >"$T_DIR/sums-c1"

t_run 0 tessera checkpoint create "$T_VOL" c1
t_grep "created checkpoint 'c1'" "$T_OUT"
t_run 0 tessera checkpoint list "$T_VOL"
t_grep "^c1 " "$T_OUT"
t_run 1 tessera checkpoint create "$T_VOL" c1
t_grep "exists" "$T_ERR"

keys >"$T_DIR/k3"
put mod 5 2 # overwrite: the old slices are released
keys >"$T_DIR/k4"
comm -13 "$T_DIR/k3" "$T_DIR/k4" >"$T_DIR/mod-new"
rm "$MNT/del"
rm -r "$MNT/sub"
sync
sleep 3 # the deletion worker runs every second
all_exist "$T_DIR/mod-old" || t_fail "an object of the checkpoint was deleted (old mod)"
all_exist "$T_DIR/del" || t_fail "an object of the checkpoint was deleted (del)"
t_run 1 tessera checkpoint restore "$T_VOL" c1
t_grep "mounted on this host" "$T_ERR"

t_umount
t_run 0 tessera checkpoint restore "$T_VOL" c1
t_mount
sums >"$T_DIR/sums-back"
diff "$T_DIR/sums-c1" "$T_DIR/sums-back" >&2 || t_fail "restored contents differ"
# what was written after the checkpoint is collected now
wait_gone "$T_DIR/mod-new" || t_fail "objects written after the checkpoint were not collected"

# delete again: c1 still holds the objects, until c1 goes
rm "$MNT/del"
sync
sleep 3
all_exist "$T_DIR/del" || t_fail "c1's objects deleted while c1 exists"
t_run 0 tessera checkpoint delete "$T_VOL" c1
wait_gone "$T_DIR/del" || t_fail "objects kept after the checkpoint was deleted"
t_run 0 tessera checkpoint list "$T_VOL"
t_grep "no checkpoints" "$T_OUT"
cmp -s <(python3 -c "import random,sys; sys.stdout.buffer.write(random.Random(1).randbytes(1 << 20))") "$MNT/keep" ||
	t_fail "keep changed"
t_umount

# bad input: one clear line each
t_run 1 tessera checkpoint restore "$T_VOL" nope
t_grep "no checkpoint 'nope'" "$T_ERR"
t_run 1 tessera checkpoint create "$T_VOL" ../x
t_one_line_err
t_run 2 tessera checkpoint explode "$T_VOL" x
exit 0
