#!/usr/bin/env bash
# The volume's own limits (format --capacity / --inodes): df shows them, dd
# stops with ENOSPC (not EDQUOT) at write(2) after exactly the capacity,
# creates stop with ENOSPC at the inode limit, a directory quota larger
# than what the volume has left gives ENOSPC and a smaller one EDQUOT, and
# a limit raised by `tessera config` while mounted binds the mount.
# ENGINES: sqlite pg
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0 --capacity 4M --inodes 12
t_mount
V=$(t_vol)

t_run 0 df -B1 --output=size,used "$MNT"
t_grep '^ *4194304 *0$' "$T_OUT"
t_run 0 df --output=itotal "$MNT"
t_grep '^ *12$' "$T_OUT"

t_run 1 dd if=/dev/zero of="$MNT/big" bs=1M count=8
t_grep 'No space left on device' "$T_ERR"
[ "$(stat -c %s "$MNT/big")" = 4194304 ] ||
	t_fail "dd wrote $(stat -c %s "$MNT/big") bytes, wanted 4194304"
t_run 0 df -B1 --output=used,avail "$MNT"
t_grep '^ *4194304 *0$' "$T_OUT"

python3 - "$MNT" <<'PY' || t_fail "ENOSPC and EDQUOT"
import errno, os, sys
M = sys.argv[1]

def fails(code, fn, *a):
    try:
        fn(*a)
    except OSError as e:
        assert e.errno == code, (fn.__name__, a, e)
        return
    raise AssertionError(f"{fn.__name__}{a} did not fail")

fails(errno.ENOSPC, os.truncate, f"{M}/big", (4 << 20) + 1)
os.truncate(f"{M}/big", 3 << 20)
os.mkdir(f"{M}/q")
os.mkdir(f"{M}/small")
PY
t_run 0 tessera quota set "$V" --path /q --capacity 2M
t_run 0 tessera quota set "$V" --path /small --capacity 64K
python3 - "$MNT" <<'PY' || t_fail "ENOSPC before a roomier quota, EDQUOT before the volume"
import errno, os, sys
M = sys.argv[1]
# the volume has 1 MiB - 8 KiB left (big 3 MiB, two directories)
fd = os.open(f"{M}/q/f", os.O_CREAT | os.O_WRONLY)
try:
    os.posix_fallocate(fd, 0, 1536 << 10)
    raise AssertionError("fallocate past the volume passed")
except OSError as e:
    assert e.errno == errno.ENOSPC, e
os.close(fd)
fd = os.open(f"{M}/small/f", os.O_CREAT | os.O_WRONLY)
try:
    os.posix_fallocate(fd, 0, 128 << 10)
    raise AssertionError("fallocate past the quota passed")
except OSError as e:
    assert e.errno == errno.EDQUOT, e
os.close(fd)
# inodes: big, q, small, q/f, small/f = 5 of 12
made = 0
try:
    for i in range(20):
        open(f"{M}/n{i}", "w").close()
        made += 1
except OSError as e:
    assert e.errno == errno.ENOSPC, e
assert made == 7, made
PY

# raised while mounted (a replicated SQLite volume's settings change only
# while unmounted): binds at the mount's next flush (df flushes)
if [ "$T_ENGINE" = sqlite ]; then
	t_umount
	t_run 0 tessera config "$V" --inodes 20
	t_mount
else
	t_run 0 tessera config "$V" --inodes 20
fi
t_run 0 df --output=itotal "$MNT"
t_grep '^ *20$' "$T_OUT"
touch "$MNT/n-more" || t_fail "create after the inode limit was raised"
t_umount
t_pass
