#!/usr/bin/env bash
# The kernel keeps a file's page cache across opens while the file is
# unchanged (a second read costs no read request), and drops it when the
# file changed: through another descriptor, truncate(2), O_TRUNC.
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0
t_mount

python3 - "$MNT" <<'PY' || t_fail "page cache across opens"
import os, sys

d = sys.argv[1]
p = os.path.join(d, "f")

def reads():
    for line in open(os.path.join(d, ".stats")):
        k, v = line.split()[:2]
        if k == "reads":
            return int(v)

def whole():
    with open(p, "rb") as f:
        return f.read()

data = os.urandom(1 << 20)
with open(p, "wb") as f:
    f.write(data)
assert whole() == data, "first read"
r0 = reads()
assert whole() == data, "second read"
assert reads() == r0, "unchanged file read again from the mount"

fd = os.open(p, os.O_RDWR)
os.pwrite(fd, b"XYZ", 4096)
os.close(fd)
want = data[:4096] + b"XYZ" + data[4099:]
assert whole() == want, "read after a write through another descriptor"
r1 = reads()
assert whole() == want, "read again"
assert reads() == r1, "second read after the write not cached"

os.truncate(p, 100)
assert whole() == want[:100], "read after truncate"
with open(p, "wb") as f:
    f.write(b"new")
assert whole() == b"new", "read after O_TRUNC rewrite"
PY
t_umount
