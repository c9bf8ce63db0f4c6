#!/usr/bin/env bash
# kill -9 of the mount process while a writer fsyncs every few MiB: after a
# remount every fsynced byte is there and every file is readable (DESIGN
# 7.2).  Then SIGTERM of the mount process with a file open and writes
# buffered: the mount flushes before it exits.
# STORES: file s3
# ENGINES: sqlite redis pg
# TIMEOUT: 300
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0
t_mount

progress=$T_DIR/progress
cat >"$T_DIR/writer.py" <<'PY'
import os, random, sys, time

mnt, progress = sys.argv[1], sys.argv[2]
MiB = 1 << 20

def block(i):
    return random.Random(i).randbytes(MiB)

def note(n, small):
    with open(progress + ".tmp", "w") as f:
        f.write("%d %d\n" % (n, small))
        f.flush()
        os.fsync(f.fileno())
    os.rename(progress + ".tmp", progress)

fd = os.open(os.path.join(mnt, "stream"), os.O_WRONLY | os.O_CREAT, 0o644)
i = small = 0
try:
    while True:
        os.write(fd, block(i))
        i += 1
        if i % 3 == 0:
            os.fsync(fd)
            # a small file per fsync, fsynced too
            p = os.path.join(mnt, "small-%d" % small)
            with open(p, "wb") as f:
                f.write(block(1000000 + small)[: 1000 + small])
                f.flush()
                os.fsync(f.fileno())
            small += 1
            note(i * MiB, small)
except OSError:
    pass   # the mount went away under us
PY
python3 "$T_DIR/writer.py" "$MNT" "$progress" &
writer=$!
for _ in $(seq 600); do
	[ -f "$progress" ] && [ "$(cut -d' ' -f1 "$progress")" -ge $((40 << 20)) ] && break
	kill -0 $writer 2>/dev/null || t_fail "writer died early"
	sleep 0.1
done
[ -f "$progress" ] || t_fail "writer made no progress"
kill -9 "$T_MOUNT_PID"
wait "$T_MOUNT_PID" 2>/dev/null
T_MOUNT_PID=
wait $writer
# tessera umount clears a dead mount (no process to wait for)
t_run 0 tessera umount "$MNT"
t_is_mounted && t_fail "dead mount still there after tessera umount"
read -r synced small <"$progress"
t_log "fsynced $synced bytes of stream, $small small files before kill -9"

t_mount
python3 - "$MNT" "$synced" "$small" <<'PY' || t_fail "fsynced data lost after kill -9"
import os, random, sys

mnt, synced, small = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
MiB = 1 << 20
block = lambda i: random.Random(i).randbytes(MiB)
st = os.stat(os.path.join(mnt, "stream"))
assert st.st_size >= synced, "stream has %d < %d fsynced bytes" % (st.st_size, synced)
with open(os.path.join(mnt, "stream"), "rb") as f:
    for i in range(synced // MiB):
        assert f.read(MiB) == block(i), "block %d of the stream differs" % i
for s in range(small):
    with open(os.path.join(mnt, "small-%d" % s), "rb") as f:
        assert f.read() == block(1000000 + s)[: 1000 + s], "small-%d" % s
# every file is readable, whatever was in flight
for name in os.listdir(mnt):
    with open(os.path.join(mnt, name), "rb") as f:
        while f.read(4 * MiB):
            pass
print("ok")
PY

# SIGTERM with buffered writes on an open file: flushed before exit
python3 - "$MNT/open-at-term" <<'PY' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"T" * (5 << 20))
open(sys.argv[1] + ".ready", "w").close()
time.sleep(30)
PY
holder=$!
for _ in $(seq 100); do
	[ -e "$MNT/open-at-term.ready" ] && break
	sleep 0.1
done
kill -TERM "$T_MOUNT_PID"
wait "$T_MOUNT_PID" || t_fail "mount process exited non-zero on SIGTERM"
T_MOUNT_PID=
kill $holder 2>/dev/null
wait $holder 2>/dev/null
t_is_mounted && { umount -l "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT"; }
t_mount
[ "$(stat -c %s "$MNT/open-at-term")" = $((5 << 20)) ] ||
	t_fail "buffered writes lost at SIGTERM ($(stat -c %s "$MNT/open-at-term"))"
[ "$(tr -d T <"$MNT/open-at-term" | wc -c)" = 0 ] || t_fail "wrong bytes"
t_umount
