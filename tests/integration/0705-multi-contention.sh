#!/usr/bin/env bash
# Internal contention never reaches an application (DESIGN 7, promise 8):
# 16 threads create files (O_CREAT|O_EXCL) in ONE directory at once, every
# create conflicting with the others on the directory's record.  On redis
# and pg they are 2 mounts x 8 threads; SQLite's embedded volume can have
# only one mount, so there 1 mount x 16 threads, while another process
# holds SQLite's write lock for 5 s, far longer than the mount's
# busy_timeout (0 here, so the mount retries at once and often): the
# mount's "database is busy" must be waited out, not become EIO.
# Every create must succeed (no error of any kind), `ls | wc -l` is exact
# on every mount once the entry timeout passed, and no mount logged an
# ERROR.  The retries the mounts needed (.stats meta_retries) are printed.
# TESSERA_TEST_CONTENTION_FILES: files per thread (default 400; 40 on etcd).
# ENGINES: sqlite redis pg mysql etcd
# TIMEOUT: 300
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/multi.sh"

per=${TESSERA_TEST_CONTENTION_FILES:-400}
# etcd takes ~30 creates/s through a mount (bench/meta-ops): fewer there
[ "$T_ENGINE" != etcd ] || per=${TESSERA_TEST_CONTENTION_FILES:-40}
t_format --trash-days 0
opts=(--entry-timeout 1 --attr-timeout 1)
hold=
if [ "$T_ENGINE" = sqlite ]; then
	threads=16 mnts=("$MNT") logs=("$T_DIR/mount.log")
	hold=$TESSERA_HOME/$T_VOL/meta.db
	T_VOL="sqlite3://$hold?busy_timeout=0"
	t_mount "${opts[@]}"
else
	threads=8 mnts=("$(t_mnt 1)" "$(t_mnt 2)")
	logs=("$T_DIR/mount1.log" "$T_DIR/mount2.log")
	t_mount_n 1 "${opts[@]}"
	t_mount_n 2 "${opts[@]}"
fi
roots=("${mnts[@]/%//dir}")
mkdir "${roots[0]}"

python3 - "$per" "$threads" "$hold" "${roots[@]}" <<'PY' || t_fail "parallel creates in one directory"
import os, sqlite3, sys, threading, time
per, nthr, hold, roots = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]

def creator(root, tag):
    errs = []
    def work(t):
        for i in range(per):
            name = os.path.join(root, "%s-%d-%d" % (tag, t, i))
            try:
                os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                                 0o644))
            except BaseException as e:
                errs.append("%s: %r" % (name, e))
    ts = [threading.Thread(target=work, args=(t,)) for t in range(nthr)]
    for t in ts: t.start()
    for t in ts: t.join()
    for e in errs[:5]:
        print(tag, "create failed:", e, file=sys.stderr)
    os._exit(1 if errs else 0)

t0 = time.time()
pids = []
for n, root in enumerate(roots):
    pid = os.fork()
    if pid == 0:
        creator(root, "m%d" % n)
    pids.append(pid)
if hold:
    # take SQLite's write lock between two creates and keep it 5 s
    time.sleep(0.3)
    db = sqlite3.connect(hold, timeout=30, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    time.sleep(5)
    db.execute("ROLLBACK")
    db.close()
bad = [p for p in pids if os.waitpid(p, 0)[1] != 0]
assert not bad, "%d of %d mounts saw failed creates" % (len(bad), len(pids))
print("%d creates in %.1f s" % (len(roots) * nthr * per, time.time() - t0))
PY

sleep 1.2 # entry and attribute timeout
want=$((${#roots[@]} * threads * per))
for d in "${roots[@]}"; do
	got=$(ls "$d" | wc -l)
	[ "$got" -eq "$want" ] || t_fail "ls $d | wc -l: $got, want $want"
done
[ -z "$hold" ] || t_grep "database is busy" "${logs[0]}"
for i in "${!mnts[@]}"; do
	echo "${mnts[$i]}: $(grep '^meta_retries ' "${mnts[$i]}/.stats")"
	! grep -q "ERROR" "${logs[$i]}" ||
		t_fail "${logs[$i]}: $(grep -m1 ERROR "${logs[$i]}")"
done
if [ "$T_ENGINE" = sqlite ]; then
	t_umount
else
	t_umount_n 2
	t_umount_n 1
fi
t_pass
