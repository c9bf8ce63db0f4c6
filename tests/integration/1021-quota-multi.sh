#!/usr/bin/env bash
# Quotas across two mounts of one Redis/PostgreSQL volume: creates racing
# from both mounts stop at exactly the inode limit (usage is charged in
# each create's transaction, not merged later), space written and closed
# on one mount counts on the other (dd there stops with EDQUOT after
# exactly the bytes left), a rename into the directory on the second
# mount is refused, and a quota set while both are mounted binds both.
# ENGINES: redis pg
# TIMEOUT: 180
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/multi.sh"
t_require_shared

t_format --trash-days 0
t_mount_n 1
t_mount_n 2
A=$(t_mnt 1)
B=$(t_mnt 2)
V=$(t_vol)

mkdir "$A/q" "$A/out"
t_run 0 tessera quota set "$V" --path /q --inodes 40 --capacity 2M
t_grep '^/q space 0/2097152 inodes 0/40$' "$T_OUT"

# both mounts create as fast as they can until EDQUOT
python3 - "$A" "$B" <<'PY' || t_fail "creates racing from two mounts"
import errno, os, sys
from multiprocessing import Process, Queue

def fill(root, tag, q):
    n = 0
    try:
        for i in range(1000):
            open(f"{root}/q/{tag}{i}", "w").close()
            n += 1
    except OSError as e:
        if e.errno != errno.EDQUOT:
            q.put(repr(e))
            return
    q.put(n)

q = Queue()
ps = [Process(target=fill, args=(r, t, q)) for r, t in
      ((sys.argv[1], "a"), (sys.argv[2], "b"))]
for p in ps:
    p.start()
got = [q.get() for _ in ps]
for p in ps:
    p.join()
assert all(isinstance(x, int) for x in got), got
assert sum(got) == 40, got
assert len(os.listdir(f"{sys.argv[1]}/q")) == 40
PY
t_run 0 tessera quota get "$V" --path /q
t_grep '^/q space 0/2097152 inodes 40/40$' "$T_OUT"

# space: 1 MiB written and closed on A leaves 1 MiB for B
rm "$A"/q/a* "$A"/q/b*
head -c 1048576 /dev/zero >"$A/q/one" || t_fail "1 MiB on A"
t_run 1 dd if=/dev/zero of="$B/q/two" bs=256k count=8
t_grep 'Disk quota exceeded' "$T_ERR"
[ "$(stat -c %s "$B/q/two")" = 1048576 ] ||
	t_fail "dd on B wrote $(stat -c %s "$B/q/two") bytes, wanted 1048576"

# a rename into the full directory on B is refused; out of it, allowed
echo x >"$B/out/small"
python3 - "$B" <<'PY' || t_fail "rename into the quota on B"
import errno, os, sys
B = sys.argv[1]
try:
    os.rename(f"{B}/out/small", f"{B}/q/small")
    raise AssertionError("rename into a full quota passed")
except OSError as e:
    assert e.errno == errno.EDQUOT, e
os.rename(f"{B}/q/two", f"{B}/out/two")
os.rename(f"{B}/out/small", f"{B}/q/small")
PY
t_run 0 tessera quota get "$V" --path /q --json
python3 - "$T_OUT" <<'PY' || t_fail "usage after the moves"
import json, sys
q = json.load(open(sys.argv[1]))
assert q["used_space"] == 1048576 + 4096 and q["used_inodes"] == 2, q
PY
t_run 0 tessera quota check "$V"
t_grep '^/q: ok' "$T_OUT"

t_umount_n 1
t_umount_n 2
t_pass
