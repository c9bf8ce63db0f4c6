#!/usr/bin/env bash
# Locks across two mounts A and B of one volume: a flock held on A makes a
# non-blocking flock on B fail with EWOULDBLOCK until A releases it, and a
# blocking one wait for that; overlapping fcntl write locks conflict (F_GETLK
# on B names A's range), disjoint ones do not; after kill -9 of mount A
# (a process of this host that is gone) B's heartbeat drops A's session and
# its locks without waiting for it to expire, B gets them, and status no
# longer lists A.
# ENGINES: redis pg mysql etcd
# TIMEOUT: 180
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/multi.sh"
t_require_shared

t_format --trash-days 0
t_mount_n 1 --heartbeat 1
t_mount_n 2 --heartbeat 1
A=$(t_mnt 1)
B=$(t_mnt 2)
echo data >"$A/lockfile"

python3 - "$A" "$B" <<'PY' || t_fail "locks between two mounts"
import errno, fcntl, os, struct, sys, time
A, B = sys.argv[1:3]
fa = os.path.join(A, "lockfile")
fb = os.path.join(B, "lockfile")
FL = "hhqqi4x"

def nb_flock(fd, op):
    try:
        fcntl.flock(fd, op | fcntl.LOCK_NB)
        return True
    except OSError as e:
        assert e.errno == errno.EWOULDBLOCK, e
        return False

def nb_lockf(fd, op, length, start):
    try:
        fcntl.lockf(fd, op | fcntl.LOCK_NB, length, start)
        return True
    except OSError as e:
        assert e.errno in (errno.EAGAIN, errno.EACCES), e
        return False

def getlk(fd, typ, start, length):
    r = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(FL, typ, 0, start, length, 0))
    return struct.unpack(FL, r)

def in_child(fn):
    """Run fn in a child process; returns its pid and a read pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            fn(w)
            os._exit(0)
        except BaseException as e:
            print("child:", repr(e), file=sys.stderr)
            os._exit(1)
    os.close(w)
    return pid, r

# ---- flock ----
a = os.open(fa, os.O_RDWR)
b = os.open(fb, os.O_RDWR)
fcntl.flock(a, fcntl.LOCK_EX)
assert not nb_flock(b, fcntl.LOCK_EX), "two exclusive flocks on two mounts"
assert not nb_flock(b, fcntl.LOCK_SH), "shared under exclusive on another mount"
fcntl.flock(a, fcntl.LOCK_SH)
assert nb_flock(b, fcntl.LOCK_SH), "two shared flocks"
assert not nb_flock(a, fcntl.LOCK_EX), "upgrade while another mount shares"
fcntl.flock(b, fcntl.LOCK_UN)
fcntl.flock(a, fcntl.LOCK_EX)

# a blocking flock on B waits until A releases
def waiter(w):
    fd = os.open(fb, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(w, b"got")
    fcntl.flock(fd, fcntl.LOCK_UN)
pid, r = in_child(waiter)
time.sleep(1.0)
assert os.waitpid(pid, os.WNOHANG) == (0, 0), "waiter got the lock A holds"
fcntl.flock(a, fcntl.LOCK_UN)
assert os.read(r, 3) == b"got"
assert os.waitpid(pid, 0)[1] == 0
assert nb_flock(b, fcntl.LOCK_EX), "flock free after the waiter released"
assert not nb_flock(a, fcntl.LOCK_SH)
os.close(b)                       # the last close releases B's flock
b = os.open(fb, os.O_RDWR)
deadline = time.time() + 5        # (the kernel sends that release async)
while not nb_flock(a, fcntl.LOCK_EX):
    assert time.time() < deadline, "B's flock outlived its close"
    time.sleep(0.05)
fcntl.flock(a, fcntl.LOCK_UN)

# ---- fcntl byte ranges ----
fcntl.lockf(a, fcntl.LOCK_EX, 100, 0)       # A: write [0, 100)
fcntl.lockf(a, fcntl.LOCK_SH, 100, 1000)    # A: read [1000, 1100)
assert not nb_lockf(b, fcntl.LOCK_EX, 10, 50), "overlapping write locks"
assert not nb_lockf(b, fcntl.LOCK_SH, 1, 99), "read lock under a write lock"
typ, _, start, length, _ = getlk(b, fcntl.F_WRLCK, 50, 10)
assert (typ, start, length) == (fcntl.F_WRLCK, 0, 100), (typ, start, length)
typ, *_ = getlk(b, fcntl.F_RDLCK, 1050, 1)
assert typ == fcntl.F_UNLCK, "two read locks conflict"
assert nb_lockf(b, fcntl.LOCK_EX, 100, 100), "disjoint range"
assert nb_lockf(b, fcntl.LOCK_SH, 10, 1050), "read beside read"
assert not nb_lockf(a, fcntl.LOCK_EX, 1, 150), "A into B's range"
# F_SETLKW on B waits for A's unlock
def setlkw(w):
    fd = os.open(fb, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX, 10, 20)
    os.write(w, b"got")
pid, r = in_child(setlkw)
time.sleep(1.0)
assert os.waitpid(pid, os.WNOHANG) == (0, 0), "F_SETLKW did not wait"
fcntl.lockf(a, fcntl.LOCK_UN, 50, 0)         # frees [0, 50)
assert os.read(r, 3) == b"got"
assert os.waitpid(pid, 0)[1] == 0
os.close(a)                                  # drops A's remaining ranges
assert nb_lockf(b, fcntl.LOCK_EX, 100, 0), "A's ranges outlived its close"
os.close(b)
print("ok")
PY

# A takes locks in a process that stays; then mount A dies
rm -f "$T_DIR/ready"
python3 - "$A/lockfile" "$T_DIR/ready" <<'PY' &
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)
open(sys.argv[2], "w").close()
time.sleep(600)
PY
holder=$!
for _ in $(seq 100); do [ -e "$T_DIR/ready" ] && break; sleep 0.1; done
[ -e "$T_DIR/ready" ] || t_fail "the lock holder on A did not start"
t_kill9_n 1
kill -9 $holder 2>/dev/null
wait $holder 2>/dev/null

python3 - "$B/lockfile" <<'PY' || t_fail "locks of a killed mount"
import errno, fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
def nb():
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as e:
        assert e.errno == errno.EWOULDBLOCK, e
        return False
# Mount A ran on this host and its process is gone: B's heartbeat cleans
# its session without waiting for it to expire (a session of another host
# still waits for expiry: t_meta_session's clean_dead).
deadline = time.time() + 60
while not nb():
    assert time.time() < deadline, "flock of the killed mount never released"
    time.sleep(0.2)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 0)  # its fcntl range too
print("released")
PY
t_run 0 tessera status "$T_META" --json
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["sessions"]
assert [x["mountpoint"] for x in s] == [sys.argv[2]], s
' "$T_OUT" "$B" || t_fail "the session of the killed mount is still listed"
t_umount_n 2
t_pass
