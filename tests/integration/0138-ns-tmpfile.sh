#!/usr/bin/env bash
# O_TMPFILE (FUSE_TMPFILE, Linux 6.1+) as ext4 has it: an unnamed regular
# file that is not in its directory, has nlink 0, the caller's umask and
# owner, holds data, and gets a name with linkat(AT_EMPTY_PATH) unless it
# was opened with O_EXCL (then ENOENT).  Its inode goes at the last close
# if never linked, and with the mount if the mount is killed (remount
# cleans the dead session).  No write permission on the directory:
# EACCES; a read-only mount: EROFS.  fsck stays clean throughout.
# ENGINES: sqlite redis pg
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0
t_mount -o allow_other

cat >"$T_DIR/tmpfile.py" <<'PY'
import ctypes, errno, os, sys

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, AT_EMPTY_PATH = -100, 0x1000

def link(fd, path):
    if libc.linkat(fd, b"", AT_FDCWD, path.encode(), AT_EMPTY_PATH) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)

def inodes(d):
    return os.statvfs(d).f_files - os.statvfs(d).f_ffree

def settle(d, want):
    # FUSE sends RELEASE after close(2) returns: the last close's
    # deletion lands a moment later
    import time
    for _ in range(400):
        if inodes(d) == want:
            return
        time.sleep(0.05)
    raise SystemExit("%d inodes in use, want %d" % (inodes(d), want))

d, what = sys.argv[1], sys.argv[2]
if what == "basic":
    before = sorted(os.listdir(d))
    os.umask(0o027)
    fd = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o666)
    data = os.urandom(3 * 1024 * 1024 + 17)
    assert os.write(fd, data) == len(data)
    os.fsync(fd)
    st = os.fstat(fd)
    assert st.st_nlink == 0, st
    assert st.st_size == len(data), st
    assert (st.st_mode & 0o7777) == 0o640, oct(st.st_mode)
    assert st.st_uid == 0 and st.st_gid == 0, st
    assert sorted(os.listdir(d)) == before, os.listdir(d)
    assert os.pread(fd, 100, 1000) == data[1000:1100]
    link(fd, os.path.join(d, "named"))
    assert os.fstat(fd).st_nlink == 1
    # a second link of the now named file is an ordinary hard link
    link(fd, os.path.join(d, "named2"))
    os.close(fd)
    st = os.stat(os.path.join(d, "named"))
    assert st.st_nlink == 2 and st.st_size == len(data), st
    with open(os.path.join(d, "named"), "rb") as f:
        assert f.read() == data
    open(os.path.join(d, "expect"), "wb").write(data)

    # O_EXCL: never linkable
    fd = os.open(d, os.O_TMPFILE | os.O_WRONLY | os.O_EXCL, 0o600)
    os.write(fd, b"x" * 4096)
    try:
        link(fd, os.path.join(d, "excl"))
        raise SystemExit("O_EXCL tmpfile was linked")
    except OSError as e:
        assert e.errno == errno.ENOENT, e
    os.close(fd)
    assert not os.path.exists(os.path.join(d, "excl"))

    # never linked: the inode goes at the last close
    n0 = 2  # named (+named2) and expect (the root is not counted)
    settle(d, n0)
    fds = [os.open(d, os.O_TMPFILE | os.O_RDWR, 0o600) for _ in range(5)]
    for fd in fds:
        os.write(fd, b"y" * 70000)
    assert inodes(d) == n0 + 5, (inodes(d), n0)
    for fd in fds:
        os.close(fd)
    settle(d, n0)

    # O_TMPFILE needs a directory
    try:
        os.open(os.path.join(d, "named"), os.O_TMPFILE | os.O_RDWR, 0o600)
        raise SystemExit("O_TMPFILE on a file worked")
    except OSError as e:
        assert e.errno == errno.ENOTDIR, e
elif what == "nobody":
    os.setgid(65534)
    os.setuid(65534)
    try:
        os.open(d, os.O_TMPFILE | os.O_RDWR, 0o600)
        raise SystemExit("O_TMPFILE without write permission worked")
    except OSError as e:
        assert e.errno == errno.EACCES, e
    fd = os.open(os.path.join(d, "open"), os.O_TMPFILE | os.O_RDWR, 0o600)
    assert os.fstat(fd).st_uid == 65534
    link(fd, os.path.join(d, "open", "mine"))
    os.close(fd)
    assert os.stat(os.path.join(d, "open", "mine")).st_uid == 65534
elif what == "hold":
    # keep one unnamed file open until killed
    fd = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o600)
    os.write(fd, b"z" * 300000)
    os.fsync(fd)
    open(sys.argv[3], "w").write("%d\n" % inodes(d))
    import time
    time.sleep(600)
elif what == "rofs":
    try:
        os.open(d, os.O_TMPFILE | os.O_RDWR, 0o600)
        raise SystemExit("O_TMPFILE on a read-only mount worked")
    except OSError as e:
        assert e.errno == errno.EROFS, e
elif what == "inodes":
    print(inodes(d))
PY

# the kernel's FUSE sends FUSE_TMPFILE from Linux 6.1 on; there a refusal
# (EOPNOTSUPP) is the daemon's failure, not a skip
kv=$(uname -r | sed -E 's/^([0-9]+)\.([0-9]+).*/\1 \2/')
read -r kmaj kmin <<<"$kv"
[ "$kmaj" -gt 6 ] || { [ "$kmaj" -eq 6 ] && [ "$kmin" -ge 1 ]; } ||
	t_skip "Linux $(uname -r) has no FUSE_TMPFILE (6.1+)"

python3 "$T_DIR/tmpfile.py" "$MNT" basic || t_fail "O_TMPFILE semantics"
mkdir -m 777 "$MNT/open"
python3 "$T_DIR/tmpfile.py" "$MNT" nobody || t_fail "O_TMPFILE permissions"
grep -Eq '^fuse_op tmpfile [1-9]' "$MNT/.stats" ||
	t_fail "no tmpfile requests in .stats"

# the linked data survives a remount, byte for byte
t_umount
t_run 0 tessera fsck "$(t_vol)"
t_mount -o allow_other
cmp "$MNT/named" "$MNT/expect" || t_fail "linked O_TMPFILE data after remount"
base=$(python3 "$T_DIR/tmpfile.py" "$MNT" inodes)

# killed with an unnamed file open: the remount cleans it up
python3 "$T_DIR/tmpfile.py" "$MNT" hold "$T_DIR/held" &
app=$!
for _ in $(seq 300); do
	[ -s "$T_DIR/held" ] && break
	sleep 0.1
done
read -r held <"$T_DIR/held" || t_fail "holder made no progress"
[ "$held" -eq $((base + 1)) ] || t_fail "open unnamed file: $held inodes, want $((base + 1))"
t_kill9
kill -9 $app 2>/dev/null
wait $app 2>/dev/null
: >"$T_DIR/mount.log"
t_mount
after=$(python3 "$T_DIR/tmpfile.py" "$MNT" inodes)
[ "$after" -eq "$base" ] || t_fail "after the crash: $after inodes, want $base"
t_umount
t_run 0 tessera fsck "$(t_vol)"
t_run 0 tessera gc "$(t_vol)" --json
t_grep '"leaked_objects": 0' "$T_OUT"

t_mount --read-only
python3 "$T_DIR/tmpfile.py" "$MNT" rofs || t_fail "O_TMPFILE on a read-only mount"
t_umount
t_pass
