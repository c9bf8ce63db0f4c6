#!/usr/bin/env bash
# Directory quotas on one mount: dd stops with EDQUOT at write(2) after
# exactly the bytes that fit, fallocate and truncate past the limit fail,
# creates fail at exactly the inode limit, a rename into the directory
# that does not fit fails (and one within it passes), nested quotas each
# limit, hard links add no usage, and get/list/delete agree with what the
# tree holds.  Changes go through the mount's .control on SQLite.
# ENGINES: sqlite redis pg
# SMOKE
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0
t_mount
V=$(t_vol)
KIB=1024

mkdir -p "$MNT/q/inner" "$MNT/out/tree"
echo hello >"$MNT/q/old" # 4 KiB, set before the quota: counted
t_run 0 tessera quota set "$V" --path /q --capacity 1M --inodes 20
t_grep '^/q space 8192/1048576 inodes 2/20$' "$T_OUT" # inner + old

# dd: 1 MiB - 8 KiB fit; the write that passes is cut short, the next
# one fails with EDQUOT, and what was written stays readable
t_run 1 dd if=/dev/zero of="$MNT/q/big" bs=64k count=32
t_grep 'Disk quota exceeded' "$T_ERR"
[ "$(stat -c %s "$MNT/q/big")" = $((1024 * KIB - 8 * KIB)) ] ||
	t_fail "dd wrote $(stat -c %s "$MNT/q/big") bytes, wanted 1040384"
cmp -n $((1024 * KIB - 8 * KIB)) /dev/zero "$MNT/q/big" || t_fail "dd data"
t_run 0 tessera quota get "$V" --path /q --json
python3 - "$T_OUT" <<'PY' || t_fail "quota get --json after dd"
import json, sys
q = json.load(open(sys.argv[1]))
assert q == {"path": "/q", "inode": q["inode"], "space_limit": 1048576,
             "inodes_limit": 20, "used_space": 1048576,
             "used_inodes": 3}, q
PY

python3 - "$MNT" <<'PY' || t_fail "fallocate, truncate, rename under the quota"
import errno, os, sys
M = sys.argv[1]

def fails(code, fn, *a):
    try:
        fn(*a)
    except OSError as e:
        assert e.errno == code, (fn.__name__, a, e)
        return
    raise AssertionError(f"{fn.__name__}{a} did not fail")

# full: no byte more, by any way; shrinking frees
fd = os.open(f"{M}/q/big", os.O_RDWR)
fails(errno.EDQUOT, os.posix_fallocate, fd, 0, (1 << 20) + 1)
fails(errno.EDQUOT, os.ftruncate, fd, (1 << 20) - 8192 + 4097)
os.ftruncate(fd, 512 << 10)
os.posix_fallocate(fd, 0, (1 << 20) - 8192 - 4096)
os.close(fd)
# inner is 4 KiB, big 1 MiB - 12 KiB, old 4 KiB: 4 KiB left
assert os.stat(f"{M}/q/big").st_size == (1 << 20) - 12288
# rename in: 8 KiB file does not fit, 4 KiB does; a tree brings its usage
with open(f"{M}/out/f8", "wb") as f:
    f.write(b"x" * 8192)
with open(f"{M}/out/f4", "wb") as f:
    f.write(b"x" * 10)
fails(errno.EDQUOT, os.rename, f"{M}/out/f8", f"{M}/q/f8")
assert os.path.exists(f"{M}/out/f8") and not os.path.exists(f"{M}/q/f8")
os.rename(f"{M}/out/f4", f"{M}/q/f4")
fails(errno.EDQUOT, os.rename, f"{M}/out/tree", f"{M}/q/tree")
# within the quota, and out of it: always allowed
os.rename(f"{M}/q/f4", f"{M}/q/inner/f4")
os.rename(f"{M}/q/inner/f4", f"{M}/out/f4")
os.rename(f"{M}/out/f4", f"{M}/q/f4")
# hard links: a file counts once, at the directory it was created in
os.link(f"{M}/q/f4", f"{M}/out/f4-link")
os.link(f"{M}/out/f8", f"{M}/q/f8-link")
PY
t_run 0 tessera quota get "$V" --path /q
t_grep '^/q space 1048576/1048576 inodes 4/20$' "$T_OUT" # not f8-link

# inodes: exactly up to the limit (mkdir, mknod, symlink alike)
python3 - "$MNT" <<'PY' || t_fail "creates at the inode limit"
import errno, os, sys
M = sys.argv[1]
os.truncate(f"{M}/q/big", 0)
made = 0
try:
    for i in range(100):
        if i % 3 == 0:
            os.mkdir(f"{M}/q/inner/d{i}")
        elif i % 3 == 1:
            os.symlink("x", f"{M}/q/inner/l{i}")
        else:
            open(f"{M}/q/inner/f{i}", "w").close()
        made += 1
except OSError as e:
    assert e.errno == errno.EDQUOT, e
assert made == 16, made
os.mkdir(f"{M}/elsewhere")  # outside: not limited
PY

# nested: the inner quota limits alone; the outer one counts everything
t_run 0 tessera quota set "$V" --path /q --inodes 0
t_run 0 tessera quota set "$V" --path /q/inner --inodes 17
t_grep '^/q/inner space [0-9]*/unlimited inodes 16/17$' "$T_OUT"
touch "$MNT/q/inner/one" || t_fail "one more fits the inner quota"
t_run 1 touch "$MNT/q/inner/two"
t_grep 'Disk quota exceeded' "$T_ERR"
touch "$MNT/q/beside" || t_fail "the outer quota has no inode limit now"
t_run 0 tessera quota list "$V" --json
python3 - "$T_OUT" <<'PY' || t_fail "quota list --json"
import json, sys
q = {x["path"]: x for x in json.load(open(sys.argv[1]))}
assert sorted(q) == ["/q", "/q/inner"], q
assert q["/q/inner"]["used_inodes"] == 17, q
# inner, old, big, f4, the 17 in inner, beside
assert q["/q"]["used_inodes"] == 4 + 17 + 1, q
assert q["/q"]["space_limit"] == 1 << 20 and q["/q"]["inodes_limit"] == 0, q
PY
t_run 0 tessera quota check "$V"
t_grep '^/q: ok' "$T_OUT"
t_grep '^/q/inner: ok' "$T_OUT"

# delete: no limit any more; the other quota stays
t_run 0 tessera quota delete "$V" --path /q/inner
touch "$MNT/q/inner/two" || t_fail "create after quota delete"
t_run 1 tessera quota get "$V" --path /q/inner
t_grep "no quota on '/q/inner'" "$T_ERR"
t_umount
t_pass
