#!/usr/bin/env bash
# --writeback: fsync returns once blocks are staged on local disk, even with
# the object store refusing writes; kill -9 right after; the next mount
# (write-back off) serves the data at once, uploads the staged blocks and
# empties the staging area; with the cache directory deleted and caching
# off, the store alone then holds every byte.
# TIMEOUT: 300
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/cache.sh"

OBJ=$TESSERA_HOME/$T_VOL/objects/$T_VOL
t_format --trash-days 0
t_mount --cache-dir "$T_DIR/cache" --writeback
# Block the store: block keys live under $OBJ/chunks/, make it a file.
mkdir -p "$OBJ"
[ -e "$OBJ/chunks" ] && t_fail "chunks exist before any write"
touch "$OBJ/chunks"

python3 - "$MNT" <<'PY' || t_fail "writes or fsync failed in write-back mode"
import os, random, sys
mnt = sys.argv[1]
data = random.Random(7).randbytes(10 << 20)
fd = os.open(os.path.join(mnt, "data"), os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, data)
os.fsync(fd)
os.close(fd)
with open(os.path.join(mnt, "small"), "wb") as f:
    f.write(b"tiny\n")
    f.flush()
    os.fsync(f.fileno())
PY
t_kill9
staged=$(t_cache_files staging)
[ "$staged" -ge 4 ] || t_fail "only $staged staged blocks after kill -9"
[ "$(t_objects)" = 0 ] || t_fail "blocks reached the blocked store"
rm "$OBJ/chunks"

check() {
	python3 - "$MNT" <<'PY' || t_fail "data wrong or missing ($1)"
import os, random, sys
mnt = sys.argv[1]
assert open(os.path.join(mnt, "data"), "rb").read() == \
    random.Random(7).randbytes(10 << 20)
assert open(os.path.join(mnt, "small"), "rb").read() == b"tiny\n"
PY
}

t_mount --cache-dir "$T_DIR/cache"
check "after kill -9"
for _ in $(seq 600); do
	[ "$(t_stat cache_staged)" = 0 ] && break
	sleep 0.1
done
[ "$(t_stat cache_staged)" = 0 ] || t_fail "staged blocks not uploaded"
[ "$(t_cache_files staging)" = 0 ] || t_fail "staging not emptied"
[ "$(t_objects)" -ge "$staged" ] || t_fail "$(t_objects) objects < $staged"
t_umount

rm -rf "$T_DIR/cache"
t_mount --cache-dir "$T_DIR/cache" --cache-size 0
check "from the store alone"
t_umount
