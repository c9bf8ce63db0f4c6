#!/usr/bin/env bash
# Rename over an existing name is atomic for other processes (DESIGN 7,
# promise 7): a reader opening and reading "a" while a writer renames 200
# fresh versions over it gets a complete old or new version every time,
# never ENOENT (the replaced inode stays openable while the kernel still
# references it, and is deleted at its forget).  A descriptor open on the
# replaced file keeps working: fstat gives nlink 0 and the right size,
# reads and writes go on, and after the close the data is deleted (trash
# off: the store's objects go).
# ENGINES: sqlite redis pg mysql etcd
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0
t_mount

wait_objects() { # wait_objects MAX SECONDS: until at most MAX objects remain
	local n
	for _ in $(seq $(($2 * 10))); do
		n=$(t_objects)
		[ "$n" -le "$1" ] && return 0
		sleep 0.1
	done
	t_fail "$n objects left, expected at most $1"
}

# fstat, read and write through a descriptor whose file a rename replaced
python3 - "$MNT" <<'PY' || t_fail "descriptor of a replaced file"
import os, random, sys

d = sys.argv[1]
old = random.Random(1).randbytes(3 << 20)
with open(os.path.join(d, "f"), "wb") as f:
    f.write(old)
fd = os.open(os.path.join(d, "f"), os.O_RDWR)
ino = os.fstat(fd).st_ino
with open(os.path.join(d, "g"), "wb") as f:
    f.write(b"new")
os.rename(os.path.join(d, "g"), os.path.join(d, "f"))
st = os.fstat(fd)
assert st.st_ino == ino and st.st_nlink == 0, st
assert st.st_size == len(old), st
assert os.pread(fd, len(old) + 10, 0) == old
assert os.pwrite(fd, b"written after", 1000) == 13
os.fsync(fd)
assert os.pread(fd, 13, 1000) == b"written after"
assert os.fstat(fd).st_size == len(old)
assert os.pwrite(fd, b"tail", len(old)) == 4
assert os.fstat(fd).st_size == len(old) + 4, os.fstat(fd)
with open(os.path.join(d, "f"), "rb") as f:
    assert f.read() == b"new"
assert os.stat(os.path.join(d, "f")).st_ino != ino
os.close(fd)
PY
rm "$MNT/f"
wait_objects 0 30

# 200 renames over "a" racing a reader that opens and reads it in a loop
python3 - "$MNT" <<'PY' || t_fail "rename race"
import errno, os, sys

d = sys.argv[1]
a = os.path.join(d, "a")
N = 200

def content(i):  # distinct lengths and bytes per version
    return (b"version %06d\n" % i) * (50 + i % 37)

versions = {content(i): i for i in range(N + 1)}
with open(a, "wb") as f:
    f.write(content(0))
pid = os.fork()
if pid == 0:
    code = 0
    try:
        for i in range(1, N + 1):
            t = os.path.join(d, "tmp.%d" % i)
            with open(t, "wb") as f:
                f.write(content(i))
            os.rename(t, a)
    except BaseException as e:
        print("writer:", e, file=sys.stderr)
        code = 1
    os._exit(code)
reads = enoent = 0
errors, bad, last = [], [], 0
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    try:
        with open(a, "rb") as f:
            data = f.read()
        reads += 1
        v = versions.get(data)
        if v is None:
            bad.append(len(data))
        elif v < last:
            bad.append("version %d after %d" % (v, last))
        else:
            last = v
    except OSError as e:
        if e.errno == errno.ENOENT:
            enoent += 1
        else:
            errors.append(e)
    if done:
        break
print("# %d reads, %d ENOENT, %d bad, other errors %r"
      % (reads, enoent, len(bad), errors[:3]))
assert os.waitstatus_to_exitcode(status) == 0, "writer failed"
assert enoent == 0 and not bad and not errors, bad[:5]
with open(a, "rb") as f:
    assert f.read() == content(N)
PY

# the replaced inodes are deleted once the kernel forgets them
for _ in $(seq 100); do
	n=$(tessera status "$(t_vol)" | sed -n 's/.*locks, \([0-9]*\) unlinked open$/\1/p')
	[ "${n:-0}" -eq 0 ] && break
	sleep 0.1
done
[ "${n:-0}" -eq 0 ] || t_fail "$n replaced inodes still kept after the reader finished"
rm "$MNT/a"
wait_objects 0 30
t_umount
