#!/usr/bin/env bash
# File data semantics as ext4 has them: overwrite in the middle, append,
# O_APPEND from two descriptors, sparse files whose holes read zero,
# truncate down and up, copy_file_range, mmap MAP_SHARED write then read
# through another descriptor.  Checked live and again after a remount.
# STORES: file s3
# ENGINES: sqlite redis pg
# TIMEOUT: 180
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0
t_mount

python3 - "$MNT" <<'PY' || t_fail "data semantics"
import mmap, os, sys

d = sys.argv[1]
MiB = 1 << 20
CHUNK = 64 * MiB

def p(name):
    return os.path.join(d, name)

def readall(path):
    with open(path, "rb") as f:
        return f.read()

# overwrite in the middle
data = bytearray(os.urandom(10 * MiB + 5))
with open(p("mid"), "wb") as f:
    f.write(data)
with open(p("mid"), "r+b") as f:
    f.seek(3 * MiB + 7)
    f.write(b"X" * 100000)
data[3 * MiB + 7:3 * MiB + 7 + 100000] = b"X" * 100000
assert readall(p("mid")) == data, "overwrite in the middle"

# overwrite while the file is open for reading elsewhere: reader sees it
with open(p("mid"), "rb") as r, open(p("mid"), "r+b") as w:
    w.seek(5)
    w.write(b"hello")
    w.flush()
    r.seek(0)
    assert r.read(10) == bytes(data[:5]) + b"hello", "read after write"
data[5:10] = b"hello"

# append
with open(p("mid"), "ab") as f:
    f.write(b"tail")
data += b"tail"
assert readall(p("mid")) == data, "append"
assert os.stat(p("mid")).st_size == len(data)

# O_APPEND from two descriptors: every record lands whole at the end
a = os.open(p("log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
b = os.open(p("log"), os.O_WRONLY | os.O_APPEND)
recs = []
for i in range(200):
    fd = a if i % 2 == 0 else b
    rec = ("%s-%04d\n" % ("ab"[i % 2], i)).encode() * (1 + i % 7)
    os.write(fd, rec)
    recs.append(rec)
os.close(a)
os.close(b)
assert readall(p("log")) == b"".join(recs), "O_APPEND from two fds"

# sparse files: holes read zero, within a chunk and across chunks
with open(p("sparse"), "wb") as f:
    f.seek(CHUNK + 12345)
    f.write(b"data1")
    f.seek(3 * CHUNK - 3)
    f.write(b"xyz")
    f.seek(0)
    f.write(b"head")
st = os.stat(p("sparse"))
assert st.st_size == 3 * CHUNK, st.st_size
with open(p("sparse"), "rb") as f:
    assert f.read(4) == b"head"
    assert f.read(MiB) == bytes(MiB), "hole after head"
    f.seek(CHUNK + 12340)
    assert f.read(15) == bytes(5) + b"data1" + bytes(5), "middle data"
    f.seek(2 * CHUNK - 10)
    assert f.read(20) == bytes(20), "hole across a chunk border"
    f.seek(3 * CHUNK - 6)
    assert f.read(100) == bytes(3) + b"xyz", "tail"

# truncate down and up: the cut part reads zero after growing again
blob = os.urandom(5 * MiB)
with open(p("trunc"), "wb") as f:
    f.write(blob)
os.truncate(p("trunc"), 1 * MiB + 3)
assert readall(p("trunc")) == blob[:MiB + 3], "truncate down"
os.truncate(p("trunc"), 4 * MiB)
got = readall(p("trunc"))
assert got == blob[:MiB + 3] + bytes(4 * MiB - MiB - 3), "truncate up"
# ftruncate with writes pending in the same descriptor
fd = os.open(p("trunc"), os.O_RDWR)
os.pwrite(fd, b"Z" * 1000, 2 * MiB)
os.ftruncate(fd, 2 * MiB + 10)
assert os.pread(fd, 100, 2 * MiB) == b"Z" * 10, "ftruncate over pending data"
os.ftruncate(fd, 0)
assert os.fstat(fd).st_size == 0
os.pwrite(fd, b"abc", 10)
assert os.pread(fd, 100, 0) == bytes(10) + b"abc"
os.close(fd)
# O_TRUNC
with open(p("trunc"), "wb") as f:
    f.write(b"new")
assert readall(p("trunc")) == b"new", "O_TRUNC"

# copy_file_range
src = os.open(p("mid"), os.O_RDONLY)
dst = os.open(p("copy"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
n, off = len(data), 0
while off < n:
    k = os.copy_file_range(src, dst, n - off, off, off)
    assert k > 0
    off += k
os.close(src)
os.close(dst)
assert readall(p("copy")) == data, "copy_file_range"

# mmap MAP_SHARED write, read through another descriptor
with open(p("mm"), "wb") as f:
    f.write(bytes(3 * MiB))
fd = os.open(p("mm"), os.O_RDWR)
m = mmap.mmap(fd, 3 * MiB, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[100:105] = b"mmap!"
m[2 * MiB:2 * MiB + 3] = b"end"
m.flush()
fd2 = os.open(p("mm"), os.O_RDONLY)
assert os.pread(fd2, 5, 100) == b"mmap!", "mmap write seen by another fd"
assert os.pread(fd2, 3, 2 * MiB) == b"end"
m[200:203] = b"bye"
m.close()
os.close(fd)
os.close(fd2)
with open(p("mm"), "rb") as f:
    f.seek(200)
    assert f.read(3) == b"bye", "mmap write after munmap"

open(p("expect.bin"), "wb").write(data)
print("ok")
PY

sum_before=$(cd "$MNT" && sha256sum mid log sparse trunc copy mm)
t_umount
t_mount
sum_after=$(cd "$MNT" && sha256sum mid log sparse trunc copy mm)
[ "$sum_before" = "$sum_after" ] || t_fail "contents changed over a remount"
t_umount
