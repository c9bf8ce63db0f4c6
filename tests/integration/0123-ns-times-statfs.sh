#!/usr/bin/env bash
# Timestamps move as on ext4 (mtime/ctime on write and truncate, ctime only
# on chmod, parent mtime/ctime on create and unlink, relatime atime,
# explicit utimes), and statfs reflects space and inode usage.
# STORES: file s3
# ENGINES: sqlite redis pg
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0
t_mount

python3 - "$MNT" <<'PY' || t_fail "timestamps / statfs"
import os, sys, time

d = sys.argv[1]
p = lambda *n: os.path.join(d, *n)
tick = lambda: time.sleep(0.02)

def ns(path):
    st = os.stat(path)
    return st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns

os.mkdir(p("dir"))
_, dm0, dc0 = ns(p("dir"))
tick()
t0 = time.time_ns()
fd = os.open(p("dir", "f"), os.O_CREAT | os.O_RDWR, 0o644)
a1, m1, c1 = ns(p("dir", "f"))
_, dm1, dc1 = ns(p("dir"))
assert dm1 > dm0 and dc1 > dc0, "parent mtime/ctime on create"
assert m1 >= t0 - 10**7 and c1 >= t0 - 10**7, "new file times are now"

tick()
os.write(fd, b"x" * 100000)
_, m2, c2 = ns(p("dir", "f"))
assert m2 > m1 and c2 > c1, "mtime/ctime after write (before close)"
os.close(fd)
_, m3, c3 = ns(p("dir", "f"))
assert m3 >= m2 and c3 >= c2, "times go back after close"

tick()
os.chmod(p("dir", "f"), 0o600)
a4, m4, c4 = ns(p("dir", "f"))
assert m4 == m3 and c4 > c3, "chmod: ctime only"

# relatime: a read after a modification moves atime, a second does not
tick()
with open(p("dir", "f"), "rb") as f:
    f.read(10)
a5, m5, c5 = ns(p("dir", "f"))
assert a5 > m5, "atime after read (%d <= %d)" % (a5, m5)
assert c5 == c4, "reading changed ctime"
tick()
with open(p("dir", "f"), "rb") as f:
    f.read(10)
a6, _, _ = ns(p("dir", "f"))
assert a6 == a5, "relatime: second read moved atime"

# truncate, explicit utimes
tick()
os.truncate(p("dir", "f"), 10)
_, m7, c7 = ns(p("dir", "f"))
assert m7 > m5 and c7 > c5, "truncate moves mtime/ctime"
os.utime(p("dir", "f"), ns=(1_000_000_000_123, 2_000_000_000_456))
a8, m8, c8 = ns(p("dir", "f"))
assert (a8, m8) == (1_000_000_000_123, 2_000_000_000_456), (a8, m8)
assert c8 >= c7

# link / unlink / rename move ctime of the inode and mtime of the parents
tick()
_, dm9, _ = ns(p("dir"))
os.link(p("dir", "f"), p("dir", "g"))
_, m10, c10 = ns(p("dir", "f"))
_, dm10, _ = ns(p("dir"))
assert c10 > c8 and m10 == m8, "link: ctime only"
assert dm10 > dm9, "link: parent mtime"
tick()
os.unlink(p("dir", "g"))
_, dm11, _ = ns(p("dir"))
assert dm11 > dm10, "unlink: parent mtime"
tick()
os.rename(p("dir", "f"), p("f2"))
_, dm12, _ = ns(p("dir"))
assert dm12 > dm11, "rename: source parent mtime"

# statfs: space and inodes
def usage():
    s = os.statvfs(d)
    return (s.f_blocks - s.f_bfree) * s.f_frsize, s.f_files - s.f_ffree

u0, i0 = usage()
with open(p("space"), "wb") as f:
    f.write(os.urandom(20 << 20))
    f.flush()
    os.fsync(f.fileno())
for i in range(50):
    open(p("i%d" % i), "w").close()
u1, i1 = usage()
assert u1 - u0 >= 20 << 20, "statfs space after 20 MiB: %d -> %d" % (u0, u1)
assert i1 - i0 >= 51, "statfs inodes: %d -> %d" % (i0, i1)
os.unlink(p("space"))
u2, _ = usage()
assert u1 - u2 >= 20 << 20, "statfs space after delete: %d -> %d" % (u1, u2)
print("ok")
PY
df "$MNT" >/dev/null || t_fail "df"
t_umount
