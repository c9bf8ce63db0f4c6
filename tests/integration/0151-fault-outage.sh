#!/usr/bin/env bash
# An S3 outage surfaces as EIO after a bound, and the mount keeps working
# when the store comes back (DESIGN 7.4).  The test runs its own s3rver
# (free port, private data directory) so that stopping it disturbs no other
# test.  With the server down: a read of uncached data and the fsync of
# new data fail with EIO within the retry bound (short S3 retries for the
# mount: TESSERA_S3_RETRIES=1, TESSERA_S3_TIMEOUT_MS=2000), metadata
# operations still work; once it is back, the same read succeeds and new
# writes are durable, without remounting.  A hung server (SIGSTOP) gives
# EIO too, through timeouts, and answers again after SIGCONT.
# STORES: s3
# TIMEOUT: 300
. "$(dirname "$0")/../lib/mount.sh"

S3RVER=${TESSERA_S3RVER_DIR:-/opt/tessera-test}/node_modules/.bin/s3rver
[ -x "$S3RVER" ] || t_skip "no s3rver at $S3RVER"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
S3_PID=

s3_start() {
	mkdir -p "$T_DIR/s3data"
	NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" -d "$T_DIR/s3data" \
		-a 127.0.0.1 -p "$port" --silent >>"$T_DIR/s3rver.log" 2>&1 &
	S3_PID=$!
	for _ in $(seq 150); do
		curl -s -o /dev/null "$url/" && return 0
		kill -0 "$S3_PID" 2>/dev/null || break
		sleep 0.1
	done
	t_fail "private s3rver did not start on $url: $(tail -n 5 "$T_DIR/s3rver.log")"
}

s3_stop() {
	[ -n "$S3_PID" ] || return 0
	kill "$S3_PID" 2>/dev/null
	wait "$S3_PID" 2>/dev/null
	S3_PID=
	! curl -s -o /dev/null "$url/" || t_fail "s3rver still answers on $url"
}
# run after the unmount of mount.sh's cleanup (cleanups run last first)
T_CLEANUP=("s3_stop" "${T_CLEANUP[@]}")

# elapsed CMD...: run CMD, print its exit status and seconds taken
elapsed() {
	local t0 rc
	t0=$(date +%s.%N)
	"$@" >"$T_DIR/cmd.out" 2>&1
	rc=$?
	echo "$rc $(echo "$(date +%s.%N) - $t0" | bc)"
}

s3_start
export TESSERA_S3_RETRIES=1 TESSERA_S3_TIMEOUT_MS=2000 TESSERA_S3_CONNECT_TIMEOUT_MS=1000
t_format --storage "$url/outage"
t_mount --cache-size 0
head -c $((20 << 20)) /dev/urandom >"$T_DIR/a"
cp "$T_DIR/a" "$MNT/a"
t_umount
t_mount --cache-size 0 # nothing of "a" in memory now, no disk cache

s3_stop
t_log "s3rver stopped"

# read of uncached data: EIO, within the retry bound
read -r rc secs < <(elapsed dd if="$MNT/a" of=/dev/null bs=1M)
t_log "read during the outage: exit $rc after ${secs}s: $(head -c 200 "$T_DIR/cmd.out")"
[ "$rc" -ne 0 ] || t_fail "read of uncached data succeeded with the store down"
t_grep "Input/output error" "$T_DIR/cmd.out"
[ "$(echo "$secs < 60" | bc)" = 1 ] || t_fail "EIO only after ${secs}s"
t_grep "cannot read block '[^']*': " "$T_DIR/mount.log"

# writes: fsync (and close) report EIO after the bound
cat >"$T_DIR/w.py" <<'PY'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, os.urandom(9 << 20))
try:
    os.fsync(fd)
except OSError as e:
    print("fsync:", errno.errorcode[e.errno])
else:
    print("fsync: ok")
try:
    os.close(fd)
except OSError as e:
    print("close:", errno.errorcode[e.errno])
else:
    print("close: ok")
PY
read -r rc secs < <(elapsed python3 "$T_DIR/w.py" "$MNT/b")
t_log "write during the outage: exit $rc after ${secs}s: $(tr '\n' ' ' <"$T_DIR/cmd.out")"
t_grep "^fsync: EIO" "$T_DIR/cmd.out"
[ "$(echo "$secs < 60" | bc)" = 1 ] || t_fail "fsync EIO only after ${secs}s"
t_grep "cannot upload block '[^']*': " "$T_DIR/mount.log"

# the mount itself is fine: metadata works, the mount process lives
mkdir "$MNT/d" && touch "$MNT/d/x" && mv "$MNT/d/x" "$MNT/d/y" ||
	t_fail "metadata operations fail during the outage"
[ -e "$MNT/d/y" ] || t_fail "rename lost"
kill -0 "$T_MOUNT_PID" || t_fail "mount process died"

# the store is back: the same read works, without remounting
s3_start
t_log "s3rver restarted"
cmp "$T_DIR/a" "$MNT/a" || t_fail "read after the outage differs or fails"

# a hung server (accepts connections, never answers): tries time out
t_umount
TESSERA_S3_TIMEOUT_MS=1000 t_mount --cache-size 0
kill -STOP "$S3_PID"
read -r rc secs < <(elapsed dd if="$MNT/a" of=/dev/null bs=1M count=1)
kill -CONT "$S3_PID"
t_log "read from a hung server: exit $rc after ${secs}s: $(head -c 200 "$T_DIR/cmd.out")"
[ "$rc" -ne 0 ] || t_fail "read succeeded from a stopped server"
t_grep "Input/output error" "$T_DIR/cmd.out"
[ "$(echo "$secs < 90" | bc)" = 1 ] || t_fail "EIO only after ${secs}s"
t_grep "timed out" "$T_DIR/mount.log"
cmp "$T_DIR/a" "$MNT/a" || t_fail "read after the hang differs or fails"
head -c $((9 << 20)) /dev/urandom >"$T_DIR/c"
python3 - "$T_DIR/c" "$MNT/c" <<'PY' || t_fail "write after the outage failed"
import os, sys
data = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, data)
os.fsync(fd)
os.close(fd)
PY
t_umount
t_mount --cache-size 0
cmp "$T_DIR/c" "$MNT/c" || t_fail "data written after the outage lost"
cmp "$T_DIR/a" "$MNT/a" || t_fail "data written before the outage lost"
t_umount
t_pass
