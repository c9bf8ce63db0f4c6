#!/usr/bin/env bash
# Access times that reads move are written lazily (once a second, and at
# unmount): stat shows them at once, they survive a remount, and an
# explicit utimes right after a read is not overwritten by the pending one.
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0
t_mount

python3 - "$MNT" <<'PY' || t_fail "atime after reads"
import os, sys, time

d = sys.argv[1]
for i in range(20):
    with open(os.path.join(d, "f%d" % i), "wb") as f:
        f.write(b"x" * 100)
time.sleep(0.02)
for i in range(20):
    p = os.path.join(d, "f%d" % i)
    st0 = os.stat(p)
    with open(p, "rb") as f:
        f.read()
    st1 = os.stat(p)
    assert st1.st_atime_ns > st0.st_mtime_ns, "atime after read of %s" % p
    assert st1.st_ctime_ns == st0.st_ctime_ns, "read moved ctime"
# explicit times after a read win over the pending atime
os.utime(os.path.join(d, "f0"), ns=(1_000_000_000_000, 2_000_000_000_000))
time.sleep(2.5)  # past a background flush
st = os.stat(os.path.join(d, "f0"))
assert st.st_atime_ns == 1_000_000_000_000, "utimes lost: %d" % st.st_atime_ns
open(os.path.join(d, "atimes"), "w").write(
    " ".join(str(os.stat(os.path.join(d, "f%d" % i)).st_atime_ns)
             for i in range(20)))
PY
t_umount
t_mount
python3 - "$MNT" <<'PY' || t_fail "atime after remount"
import os, sys

d = sys.argv[1]
want = [int(x) for x in open(os.path.join(d, "atimes")).read().split()]
for i in range(20):
    got = os.stat(os.path.join(d, "f%d" % i)).st_atime_ns
    assert got == want[i], "f%d: atime %d after remount, was %d" % (
        i, got, want[i])
PY
t_umount
