#!/usr/bin/env bash
# Writes through write-only descriptors bypass the page cache: a reader
# holding cached pages sees them at once, appends and sizes stay right,
# and a write still drops file capabilities (such files keep the cached
# path, where the kernel removes security.capability).
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0
t_mount

python3 - "$MNT" <<'PY' || t_fail "write-only descriptors"
import os, struct, sys

d = sys.argv[1]
p = os.path.join(d, "f")
with open(p, "wb") as f:
    f.write(b"a" * 10000)
r = os.open(p, os.O_RDONLY)
assert os.pread(r, 10000, 0) == b"a" * 10000, "first read"
w = os.open(p, os.O_WRONLY)
os.pwrite(w, b"BBBB", 4096)
assert os.pread(r, 8, 4094) == b"aaBBBBaa", "cached reader after a write"
os.close(w)
w = os.open(p, os.O_WRONLY | os.O_APPEND)
os.write(w, b"tail")
os.write(w, b"TAIL")
os.close(w)
assert os.stat(p).st_size == 10008, os.stat(p).st_size
assert os.pread(r, 10, 9998) == b"aatailTAIL", os.pread(r, 10, 9998)
os.close(r)

# a write drops file capabilities (v2 caps: cap_net_bind_service)
c = os.path.join(d, "caps")
with open(c, "wb") as f:
    f.write(b"#!/bin/sh\n")
os.chmod(c, 0o755)
caps = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)
try:
    os.setxattr(c, "security.capability", caps)
except OSError as e:
    print("# no file capabilities here (%s): skipping that part" % e)
else:
    assert os.getxattr(c, "security.capability") == caps
    w = os.open(c, os.O_WRONLY)
    os.write(w, b"#")
    os.close(w)
    try:
        os.getxattr(c, "security.capability")
        raise SystemExit("security.capability kept after a write")
    except OSError:
        pass
PY
t_umount
