#!/usr/bin/env bash
# tests/lib/repl.sh - two "hosts" on one machine for replication tests
# (sourced after mount.sh).  Host A is mount.sh's own ($TESSERA_HOME,
# $MNT, t_mount...); host B has its own home and mountpoint:
#
#   r_mount_b ARGS...   tessera mount -f ARGS in the background as host B
#                       (TESSERA_HOME=$HOME_B), wait until $MNT_B is live
#   r_kill9_b / r_umount_b
#   r_writer DIR PROGRESS   python writer with fsyncs (see r_check)
#   r_start_writer DIR PROGRESS N   r_writer in the background ($R_WRITER
#                       its pid) once it fsynced N rounds
#   r_fsync_erofs PATH  opening, writing or fsyncing PATH fails with EROFS (a
#                       mount that lost the lease); status 0 when it does
#   r_check DIR PROGRESS    every fsynced byte of r_writer is in DIR
#
# The EXIT trap unmounts B too.
HOME_B=$T_DIR/home-b
MNT_B=$T_DIR/mnt-b
B_PID=
mkdir -p "$HOME_B" "$MNT_B"

r_mount_b() {
	t_require_fuse
	TESSERA_HOME=$HOME_B "$TESSERA_BIN" mount -f "$@" >>"$T_DIR/mount-b.log" 2>&1 &
	B_PID=$!
	for _ in $(seq 300); do
		if t_is_mounted "$MNT_B" && [ -e "$MNT_B/.stats" ]; then
			return 0
		fi
		kill -0 "$B_PID" 2>/dev/null ||
			t_fail "host B: mount exited early: $(tail -5 "$T_DIR/mount-b.log")"
		sleep 0.1
	done
	t_fail "host B: mount did not become live in 30 s"
}

r_umount_b() {
	TESSERA_HOME=$HOME_B "$TESSERA_BIN" umount "$MNT_B" || t_fail "umount B failed"
	if [ -n "$B_PID" ]; then
		wait "$B_PID" 2>/dev/null
		B_PID=
	fi
}

r_kill9_b() {
	kill -9 "$B_PID"
	wait "$B_PID" 2>/dev/null
	B_PID=
	umount -l "$MNT_B" 2>/dev/null || fusermount3 -u -z "$MNT_B" 2>/dev/null
}

r_cleanup_b() {
	if t_is_mounted "$MNT_B"; then
		umount -l "$MNT_B" 2>/dev/null || fusermount3 -u -z "$MNT_B" 2>/dev/null
	fi
	[ -n "$B_PID" ] && kill -9 "$B_PID" 2>/dev/null
	if [ -s "$T_DIR/mount-b.log" ]; then
		echo "--- mount B log (tail)" >&9
		tail -n 10 "$T_DIR/mount-b.log" >&9
	fi
}
# runs before mount.sh's cleanup (which removes $T_DIR): cleanups run last first
t_on_exit r_cleanup_b

cat >"$T_DIR/writer.py" <<'PY'
import os, random, sys

mnt, progress, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
KiB = 1 << 10

def blob(i, n):
    return random.Random(i).randbytes(n)

def note(n):
    with open(progress + ".tmp", "w") as f:
        f.write("%d\n" % n)
        f.flush()
        os.fsync(f.fileno())
    os.rename(progress + ".tmp", progress)

fd = os.open(os.path.join(mnt, "stream"), os.O_WRONLY | os.O_CREAT, 0o644)
try:
    for i in range(limit):
        os.write(fd, blob(i, 256 * KiB))
        p = os.path.join(mnt, "small-%d" % i)
        with open(p, "wb") as f:
            f.write(blob(100000 + i, 100 + i))
            f.flush()
            os.fsync(f.fileno())
        os.fsync(fd)
        note(i + 1)
except OSError as e:
    print("writer stopped: %s" % e, file=sys.stderr)
    sys.exit(3)
PY

cat >"$T_DIR/check.py" <<'PY'
import os, random, sys

mnt, n = sys.argv[1], int(sys.argv[2])
KiB = 1 << 10
blob = lambda i, k: random.Random(i).randbytes(k)
st = os.stat(os.path.join(mnt, "stream"))
assert st.st_size >= n * 256 * KiB, "stream: %d < %d" % (st.st_size, n * 256 * KiB)
with open(os.path.join(mnt, "stream"), "rb") as f:
    for i in range(n):
        assert f.read(256 * KiB) == blob(i, 256 * KiB), "stream block %d" % i
for i in range(n):
    with open(os.path.join(mnt, "small-%d" % i), "rb") as f:
        assert f.read() == blob(100000 + i, 100 + i), "small-%d" % i
print("ok %d" % n)
PY

r_writer() { python3 "$T_DIR/writer.py" "$1" "$2" "${3:-1000000}"; }
r_check() { python3 "$T_DIR/check.py" "$1" "$(cat "$2")"; }

r_start_writer() {
	r_writer "$1" "$2" 2>/dev/null &
	R_WRITER=$!
	for _ in $(seq 600); do
		[ -f "$2" ] && [ "$(cat "$2")" -ge "$3" ] && return 0
		kill -0 $R_WRITER 2>/dev/null || t_fail "writer died early"
		sleep 0.1
	done
	t_fail "writer made no progress"
}

r_fsync_erofs() {
	python3 - "$1" <<'PY'
import errno, os, sys
# The mount may notice the lost lease before the fsync, at the open or the
# write: each must then fail with EROFS too.
try:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"late")
    os.fsync(fd)
except OSError as e:
    assert e.errno == errno.EROFS, e
    sys.exit(0)
sys.exit(1)
PY
}
