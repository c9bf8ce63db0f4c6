#!/usr/bin/env bash
# FUSE over io_uring (Linux 6.14+): with fuse.enable_uring=Y the mount
# serves requests through per-CPU rings (.stats says fuse_uring 1) and
# behaves as on /dev/fuse: names, data (1 MiB writes through the ring's
# payload), xattrs, concurrent writers, and blocking waits.  A lock waiter
# and the holder's unlock pinned to the same CPU share a ring: the waiter
# must hand its ring over or the unlock never runs.  Unmount ends the
# rings; --no-uring stays on /dev/fuse.  Skipped when the kernel has no
# io_uring support for FUSE.
# SMOKE
# TIMEOUT: 180
. "$(dirname "$0")/../lib/mount.sh"

P=/sys/module/fuse/parameters/enable_uring
[ -w "$P" ] || t_skip "kernel without FUSE over io_uring ($P)"
old=$(cat "$P")
t_on_exit "echo $old >$P"
echo Y >"$P" || t_skip "cannot enable $P"

t_format --trash-days 0
t_mount
grep -qx 'fuse_uring 1' "$MNT/.stats" ||
	t_fail "rings not serving: $(grep fuse_uring "$MNT/.stats")"

python3 - "$MNT" <<'PY' || t_fail "file system semantics over the rings"
import errno, fcntl, hashlib, os, signal, sys, time

d = sys.argv[1]
# names and small files
os.mkdir(os.path.join(d, "a"))
for i in range(200):
    with open(os.path.join(d, "a", "f%03d" % i), "wb") as f:
        f.write(b"%d\n" % i * 50)
names = sorted(os.listdir(os.path.join(d, "a")))
assert names == ["f%03d" % i for i in range(200)], names[:5]
for i in range(0, 200, 7):
    p = os.path.join(d, "a", "f%03d" % i)
    assert open(p, "rb").read() == b"%d\n" % i * 50, p
    assert os.stat(p).st_size == len(b"%d\n" % i * 50)
os.rename(os.path.join(d, "a", "f000"), os.path.join(d, "moved"))
os.link(os.path.join(d, "moved"), os.path.join(d, "hard"))
assert os.stat(os.path.join(d, "hard")).st_nlink == 2
os.symlink("moved", os.path.join(d, "sym"))
assert os.readlink(os.path.join(d, "sym")) == "moved"
os.setxattr(os.path.join(d, "moved"), "user.k", b"v" * 300)
assert os.getxattr(os.path.join(d, "moved"), "user.k") == b"v" * 300
for i in range(1, 200, 2):
    os.unlink(os.path.join(d, "a", "f%03d" % i))
assert len(os.listdir(os.path.join(d, "a"))) == 99
try:
    os.stat(os.path.join(d, "a", "f001"))
    raise SystemExit("unlinked file still there")
except FileNotFoundError:
    pass

# big writes: 1 MiB requests fill the ring payload
blob = os.urandom(1 << 20)
h = hashlib.sha256()
with open(os.path.join(d, "big"), "wb") as f:
    for i in range(12):
        chunk = bytes([i]) + blob[1:]
        f.write(chunk)
        h.update(chunk)
    os.fsync(f.fileno())
assert hashlib.sha256(open(os.path.join(d, "big"), "rb").read()).digest() \
    == h.digest(), "big file differs"
os.truncate(os.path.join(d, "big"), 3 << 20)
assert os.stat(os.path.join(d, "big")).st_size == 3 << 20

# concurrent writers on both CPUs
kids = []
for k in range(4):
    pid = os.fork()
    if pid == 0:
        os.sched_setaffinity(0, {k % os.cpu_count()})
        data = (b"writer%d" % k) * 20000
        for j in range(20):
            p = os.path.join(d, "w%d_%d" % (k, j))
            with open(p, "wb") as f:
                f.write(data)
            if open(p, "rb").read() != data:
                os._exit(3)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    assert os.waitpid(pid, 0)[1] == 0, "a concurrent writer failed"

# a lock wait and the unlock that ends it, both on CPU 0
os.sched_setaffinity(0, {0})
path = os.path.join(d, "lockfile")
open(path, "w").write("x")
fd = os.open(path, os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    signal.alarm(30)
    cfd = os.open(path, os.O_RDWR)
    fcntl.lockf(cfd, fcntl.LOCK_EX)  # blocks until the parent unlocks
    os.write(w, b"got")
    os._exit(0)
os.close(w)
time.sleep(0.5)
fcntl.lockf(fd, fcntl.LOCK_UN)
signal.alarm(30)
assert os.read(r, 3) == b"got", "lock waiter never got the lock"
assert os.waitpid(pid, 0)[1] == 0
signal.alarm(0)
PY

t_umount
t_mount --no-uring
grep -qx 'fuse_uring 0' "$MNT/.stats" ||
	t_fail "--no-uring: $(grep fuse_uring "$MNT/.stats")"
[ "$(cat "$MNT/a/f002")" = "$(printf '2\n%.0s' $(seq 50))" ] ||
	t_fail "data written over the rings differs on /dev/fuse"
[ "$(stat -c %s "$MNT/big")" = $((3 << 20)) ] || t_fail "big file size"
t_umount
t_pass
