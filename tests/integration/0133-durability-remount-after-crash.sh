#!/usr/bin/env bash
# A crashed mount is remounted on the same host without --force (DESIGN
# 7.9): after kill -9 of the mount, `tessera mount` takes over the lease of
# the dead process (one log line), and the dead session is cleaned before
# the new mount serves: fcntl and flock locks a process held through it are
# free at once, and an application's SQLite database in WAL mode, written
# up to the kill, opens, passes integrity_check and has every committed
# row (its -shm locks were those of the dead session).  The same when the
# dead mount is a zombie its parent has not reaped.  A live mount of this
# host still keeps a second one out without --force.
# ENGINES: sqlite redis pg
# TIMEOUT: 180
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/repl.sh"

STORE=$T_DIR/store
if [ "$T_ENGINE" = sqlite ]; then
	mkdir -p "$STORE"
	t_format --storage "file://$STORE/" --trash-days 0
else
	t_format --trash-days 0
fi
t_mount

# app.py MNT DIR: hold an fcntl and a flock lock on files of MNT, then
# write rows to MNT/app.db (WAL, synchronous=FULL) one commit at a time,
# noting each committed count in DIR/committed; DIR/ready after 100.
cat >"$T_DIR/app.py" <<'PY'
import fcntl, os, sqlite3, sys

mnt, out = sys.argv[1], sys.argv[2]
posix = open(os.path.join(mnt, "lk-posix"), "w")
fcntl.lockf(posix, fcntl.LOCK_EX)
fl = open(os.path.join(mnt, "lk-flock"), "w")
fcntl.flock(fl, fcntl.LOCK_EX)
db = sqlite3.connect(os.path.join(mnt, "app.db"), isolation_level=None)
assert db.execute("pragma journal_mode=wal").fetchone()[0] == "wal"
db.execute("pragma synchronous=full")
db.execute("create table if not exists t(i integer primary key, v blob)")
n = first = db.execute("select count(*) from t").fetchone()[0]
try:
    while True:
        db.execute("begin")
        db.execute("insert into t values (?, ?)", (n, os.urandom(300)))
        db.execute("commit")
        n += 1
        with open(out + "/committed.tmp", "w") as f:
            f.write("%d\n" % n)
        os.rename(out + "/committed.tmp", out + "/committed")
        if n == first + 100:
            open(out + "/ready", "w").close()
except (OSError, sqlite3.Error):
    pass  # the mount went away under us
PY

# check.py MNT COMMITTED: the locks are free, the database is whole.
cat >"$T_DIR/check.py" <<'PY'
import fcntl, os, sqlite3, sys

mnt, committed = sys.argv[1], int(sys.argv[2])
with open(os.path.join(mnt, "lk-posix"), "a") as f:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
with open(os.path.join(mnt, "lk-flock"), "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
db = sqlite3.connect(os.path.join(mnt, "app.db"), isolation_level=None,
                     timeout=0)
ok = db.execute("pragma integrity_check").fetchall()
assert ok == [("ok",)], ok
n = db.execute("select count(*) from t").fetchone()[0]
assert n >= committed, "%d rows, %d were committed" % (n, committed)
assert db.execute("select max(i) from t").fetchone()[0] == n - 1
# writable too: the dead session's write lock is gone
db.execute("begin immediate")
db.execute("insert into t values (?, ?)", (n, b"after"))
db.execute("commit")
db.close()
print("rows", n)
PY

# crash: kill -9 of the mount with the app writing, then the app
crash_and_remount() {
	local app pid committed
	rm -f "$T_DIR/ready"
	python3 "$T_DIR/app.py" "$MNT" "$T_DIR" &
	app=$!
	for _ in $(seq 600); do
		[ -e "$T_DIR/ready" ] && break
		kill -0 $app 2>/dev/null || t_fail "app died early"
		sleep 0.1
	done
	[ -e "$T_DIR/ready" ] || t_fail "app made no progress"
	pid=$T_MOUNT_PID
	t_kill9
	kill -9 $app 2>/dev/null
	wait $app 2>/dev/null
	read -r committed <"$T_DIR/committed"
	t_log "killed mount pid $pid after $committed committed rows"

	: >"$T_DIR/mount.log"
	t_mount # no --force
	if [ "$T_ENGINE" = sqlite ]; then
		t_grep "taking over the lease of dead mount pid $pid (no such process)" \
			"$T_DIR/mount.log"
	fi
	python3 "$T_DIR/check.py" "$MNT" "$committed" ||
		t_fail "locks or database of the dead mount not usable at once"
	# the dead session is gone, not just listed as stale
	t_run 0 tessera status "$(t_vol)"
	t_grep "^sessions: *1$" "$T_OUT"
}
crash_and_remount
crash_and_remount

# A zombie: the mount's parent has not reaped it yet (kill(pid, 0) works).
t_umount
cat >"$T_DIR/zombie.py" <<'PY'
import fcntl, os, subprocess, sys, time

tessera, vol, mnt, out = sys.argv[1:5]
p = subprocess.Popen([tessera, "mount", "-f", vol, mnt],
                     stdout=open(out + "/zombie-mount.log", "w"),
                     stderr=subprocess.STDOUT)
for _ in range(300):
    if os.path.exists(os.path.join(mnt, ".stats")):
        break
    time.sleep(0.1)
lk = open(os.path.join(mnt, "lk-posix"), "a")  # kept open: its mount dies
fcntl.lockf(lk, fcntl.LOCK_EX)
os.kill(p.pid, 9)
while open("/proc/%d/stat" % p.pid).read().split(") ")[1][0] != "Z":
    time.sleep(0.05)
with open(out + "/zombie", "w") as f:
    f.write("%d\n" % p.pid)
time.sleep(120)  # never reaps it
PY
python3 "$T_DIR/zombie.py" "$TESSERA_BIN" "$(t_vol)" "$MNT" "$T_DIR" &
zparent=$!
t_on_exit "kill $zparent"
for _ in $(seq 300); do
	[ -s "$T_DIR/zombie" ] && break
	kill -0 $zparent 2>/dev/null || t_fail "zombie maker died"
	sleep 0.1
done
read -r zpid <"$T_DIR/zombie"
grep -q '^State:.*Z' "/proc/$zpid/status" || t_fail "pid $zpid is no zombie"
umount -l "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT"
: >"$T_DIR/mount.log"
t_mount
if [ "$T_ENGINE" = sqlite ]; then
	t_grep "taking over the lease of dead mount pid $zpid (zombie)" \
		"$T_DIR/mount.log"
fi
python3 - "$MNT" <<'PY' || t_fail "lock of the zombie mount still held"
import fcntl, os, sys
with open(os.path.join(sys.argv[1], "lk-posix"), "a") as f:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
PY
kill $zparent
wait $zparent 2>/dev/null

# A live mount of this host keeps the lease: another home (host B's view
# of the same store) is refused without --force, as before.
if [ "$T_ENGINE" = sqlite ]; then
	TESSERA_HOME=$HOME_B t_run 1 tessera mount "file://$STORE/$T_VOL" "$MNT_B"
	t_grep "volume '$T_VOL' is in use by .*(pid $T_MOUNT_PID, lease until .*): use --force to take it over" \
		"$T_ERR"
	# and a second mount from this home, by the mount lock
	t_run 1 tessera mount "$T_VOL" "$MNT_B"
	t_grep "is already mounted" "$T_ERR"
	! t_is_mounted "$MNT_B" || t_fail "second mount went live"
fi
t_umount
