#!/usr/bin/env bash
# Two mounts A and B of one volume (shared metadata, one file:// store,
# their own TESSERA_HOMEs): close-to-open consistency (a file written and
# closed on A is read whole on B at its next open, also when it shrank or
# was rewritten in place, even within the attribute timeout), renames and
# unlinks on A seen on B after the entry timeout, hard links and inode
# numbers agreeing, and both sessions listed by status until each mount
# ends.
# ENGINES: redis pg mysql etcd
# TIMEOUT: 180
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/multi.sh"
t_require_shared

t_format --trash-days 0
t_mount_n 1 --attr-timeout 1 --entry-timeout 1
t_mount_n 2 --attr-timeout 1 --entry-timeout 1
A=$(t_mnt 1)
B=$(t_mnt 2)

# both sessions are listed, with their mount points
t_run 0 tessera status "$T_META" --json
python3 - "$T_OUT" "$A" "$B" <<'PY' || t_fail "status lists the sessions"
import json, sys
s = json.load(open(sys.argv[1]))["sessions"]
mps = sorted(x["mountpoint"] for x in s)
assert mps == sorted(sys.argv[2:]), mps
assert all(not x["stale"] and x["pid"] > 0 and x["host"] for x in s), s
assert len({x["id"] for x in s}) == 2, s
PY
t_run 0 tessera status "$T_META"
t_grep "^sessions: *2" "$T_OUT"

python3 - "$A" "$B" <<'PY' || t_fail "close-to-open between two mounts"
import os, sys, time
A, B = sys.argv[1:3]

def put(root, name, data, mode="wb"):
    with open(os.path.join(root, name), mode) as f:
        f.write(data)

def get(root, name):
    with open(os.path.join(root, name), "rb") as f:
        st = os.fstat(f.fileno())
        return f.read(), st.st_size

data = os.urandom(3 * 1024 * 1024 + 123)
put(A, "f", data)
got, size = get(B, "f")
assert size == len(data) and got == data, (size, len(got))

# B caches f's attributes; A grows it: B's next open sees it all at once
os.stat(os.path.join(B, "f"))
more = os.urandom(777777)
put(A, "f", more, "ab")
got, size = get(B, "f")
assert size == len(data) + len(more), size
assert got == data + more, "appended bytes"

# A shrinks it and rewrites the start in place
put(A, "f", b"short")
got, size = get(B, "f")
assert (got, size) == (b"short", 5), (got[:20], size)
with open(os.path.join(A, "f"), "r+b") as f:
    f.write(b"SH")
assert get(B, "f") == (b"SHort", 5)

# writes on B are seen on A the same way; inode numbers agree
put(B, "g", b"from b" * 1000)
assert get(A, "g") == (b"from b" * 1000, 6000)
assert os.stat(os.path.join(A, "g")).st_ino == os.stat(os.path.join(B, "g")).st_ino
os.link(os.path.join(A, "g"), os.path.join(A, "g2"))
time.sleep(1.5)
st = os.stat(os.path.join(B, "g2"))
assert st.st_nlink == 2 and st.st_ino == os.stat(os.path.join(B, "g")).st_ino

# rename and unlink on A: seen on B after the entry/attribute timeout
os.makedirs(os.path.join(A, "d/e"))
put(A, "d/e/x", b"x")
assert os.path.exists(os.path.join(B, "d/e/x"))
os.rename(os.path.join(A, "d/e/x"), os.path.join(A, "d/y"))
os.unlink(os.path.join(A, "g"))
time.sleep(1.5)
assert not os.path.exists(os.path.join(B, "d/e/x")), "old name still on B"
assert get(B, "d/y") == (b"x", 1)
assert not os.path.exists(os.path.join(B, "g")), "unlinked name still on B"
assert os.stat(os.path.join(B, "g2")).st_nlink == 1
assert sorted(os.listdir(os.path.join(B, "d"))) == ["e", "y"]
assert sorted(os.listdir(B)) == sorted(os.listdir(A)) == ["d", "f", "g2"]
print("ok")
PY

# ending B removes its session; A still sees everything
t_umount_n 2
t_run 0 tessera status "$T_META" --json
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["sessions"]
assert [x["mountpoint"] for x in s] == [sys.argv[2]], s
' "$T_OUT" "$A" || t_fail "the session of the unmounted B is gone"
[ "$(cat "$A/d/y")" = x ] || t_fail "A lost d/y"
t_umount_n 1
t_run 0 tessera status "$T_META"
t_grep "^sessions: *none" "$T_OUT"
t_pass
