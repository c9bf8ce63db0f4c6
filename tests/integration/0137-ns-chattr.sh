#!/usr/bin/env bash
# chattr +i and +a (FS_IOC_GETFLAGS / FS_IOC_SETFLAGS through FUSE ioctl),
# enforced as ext4 does: every refused operation fails with EPERM, also
# for root; lsattr shows the flags; clearing them allows the operations
# again; uid 1000 may not set or clear them.
# ENGINES: sqlite redis pg
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

command -v chattr >/dev/null && command -v lsattr >/dev/null ||
	t_skip "no chattr/lsattr (e2fsprogs)"

t_format --trash-days 0
t_mount -o allow_other

d=$MNT/c
mkdir "$d" "$d/idir" "$d/adir"
echo data >"$d/i"
echo data >"$d/a"
echo other >"$d/other"
echo x >"$d/idir/in"
echo x >"$d/adir/in"

chattr +i "$d/i" "$d/idir" || t_fail "chattr +i"
chattr +a "$d/a" "$d/adir" || t_fail "chattr +a"
lsattr -d "$d/i" | grep -q '^----i' || t_fail "lsattr +i: $(lsattr -d "$d/i")"
lsattr -d "$d/a" | grep -q '^-----a' || t_fail "lsattr +a: $(lsattr -d "$d/a")"
lsattr -d "$d/idir" | grep -q '^----i' || t_fail "lsattr dir +i"
lsattr -d "$d/other" | grep -q '^----------' || t_fail "lsattr none"

python3 - "$d" refuse <<'PY' || t_fail "refused operations"
import errno, os, sys

d, what = sys.argv[1], sys.argv[2]
p = lambda *n: os.path.join(d, *n)

def expect(err, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        assert e.errno == err, (fn.__name__, args, e)
        return
    sys.exit("%s%r did not fail with %s" %
             (fn.__name__, args, errno.errorcode[err]))

def openw(path, flags):
    os.close(os.open(path, flags))

EPERM = errno.EPERM
# immutable file
expect(EPERM, openw, p("i"), os.O_WRONLY)
expect(EPERM, openw, p("i"), os.O_RDWR)
expect(EPERM, openw, p("i"), os.O_WRONLY | os.O_APPEND)
expect(EPERM, openw, p("i"), os.O_RDONLY | os.O_TRUNC)
expect(EPERM, os.truncate, p("i"), 0)
expect(EPERM, os.unlink, p("i"))
expect(EPERM, os.rename, p("i"), p("i2"))
expect(EPERM, os.rename, p("other"), p("i"))
expect(EPERM, os.link, p("i"), p("ilink"))
expect(EPERM, os.chmod, p("i"), 0o600)
expect(EPERM, os.chown, p("i"), 1000, 1000)
expect(EPERM, os.utime, p("i"), (1, 1))
expect(EPERM, os.utime, p("i"), None)
expect(EPERM, os.setxattr, p("i"), "user.x", b"1")
expect(EPERM, os.removexattr, p("i"), "user.x")
assert open(p("i")).read() == "data\n"
# immutable directory: no new or removed names
expect(EPERM, openw, p("idir", "new"), os.O_WRONLY | os.O_CREAT)
expect(EPERM, os.mkdir, p("idir", "sub"))
expect(EPERM, os.unlink, p("idir", "in"))
expect(EPERM, os.rename, p("idir", "in"), p("moved"))
expect(EPERM, os.rmdir, p("idir"))
# append-only file: appends only
fd = os.open(p("a"), os.O_WRONLY | os.O_APPEND)
os.write(fd, b"more\n")
os.close(fd)
assert open(p("a")).read() == "data\nmore\n"
expect(EPERM, openw, p("a"), os.O_WRONLY)
expect(EPERM, openw, p("a"), os.O_RDWR)
expect(EPERM, openw, p("a"), os.O_WRONLY | os.O_APPEND | os.O_TRUNC)
expect(EPERM, os.truncate, p("a"), 0)
expect(EPERM, os.unlink, p("a"))
expect(EPERM, os.rename, p("a"), p("a2"))
expect(EPERM, os.rename, p("other"), p("a"))
expect(EPERM, os.link, p("a"), p("alink"))
expect(EPERM, os.chmod, p("a"), 0o600)
expect(EPERM, os.setxattr, p("a"), "user.x", b"1")
# append-only directory: names come, never go
open(p("adir", "new"), "w").close()
expect(EPERM, os.unlink, p("adir", "in"))
expect(EPERM, os.rename, p("adir", "in"), p("moved"))
print("ok")
PY

# uid 1000, owner of its file, may neither set nor clear the flags
if command -v setpriv >/dev/null && [ -x /usr/bin/python3 ]; then
	chmod 777 "$d"
	echo u >"$d/u"
	chown 1000:1000 "$d/u"
	chattr +a "$d/u" || t_fail "chattr +a u"
	setpriv --reuid=1000 --regid=1000 --clear-groups \
		/usr/bin/python3 - "$d" <<'PY' || t_fail "non-root chattr"
import errno, fcntl, os, struct, sys

FS_IOC_GETFLAGS, FS_IOC_SETFLAGS = 0x80086601, 0x40086602
d = sys.argv[1]
for name, flags in (("u", 0), ("other", 0x10)):
    fd = os.open(os.path.join(d, name), os.O_RDONLY)
    try:
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", flags))
        sys.exit("uid 1000 changed the flags of " + name)
    except OSError as e:
        assert e.errno == errno.EPERM, e
    os.close(fd)
PY
	lsattr -d "$d/u" | grep -q '^-----a' || t_fail "u lost +a"
	chattr -a "$d/u" || t_fail "chattr -a u"
fi

chattr -i "$d/i" "$d/idir" || t_fail "chattr -i"
chattr -a "$d/a" "$d/adir" || t_fail "chattr -a"
lsattr -d "$d/i" | grep -q '^----------' || t_fail "lsattr -i"

python3 - "$d" <<'PY' || t_fail "operations after clearing the flags"
import os, sys

d = sys.argv[1]
p = lambda *n: os.path.join(d, *n)
for f in ("i", "a"):
    os.setxattr(p(f), "user.x", b"1")
    os.removexattr(p(f), "user.x")
    os.chmod(p(f), 0o600)
    os.utime(p(f), (1, 1))
    with open(p(f), "r+") as h:
        h.write("over")
    os.truncate(p(f), 2)
    os.link(p(f), p(f + "link"))
    os.rename(p(f), p(f + "2"))
    os.unlink(p(f + "2"))
    os.unlink(p(f + "link"))
for sub in ("idir", "adir"):
    open(p(sub, "new2"), "w").close()
    os.rename(p(sub, "in"), p(sub + "-in"))
    os.unlink(p(sub + "-in"))
    for n in os.listdir(p(sub)):
        os.unlink(p(sub, n))
    os.rmdir(p(sub))
print("ok")
PY

t_umount
