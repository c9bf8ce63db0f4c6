#!/usr/bin/env bash
# Extended attributes, and permission checks for a non-root caller
# (setpriv uid/gid 1000, -o allow_other): mode bits, sticky directories,
# chmod/chown rules, open for write of a read-only file, O_TRUNC, access(2).
# STORES: file s3
# ENGINES: sqlite redis pg
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0
t_mount -o allow_other

python3 - "$MNT" <<'PY' || t_fail "xattrs"
import errno, os, sys

d = sys.argv[1]
f = os.path.join(d, "x")
open(f, "w").write("x")
os.setxattr(f, "user.one", b"1")
os.setxattr(f, "user.two", b"\0binary\xff" * 100)
assert os.getxattr(f, "user.one") == b"1"
assert os.getxattr(f, "user.two") == b"\0binary\xff" * 100
assert sorted(os.listxattr(f)) == ["user.one", "user.two"]
try:
    os.setxattr(f, "user.one", b"2", os.XATTR_CREATE)
    sys.exit("XATTR_CREATE over an existing name")
except OSError as e:
    assert e.errno == errno.EEXIST
try:
    os.setxattr(f, "user.none", b"2", os.XATTR_REPLACE)
    sys.exit("XATTR_REPLACE of a missing name")
except OSError as e:
    assert e.errno == errno.ENODATA
os.removexattr(f, "user.one")
try:
    os.getxattr(f, "user.one")
    sys.exit("removed xattr still there")
except OSError as e:
    assert e.errno == errno.ENODATA
os.mkdir(os.path.join(d, "dx"))
os.setxattr(os.path.join(d, "dx"), "user.dir", b"yes")
assert os.getxattr(os.path.join(d, "dx"), "user.dir") == b"yes"
print("ok")
PY
command -v getfattr >/dev/null && {
	setfattr -n user.tool -v hello "$MNT/x" || t_fail "setfattr"
	[ "$(getfattr --only-values -n user.tool "$MNT/x")" = hello ] || t_fail "getfattr"
}

# permissions: root prepares, uid 1000 tries
command -v setpriv >/dev/null || t_skip "no setpriv"
mkdir "$MNT/pub" "$MNT/priv" "$MNT/sticky" "$MNT/grp"
chmod 777 "$MNT/pub"
chmod 700 "$MNT/priv"
chmod 1777 "$MNT/sticky"
echo secret >"$MNT/priv/s"
echo rootfile >"$MNT/sticky/rootfile"
chmod 666 "$MNT/sticky/rootfile"
echo ro >"$MNT/pub/ro"
chmod 444 "$MNT/pub/ro"
chown 0:1002 "$MNT/grp"
chmod 770 "$MNT/grp"
chmod 755 "$MNT"

py=/usr/bin/python3
[ -x "$py" ] || t_skip "no system python3 for uid 1000"
setpriv --reuid=1000 --regid=1000 --clear-groups "$py" - "$MNT" <<'PY' || t_fail "permission checks as uid 1000"
import errno, os, sys

d = sys.argv[1]
p = lambda *n: os.path.join(d, *n)

def expect(err, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        assert e.errno == err, (fn.__name__, args, e)
        return
    sys.exit("%s%r did not fail with %s" % (fn.__name__, args, errno.errorcode[err]))

assert os.getuid() == 1000
expect(errno.EACCES, os.listdir, p("priv"))
expect(errno.EACCES, open, p("priv", "s"))
expect(errno.EACCES, open, p("newfile"), "w")
expect(errno.EACCES, os.mkdir, p("newdir"))
expect(errno.EACCES, open, p("pub", "ro"), "w")
expect(errno.EACCES, os.truncate, p("pub", "ro"), 0)
expect(errno.EPERM, os.chmod, p("pub", "ro"), 0o666)
expect(errno.EPERM, os.chown, p("pub", "ro"), 1000, 1000)
assert not os.access(p("pub", "ro"), os.W_OK)
assert os.access(p("pub", "ro"), os.R_OK)
assert not os.access(p("priv"), os.X_OK)
# own files in a world-writable directory
open(p("pub", "mine"), "w").write("m")
st = os.stat(p("pub", "mine"))
assert (st.st_uid, st.st_gid) == (1000, 1000), st
os.chmod(p("pub", "mine"), 0o600)
assert os.stat(p("pub", "mine")).st_mode & 0o777 == 0o600
expect(errno.EPERM, os.chown, p("pub", "mine"), 0, -1)
# sticky directory: cannot remove or rename root's file, can write it
expect(errno.EPERM, os.unlink, p("sticky", "rootfile"))
expect(errno.EPERM, os.rename, p("sticky", "rootfile"), p("sticky", "stolen"))
open(p("sticky", "rootfile"), "a").write("appended")
open(p("sticky", "own"), "w").close()
os.unlink(p("sticky", "own"))
# group directory without supplementary groups
expect(errno.EACCES, os.listdir, p("grp"))
# a descriptor opened for writing keeps working after chmod 000
fd = os.open(p("pub", "mine"), os.O_WRONLY)
os.chmod(p("pub", "mine"), 0)
os.write(fd, b"still")
os.ftruncate(fd, 2)
os.close(fd)
expect(errno.EACCES, open, p("pub", "mine"))
print("ok")
PY

# supplementary groups count
setpriv --reuid=1000 --regid=1000 --groups=1002 ls "$MNT/grp" >/dev/null ||
	t_fail "group member cannot list a 770 directory of its group"
setpriv --reuid=1001 --regid=1001 --groups=1002 touch "$MNT/grp/by-group" ||
	t_fail "supplementary group cannot create in a 770 directory"
t_umount
