#!/usr/bin/env bash
# Names: hard links and nlink, symlinks and ELOOP, rename over a file that
# another descriptor still reads, RENAME_NOREPLACE / RENAME_EXCHANGE,
# unlink while open (data stays readable and writable until the last
# close), directory rules.
# STORES: file s3
# ENGINES: sqlite redis pg mysql
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0
t_mount

python3 - "$MNT" <<'PY' || t_fail "namespace semantics"
import ctypes, errno, os, sys

d = sys.argv[1]
p = lambda *n: os.path.join(d, *n)
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100

def renameat2(a, b, flags):
    if libc.syscall(316, AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), a)

def expect(err, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        assert e.errno == err, (fn.__name__, args, e)
        return
    sys.exit("%s%r did not fail with %s" % (fn.__name__, args, errno.errorcode[err]))

# hard links
open(p("a"), "w").write("A" * 1000)
os.link(p("a"), p("b"))
os.mkdir(p("sub"))
os.link(p("a"), p("sub", "c"))
st = os.stat(p("a"))
assert st.st_nlink == 3, st.st_nlink
assert os.stat(p("sub", "c")).st_ino == st.st_ino
with open(p("b"), "a") as f:
    f.write("more")
assert open(p("sub", "c")).read() == "A" * 1000 + "more"
os.unlink(p("a"))
assert os.stat(p("b")).st_nlink == 2
expect(errno.EEXIST, os.link, p("b"), p("sub", "c"))
expect(errno.EPERM, os.link, p("sub"), p("subl"))

# symlinks and ELOOP
os.symlink("b", p("lb"))
assert os.readlink(p("lb")) == "b"
assert open(p("lb")).read().startswith("AAA")
assert os.lstat(p("lb")).st_size == 1
os.symlink("loop2", p("loop1"))
os.symlink("loop1", p("loop2"))
expect(errno.ELOOP, open, p("loop1"))
os.symlink("self", p("self"))
expect(errno.ELOOP, os.stat, p("self"))
os.symlink("nowhere", p("dangling"))
expect(errno.ENOENT, os.stat, p("dangling"))
expect(errno.EEXIST, os.symlink, "x", p("lb"))
os.symlink("../b", p("sub", "up"))
assert open(p("sub", "up")).read().startswith("AAA")

# rename over a file another descriptor still reads
open(p("old"), "wb").write(b"old contents" * 1000)
open(p("new"), "wb").write(b"new contents")
with open(p("old"), "rb") as r:
    os.rename(p("new"), p("old"))
    assert r.read() == b"old contents" * 1000, "reader of the replaced file"
assert open(p("old"), "rb").read() == b"new contents"
assert not os.path.exists(p("new"))

# renameat2 flags
open(p("x"), "w").write("x")
open(p("y"), "w").write("y")
expect(errno.EEXIST, renameat2, p("x"), p("y"), 1)
renameat2(p("x"), p("z"), 1)
renameat2(p("z"), p("y"), 2)
assert open(p("y")).read() == "x" and open(p("z")).read() == "y"
os.mkdir(p("dx"))
renameat2(p("dx"), p("z"), 2)
assert os.path.isdir(p("z")) and open(p("dx")).read() == "y"

# directory rules
os.mkdir(p("full"))
open(p("full", "f"), "w").close()
expect(errno.ENOTEMPTY, os.rmdir, p("full"))
os.mkdir(p("empty"))
expect(errno.ENOTEMPTY, os.rename, p("empty"), p("full"))
os.rename(p("full"), p("empty"))
assert os.listdir(p("empty")) == ["f"]
expect(errno.EINVAL, os.rename, p("empty"), p("empty", "inside"))
expect(errno.ENOTDIR, os.rename, p("empty"), p("old"))
expect(errno.EISDIR, os.rename, p("old"), p("empty"))
expect(errno.EEXIST, os.mkdir, p("empty"))
expect(errno.ENOTDIR, os.listdir, p("old"))
expect(errno.ENOENT, os.unlink, p("nothing"))
expect(errno.EISDIR, os.unlink, p("empty"))
expect(errno.ENOTDIR, os.rmdir, p("old"))
assert os.stat(p("empty")).st_nlink == 2
os.mkdir(p("empty", "s1"))
assert os.stat(p("empty")).st_nlink == 3
expect(errno.ENAMETOOLONG, open, p("n" * 256), "w")

# unlink while open: readable and writable until the last close
data = os.urandom(3 << 20)
open(p("ul"), "wb").write(data)
fd = os.open(p("ul"), os.O_RDWR)
fd2 = os.open(p("ul"), os.O_RDONLY)
os.unlink(p("ul"))
assert not os.path.exists(p("ul"))
assert os.pread(fd, len(data), 0) == data
os.pwrite(fd, b"still here", 100)
os.fsync(fd)
os.close(fd)
assert os.pread(fd2, 10, 100) == b"still here"
assert os.fstat(fd2).st_nlink == 0
os.close(fd2)
print("ok")
PY
t_umount
