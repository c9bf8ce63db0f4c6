#!/usr/bin/env bash
# Many processes writing many files at once through a small write buffer
# (--buffer-size 16M, so writers are sealed under memory pressure and
# uploads are waited for): every file ends up with exactly the bytes the
# same operations give on a local file, live and after a remount.
# STORES: file s3
# ENGINES: sqlite redis pg
# TIMEOUT: 600
. "$(dirname "$0")/../lib/mount.sh"

procs=${TESSERA_TEST_PROCS:-6}
t_format --trash-days 0
t_mount --buffer-size 16M --max-uploads 4
mkdir -p "$T_DIR/local"

cat >"$T_DIR/worker.py" <<'PY'
import os, random, sys

mnt, local, wid = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(wid)
MiB = 1 << 20
files = []
for k in range(4):
    name = "w%d-f%d" % (wid, k)
    files.append((os.open(os.path.join(mnt, name), os.O_RDWR | os.O_CREAT, 0o644),
                  os.open(os.path.join(local, name), os.O_RDWR | os.O_CREAT, 0o644)))
for i in range(400):
    fm, fl = rng.choice(files)
    op = rng.random()
    if op < 0.6:
        off = rng.randrange(0, 12 * MiB)
        data = rng.randbytes(rng.choice([100, 4096, 70000, 1 << 20, 5 << 20]))
        assert os.pwrite(fm, data, off) == len(data)
        os.pwrite(fl, data, off)
    elif op < 0.75:
        # sequential append
        end = os.fstat(fl).st_size
        data = rng.randbytes(rng.randrange(1, 300000))
        os.pwrite(fm, data, end)
        os.pwrite(fl, data, end)
    elif op < 0.85:
        n = rng.randrange(0, 14 * MiB)
        os.ftruncate(fm, n)
        os.ftruncate(fl, n)
    elif op < 0.95:
        off = rng.randrange(0, 14 * MiB)
        k = rng.choice([1, 5000, 1 << 20])
        if os.pread(fm, k, off) != os.pread(fl, k, off):
            sys.exit("worker %d: read at %d+%d differs (op %d)" % (wid, off, k, i))
    else:
        os.fsync(fm)
for fm, fl in files:
    os.close(fm)
    os.close(fl)
PY

pids=()
for w in $(seq "$procs"); do
	python3 "$T_DIR/worker.py" "$MNT" "$T_DIR/local" "$w" &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || t_fail "a worker failed"
done
check() {
	for f in "$T_DIR"/local/*; do
		cmp "$f" "$MNT/$(basename "$f")" || t_fail "$(basename "$f") differs ($1)"
	done
}
check live
t_umount
t_mount
check "after remount"
t_umount
