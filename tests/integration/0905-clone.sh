#!/usr/bin/env bash
# tessera clone inside a mount: files and trees copied by metadata only
# (no object is written), writing the clone leaves the source untouched,
# deleting the source leaves the clone readable, and the objects go only
# when the last reference does.  A big file costs as many metadata records
# as it has chunks and slices, not bytes.
# TIMEOUT: 300
. "$(dirname "$0")/../lib/mount.sh"

objects() { t_objects; }
gen() { # gen SEED MIB FILE
	python3 -c "import random,sys; sys.stdout.buffer.write(random.Random($1).randbytes($2 << 20))" >"$3"
}
field() { sed -n "s/.* $1 \([0-9]*\).*/\1/p" "$T_OUT"; }

t_format --trash-days 0
t_mount
gen 1 130 "$MNT/big"
echo "small file" >"$MNT/small"
mkdir -p "$MNT/tree/sub/deep"
gen 2 3 "$MNT/tree/a"
echo b >"$MNT/tree/sub/b"
echo c >"$MNT/tree/sub/deep/c"
ln -s a "$MNT/tree/link"
setfattr -n user.k -v v1 "$MNT/tree/a" 2>/dev/null
sync
md5=$(md5sum <"$MNT/big")
n0=$(objects)

# a small and a big file: the cost is records, not bytes
t_run 0 tessera clone "$MNT/small" "$MNT/small2"
[ "$(field chunks)" = 1 ] && [ "$(field slices)" = 1 ] || t_fail "small: $(cat "$T_OUT")"
t_run 0 tessera clone "$MNT/big" "$MNT/big2"
chunks=$(field chunks)
slices=$(field slices)
[ "$chunks" = 3 ] || t_fail "130 MiB should be 3 chunk records: $(cat "$T_OUT")"
[ "$slices" -ge 3 ] && [ "$slices" -le 6 ] || t_fail "unexpected slice count: $(cat "$T_OUT")"
[ "$(field inodes)" = 1 ] || t_fail "$(cat "$T_OUT")"
[ "$(objects)" = "$n0" ] || t_fail "clone wrote objects ($(objects) != $n0)"
[ "$(md5sum <"$MNT/big2")" = "$md5" ] || t_fail "clone differs"
[ "$(cat "$MNT/small2")" = "small file" ] || t_fail "small clone differs"

# writing the clone leaves the source alone
printf 'XXXXXXXX' | dd of="$MNT/big2" bs=1 seek=$((70 << 20)) conv=notrunc status=none
echo more >>"$MNT/small2"
sync
[ "$(md5sum <"$MNT/big")" = "$md5" ] || t_fail "source changed by a write to the clone"
[ "$(md5sum <"$MNT/big2")" != "$md5" ] || t_fail "clone write lost"
[ "$(cat "$MNT/small")" = "small file" ] || t_fail "small source changed"

# deleting the source leaves the clone readable; the worker keeps its objects
gen 1 130 "$T_DIR/expect"
printf 'XXXXXXXX' | dd of="$T_DIR/expect" bs=1 seek=$((70 << 20)) conv=notrunc status=none
rm "$MNT/big"
sync
sleep 3
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
cmp -s "$T_DIR/expect" "$MNT/big2" || t_fail "clone unreadable after the source was deleted"
# the last reference: objects go
before=$(objects)
rm "$MNT/big2"
sync
for _ in $(seq 100); do
	[ "$(objects)" -lt $((before - 20)) ] && break
	sleep 0.2
done
[ "$(objects)" -lt $((before - 20)) ] || t_fail "objects of the last copy kept ($(objects) of $before)"

# a tree
t_run 0 tessera clone "$MNT/tree" "$MNT/tree2"
[ "$(field inodes)" = 7 ] || t_fail "tree: $(cat "$T_OUT")"
diff -r --no-dereference "$MNT/tree" "$MNT/tree2" >&2 || t_fail "trees differ"
[ "$(readlink "$MNT/tree2/link")" = a ] || t_fail "symlink"
if getfattr -n user.k "$MNT/tree/a" >/dev/null 2>&1; then
	[ "$(getfattr --only-values -n user.k "$MNT/tree2/a")" = v1 ] || t_fail "xattr not cloned"
fi
echo changed >"$MNT/tree2/sub/b"
rm "$MNT/tree2/sub/deep/c"
mkdir "$MNT/tree2/new"
[ "$(cat "$MNT/tree/sub/b")" = b ] || t_fail "source tree changed"
[ -e "$MNT/tree/sub/deep/c" ] || t_fail "source tree lost a file"
[ -e "$MNT/tree/new" ] && t_fail "source tree got a directory"
rm -r "$MNT/tree"
[ "$(md5sum <"$MNT/tree2/a")" = "$(gen 2 3 /dev/stdout | md5sum)" ] || t_fail "tree clone data"

# errors: one clear line, exit 1
t_run 1 tessera clone "$MNT/small" "$MNT/small2"
t_one_line_err
t_grep "File exists" "$T_ERR"
t_run 1 tessera clone "$MNT/tree2" "$MNT/tree2/sub/inside"
t_one_line_err
t_run 1 tessera clone /etc/hostname "$MNT/h"
t_grep "not inside a tessera mount" "$T_ERR"
t_run 1 tessera clone "$MNT/small" "$T_DIR/outside"
t_grep "not in the same mount" "$T_ERR"
t_run 1 tessera clone "$MNT/nope" "$MNT/x"
t_run 2 tessera clone "$MNT/small"
t_umount
exit 0
