#!/usr/bin/env bash
# Corrupt or missing block objects are reported, never returned as data
# (DESIGN 7.3): after a byte of one block object is flipped and another
# block object is deleted behind the mount's back, reading those ranges
# fails with EIO and the mount log names the key, while the other blocks
# of the same file still read back right.  Plain and lz4 volumes.
# STORES: file s3
# TIMEOUT: 180
. "$(dirname "$0")/../lib/mount.sh"

MiB=$((1 << 20))
# 3 full 4 MiB blocks and a short one; compressible, so lz4 applies
python3 - "$T_DIR/data" <<'PY'
import random, sys
rng = random.Random(142)
words = [b"tessera", b"block", b"object", b"slice", b"chunk", b"frame"]
out = bytearray()
while len(out) < 12 * (1 << 20) + 1000:
    out += rng.choice(words) + b" %d\n" % rng.randrange(1000)
open(sys.argv[1], "wb").write(out[:12 * (1 << 20) + 1000])
PY

check_volume() { # VOLUME [format options]
	T_VOL=$1
	shift
	t_format --trash-days 0 "$@"
	t_mount --cache-size 0
	cp "$T_DIR/data" "$MNT/f"
	t_umount
	local keys k1 k2
	keys=$(t_obj_keys)
	[ "$(echo "$keys" | wc -l)" -eq 4 ] || t_fail "expected 4 block objects: $keys"
	k1=$(echo "$keys" | grep '_1_4194304$')
	k2=$(echo "$keys" | grep '_2_4194304$')
	[ -n "$k1" ] && [ -n "$k2" ] || t_fail "no keys of blocks 1 and 2 in: $keys"
	t_obj_flip "$k1" 3000 || t_fail "cannot flip a byte of $k1"
	t_obj_rm "$k2" || t_fail "cannot delete $k2"

	t_mount --cache-size 0
	python3 - "$T_DIR/data" "$MNT/f" <<'PY' || t_fail "$T_VOL: wrong reads"
import errno, os, sys
want = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_RDONLY)
MiB = 1 << 20
bad = range(4 * MiB, 12 * MiB)  # blocks 1 (flipped) and 2 (missing)
# whole file in one go: fails, or would have to return wrong bytes
try:
    got = os.pread(fd, len(want), 0)
    assert got == want[:len(got)], "wrong bytes from a whole-file read"
    assert len(got) <= 4 * MiB, "read past a broken block: %d" % len(got)
except OSError as e:
    assert e.errno == errno.EIO, e
for off in list(range(0, len(want), MiB // 2)) + [4 * MiB - 10, 12 * MiB - 5]:
    try:
        got = os.pread(fd, 4096, off)
    except OSError as e:
        assert e.errno == errno.EIO, (off, e)
        assert off + 4096 > bad.start and off < bad.stop, "EIO at %d" % off
        continue
    assert got == want[off:off + len(got)], "wrong bytes at %d" % off
    # short only where the range runs into a broken block, or at EOF
    end = off + len(got)
    assert not (bad.start <= off < bad.stop), "broken block read at %d" % off
    assert len(got) == 4096 or end in (bad.start, len(want)), \
        "short read at %d" % off
os.close(fd)
PY
	t_grep "cannot read block '$k1': " "$T_DIR/mount.log"
	t_grep "cannot read block '$k2': object is missing" "$T_DIR/mount.log"
	grep "cannot read block '$k1': " "$T_DIR/mount.log" | head -n 1
	t_umount
}

check_volume plain
check_volume packed --compress lz4
t_pass
