#!/usr/bin/env bash
# flock(2) and fcntl(2) byte-range locks among processes of one mount:
# exclusion, sharing, blocking waits, F_GETLK answers, split ranges, and
# release on close (flock: last close of the open file description;
# fcntl: any close by the owning process).
# STORES: file s3
# ENGINES: sqlite redis pg mysql
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0
t_mount

python3 - "$MNT" <<'PY' || t_fail "locks"
import errno, fcntl, os, struct, sys, time

d = sys.argv[1]
path = os.path.join(d, "lockfile")
open(path, "w").write("x" * 1000)

def child(fn):
    """Run fn in a child process; return its exit status."""
    pid = os.fork()
    if pid == 0:
        try:
            fn()
            os._exit(0)
        except SystemExit as e:
            os._exit(e.code if isinstance(e.code, int) else 1)
        except BaseException as e:
            print("child:", repr(e), file=sys.stderr)
            os._exit(1)
    return os.waitpid(pid, 0)[1] >> 8

def try_flock(fd, op):
    try:
        fcntl.flock(fd, op | fcntl.LOCK_NB)
        return True
    except OSError as e:
        assert e.errno == errno.EWOULDBLOCK, e
        return False

# ---- flock ----
a = os.open(path, os.O_RDWR)
b = os.open(path, os.O_RDWR)
fcntl.flock(a, fcntl.LOCK_EX)
assert not try_flock(b, fcntl.LOCK_EX), "two exclusive flocks"
assert not try_flock(b, fcntl.LOCK_SH), "shared under exclusive"
fcntl.flock(a, fcntl.LOCK_SH)          # downgrade
assert try_flock(b, fcntl.LOCK_SH), "two shared flocks"
assert not try_flock(a, fcntl.LOCK_EX), "upgrade while another shares"
fcntl.flock(b, fcntl.LOCK_UN)
fcntl.flock(a, fcntl.LOCK_EX)
# a dup shares the open file description: closing it keeps the lock
c = os.dup(a)
os.close(c)
assert not try_flock(b, fcntl.LOCK_EX), "flock lost on close of a dup"
# blocking wait in another process, released by closing the last fd
t0 = time.time()
def waiter():
    os.close(a)                         # the inherited copy shares the lock
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)      # blocks until the parent closes
    if time.time() - t0 < 0.15:
        sys.exit(3)
pid = os.fork()
if pid == 0:
    try:
        waiter()
        os._exit(0)
    except SystemExit as e:
        os._exit(e.code)
time.sleep(0.3)
os.close(a)
st = os.waitpid(pid, 0)[1] >> 8
assert st == 0, "blocked flock waiter: status %d" % st
assert try_flock(b, fcntl.LOCK_EX), "flock still held after the waiter exited"
os.close(b)

# ---- fcntl byte ranges ----
FL = "hhqqi4x"
def getlk(fd, typ, start, length):
    r = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(FL, typ, 0, start, length, 0))
    return struct.unpack(FL, r)

fd = os.open(path, os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0)        # [0, 100) write
fcntl.lockf(fd, fcntl.LOCK_SH, 100, 200)      # [200, 300) read
me = os.getpid()

def other():
    f2 = os.open(path, os.O_RDWR)
    try:
        fcntl.lockf(f2, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 50)
        sys.exit(10)
    except OSError as e:
        assert e.errno in (errno.EAGAIN, errno.EACCES), e
    typ, _, start, length, pid = getlk(f2, fcntl.F_WRLCK, 50, 10)
    assert (typ, start, length, pid) == (fcntl.F_WRLCK, 0, 100, me), (typ, start, length, pid)
    typ, *_ = getlk(f2, fcntl.F_RDLCK, 250, 10)
    assert typ == fcntl.F_UNLCK, "read lock conflicts with read lock"
    typ, *_ = getlk(f2, fcntl.F_WRLCK, 250, 10)
    assert typ == fcntl.F_RDLCK
    fcntl.lockf(f2, fcntl.LOCK_SH | fcntl.LOCK_NB, 10, 250)   # shared ok
    fcntl.lockf(f2, fcntl.LOCK_EX | fcntl.LOCK_NB, 50, 100)   # free range
    fcntl.lockf(f2, fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 1000)   # to EOF beyond
assert child(other) == 0, "fcntl locks seen from another process"

# unlock the middle of [0,100): [40,60) becomes free, the rest stays
fcntl.lockf(fd, fcntl.LOCK_UN, 20, 40)
def split():
    f2 = os.open(path, os.O_RDWR)
    fcntl.lockf(f2, fcntl.LOCK_EX | fcntl.LOCK_NB, 20, 40)
    for off in (0, 39, 60, 99):
        try:
            fcntl.lockf(f2, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, off)
            sys.exit(20)
        except OSError:
            pass
assert child(split) == 0, "unlock splits a range"

# F_SETLKW waits; closing ANY descriptor of the file releases our locks
other_fd = os.open(path, os.O_RDONLY)
t0 = time.time()
def blocked():
    f2 = os.open(path, os.O_RDWR)
    fcntl.lockf(f2, fcntl.LOCK_EX, 10, 0)   # waits for the parent
    if time.time() - t0 < 0.15:
        sys.exit(30)
pid = os.fork()
if pid == 0:
    try:
        blocked()
        os._exit(0)
    except SystemExit as e:
        os._exit(e.code)
    except BaseException:
        os._exit(1)
time.sleep(0.3)
os.close(other_fd)          # POSIX: drops every lock of this process
st = os.waitpid(pid, 0)[1] >> 8
assert st == 0, "F_SETLKW waiter: status %d" % st
os.close(fd)

# a waiter killed while blocked must not end up holding the lock
import signal
a = os.open(path, os.O_RDWR)
fcntl.flock(a, fcntl.LOCK_EX)
pid = os.fork()
if pid == 0:
    os.close(a)
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os._exit(0)
time.sleep(0.3)
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
time.sleep(0.5)
os.close(a)
b = os.open(path, os.O_RDWR)
deadline = time.time() + 5
while not try_flock(b, fcntl.LOCK_EX):
    assert time.time() < deadline, "a killed waiter kept the flock"
    time.sleep(0.1)
os.close(b)
print("ok")
PY
t_umount
