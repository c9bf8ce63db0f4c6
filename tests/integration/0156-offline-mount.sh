#!/usr/bin/env bash
# A mount starts while the object store is unreachable (issue #24 item 4,
# DESIGN 7.4 and 7.9).  With the metadata local (SQLite, not replicated)
# and the store down, `tessera mount` succeeds with one warning; blocks in
# the disk cache read back right, an uncached block is EIO, a write with
# --writeback is staged and fsync succeeds.  When the store comes back,
# without a remount, the staged blocks go out, new reads and writes work,
# and the log says "down" and "back" once each (not a line per request).
# A store that answers "no" is still refused at mount with one line:
# refused credentials (403), a deleted bucket (404).  A writable mount of
# a replicated volume, whose lease lives in the unreachable store, is
# refused too (--read-only mounts its local copy), and so is
# STORAGE-URL/NAME on a host with no copy of the metadata.  The test runs its own s3rver (free
# port, private data) so that stopping it disturbs no other test.
# STORES: s3
# TIMEOUT: 180
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/cache.sh"

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

# mount_fails VOLUME WHAT [options]: refused with one line matching WHAT
mount_fails() {
	local vol=$1 what=$2
	shift 2
	t_run 1 tessera mount "$vol" "$MNT" "$@"
	t_one_line_err
	t_grep "$what" "$T_ERR"
	! t_is_mounted || t_fail "$vol mounted: $(cat "$T_ERR")"
}

s3_start
export TESSERA_S3_RETRIES=1 TESSERA_S3_TIMEOUT_MS=2000 TESSERA_S3_CONNECT_TIMEOUT_MS=1000
T_S3_URL=$url/offline # t_obj_keys lists it (and the cleanup removes it)
t_format --storage "$T_S3_URL" --replicate=off --trash-days 0
tessera format --storage "$url/offline-gone" --replicate=off gone >/dev/null ||
	t_fail "format gone"
tessera format --storage "$url/offline-repl" rvol >/dev/null ||
	t_fail "format rvol"

# a store that answers "no" is refused, even with local metadata
TESSERA_ACCESS_KEY=NOSUCHKEY mount_fails "$(t_vol)" "access denied"
python3 "$T_S3OBJ" rb "$url/offline-gone" || t_fail "cannot remove bucket"
mount_fails gone "bucket does not exist"

# files in the disk cache: written, then read once (full blocks are cached
# by reading after a remount); "cold" is written only, so its two full blocks are not
t_mount --cache-dir "$T_DIR/cache" --cache-size 1G
t_gen "$MNT/big" 1 9
echo hello >"$MNT/small"
t_gen "$T_DIR/cold" 3 8
cp "$T_DIR/cold" "$MNT/cold"
t_umount
t_mount --cache-dir "$T_DIR/cache" --cache-size 1G
for f in big small; do md5sum <"$MNT/$f" >"$T_DIR/$f.md5"; done
t_umount
cached=$(t_cache_files raw)
[ "$cached" = 4 ] || t_fail "$cached blocks cached, want 4 (big 3, small 1)"
before=$(t_objects)
T_META= T_VOL=rvol t_mount
echo "replicated note" >"$MNT/note"
t_umount

s3_stop
t_log "s3rver stopped"
mount_fails rvol "cannot write volume 'rvol': .* unreachable"
# STORAGE-URL/NAME, no local copy: its metadata is only in the store
TESSERA_HOME=$T_DIR/home2 mount_fails "$url/offline-repl/rvol" \
	"cannot open storage '$url/offline-repl': cannot connect"
t_run 0 tessera status rvol
t_grep "store: *unreachable (cannot connect" "$T_OUT"
T_META= T_VOL=rvol t_mount --read-only
[ "$(cat "$MNT/note")" = "replicated note" ] ||
	t_fail "cached file of the read-only replicated volume unreadable"
t_umount

# without --writeback: the mount starts, fsync of new data is EIO
t_mount --cache-dir "$T_DIR/cache" --cache-size 1G
t_grep "unreachable (.*): mounting anyway.*fsync and close of written files fail with EIO" "$T_DIR/mount.log"
python3 - "$MNT/lost" <<'PY' || t_fail "fsync did not fail with the store down"
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, os.urandom(5 << 20))
try:
    os.fsync(fd)
except OSError as e:
    sys.exit(e.errno != errno.EIO)
sys.exit(1)
PY
t_umount

: >"$T_DIR/mount.log"
t_mount --cache-dir "$T_DIR/cache" --cache-size 1G --writeback
[ "$(grep -c "unreachable" "$T_DIR/mount.log")" = 1 ] ||
	t_fail "not one warning: $(cat "$T_DIR/mount.log")"
t_grep "object store '$url/offline' is unreachable (.*connection refused.*): mounting anyway" "$T_DIR/mount.log"
[ "$(t_stat store_down)" = 1 ] || t_fail "store_down $(t_stat store_down)"
for f in big small; do
	[ "$(md5sum <"$MNT/$f")" = "$(cat "$T_DIR/$f.md5")" ] ||
		t_fail "cached $f differs with the store down"
done
dd if="$MNT/cold" of=/dev/null bs=1M 2>"$T_DIR/dd.err" &&
	t_fail "uncached read succeeded with the store down"
t_grep "Input/output error" "$T_DIR/dd.err"
t_gen "$T_DIR/new" 4 6
python3 - "$T_DIR/new" "$MNT/new" <<'PY' || t_fail "write-back write failed with the store down"
import os, sys
data = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, data)
os.fsync(fd)
os.close(fd)
PY
staged=$(t_stat cache_staged)
[ "$staged" -ge 2 ] || t_fail "$staged blocks staged, want 2"
cmp "$T_DIR/new" "$MNT/new" || t_fail "staged file reads back wrong"

# the store is back: no remount
s3_start
t_log "s3rver restarted"
cmp "$T_DIR/cold" "$MNT/cold" || t_fail "uncached read fails after the outage"
for _ in $(seq 300); do
	[ "$(t_stat cache_staged)" = 0 ] && break
	sleep 0.1
done
[ "$(t_stat cache_staged)" = 0 ] || t_fail "staged blocks not uploaded"
[ "$(t_stat store_down)" = 0 ] || t_fail "store still down in .stats"
[ "$(t_stat store_outages)" = 1 ] || t_fail "outages $(t_stat store_outages)"
t_gen "$T_DIR/after" 5 5
cp "$T_DIR/after" "$MNT/after" && sync "$MNT/after" || t_fail "write after"
t_umount
# once down (the warning), once back; no line per failed request
[ "$(grep -c "answers again" "$T_DIR/mount.log")" = 1 ] ||
	t_fail "not one 'answers again' line"
[ "$(grep -c "unreachable" "$T_DIR/mount.log")" = 1 ] ||
	t_fail "the outage logged more than once"
! grep "ERROR cannot get\|WARN cannot upload staged" "$T_DIR/mount.log" ||
	t_fail "a line per failed request"
[ "$(t_objects)" -ge $((before + 4)) ] ||
	t_fail "$(t_objects) objects, want $before + new (2) + after (2)"

# everything is in the store: no cache, all files right, fsck clean
t_mount --cache-dir "$T_DIR/cache2" --cache-size 0
for f in cold new after; do
	cmp "$T_DIR/$f" "$MNT/$f" || t_fail "$f wrong from the store"
done
for f in big small; do
	[ "$(md5sum <"$MNT/$f")" = "$(cat "$T_DIR/$f.md5")" ] ||
		t_fail "$f differs from the store"
done
t_umount
t_run 0 tessera fsck "$(t_vol)"
t_pass
