#!/usr/bin/env bash
# Two mounts x 8 threads create files in one directory at once
# (TESSERA_TEST_MULTI_FILES per thread, default 1000; the issue asks for
# 10,000 once): every name is there on both mounts, no two files share an
# inode number, `ls | wc -l` is exact on both.  Then the same name is
# created (O_CREAT|O_EXCL) on both mounts at the same moment, 300 times:
# each time exactly one succeeds and the other gets EEXIST.  Last, both
# mounts write 80 files each at once; all read back right on the other.
# ENGINES: redis pg mysql etcd
# TIMEOUT: 900
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/multi.sh"
t_require_shared

per=${TESSERA_TEST_MULTI_FILES:-1000}
# etcd takes ~30 creates/s through a mount (bench/meta-ops): fewer there
[ "$T_ENGINE" != etcd ] || per=${TESSERA_TEST_MULTI_FILES:-100}
threads=8
t_format --trash-days 0
t_mount_n 1
t_mount_n 2
A=$(t_mnt 1)
B=$(t_mnt 2)
mkdir "$A/dir"

python3 - "$A/dir" "$B/dir" "$per" "$threads" <<'PY' || t_fail "parallel creates"
import os, sys, threading, time
A, B, per, nthr = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def creator(root, tag):
    errs = []
    def work(t):
        try:
            for i in range(per):
                fd = os.open(os.path.join(root, "%s-%d-%d" % (tag, t, i)),
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                os.close(fd)
        except BaseException as e:
            errs.append(e)
    ts = [threading.Thread(target=work, args=(t,)) for t in range(nthr)]
    for t in ts: t.start()
    for t in ts: t.join()
    if errs:
        print(tag, "failed:", errs[0], file=sys.stderr)
        os._exit(1)
    os._exit(0)

t0 = time.time()
pids = []
for root, tag in ((A, "a"), (B, "b")):
    pid = os.fork()
    if pid == 0:
        creator(root, tag)
    pids.append(pid)
for pid in pids:
    assert os.waitpid(pid, 0)[1] == 0, "a creator failed"
n = 2 * nthr * per
print("%d creates in %.1f s" % (n, time.time() - t0))
want = {"%s-%d-%d" % (tag, t, i) for tag in "ab" for t in range(nthr)
        for i in range(per)}
for root in (A, B):
    names = os.listdir(root)
    assert len(names) == len(set(names)), "a name listed twice"
    assert set(names) == want, "missing %d, extra %d" % (
        len(want - set(names)), len(set(names) - want))
inos = {}
with os.scandir(A) as it:
    for e in it:
        inos[e.name] = e.inode()
assert len(set(inos.values())) == n, "duplicate inode numbers: %d distinct of %d" % (
    len(set(inos.values())), n)
with os.scandir(B) as it:
    for e in it:
        assert inos[e.name] == e.inode(), "inode of %s differs" % e.name
print("ok")
PY
want=$((2 * threads * per))
for d in "$A/dir" "$B/dir"; do
	got=$(ls "$d" | wc -l)
	[ "$got" -eq "$want" ] || t_fail "ls $d | wc -l: $got, want $want"
done

python3 - "$A" "$B" <<'PY' || t_fail "one create wins"
import errno, multiprocessing as mp, os, sys
A, B = sys.argv[1:3]
N = 300

def racer(root, barrier, q):
    res = []
    for i in range(N):
        barrier.wait()
        try:
            fd = os.open(os.path.join(root, "race-%d" % i),
                         os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.close(fd)
            res.append("ok")
        except OSError as e:
            res.append(errno.errorcode.get(e.errno, str(e.errno)))
    q.put((root, res))

ctx = mp.get_context("fork")
barrier = ctx.Barrier(2)
q = ctx.Queue()
ps = [ctx.Process(target=racer, args=(r, barrier, q)) for r in (A, B)]
for p in ps: p.start()
out = dict(q.get() for _ in ps)
for p in ps: p.join()
wins = {A: 0, B: 0}
for i in range(N):
    a, b = out[A][i], out[B][i]
    assert sorted((a, b)) == ["EEXIST", "ok"], "race-%d: A %s, B %s" % (i, a, b)
    wins[A if a == "ok" else B] += 1
print("wins: A %d, B %d" % (wins[A], wins[B]))
assert len(os.listdir(A)) == N + 1
PY
# both mounts write at once: slice ids never collide, so every file reads
# back (through the other mount) with its own bytes
python3 - "$A" "$B" <<'PY' || t_fail "parallel writes on two mounts"
import hashlib, os, random, sys, threading
A, B = sys.argv[1:3]
os.mkdir(os.path.join(A, "data"))
sums = {}
def writer(root, tag, t):
    rnd = random.Random("%s%d" % (tag, t))
    for i in range(20):
        data = rnd.randbytes(rnd.randrange(1, 600000))
        name = "data/%s-%d-%d" % (tag, t, i)
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
        sums[name] = hashlib.sha256(data).hexdigest()
ts = [threading.Thread(target=writer, args=(r, tag, t))
      for r, tag in ((A, "a"), (B, "b")) for t in range(4)]
for t in ts: t.start()
for t in ts: t.join()
assert len(sums) == 160
for name, h in sums.items():
    other = B if name.startswith("data/a") else A
    with open(os.path.join(other, name), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == h, name
print("ok")
PY
t_umount_n 2
t_umount_n 1
t_pass
