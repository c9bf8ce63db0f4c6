#!/usr/bin/env bash
# tessera warmup: --check reports what is cached, warmup fetches files and
# whole trees into the disk cache (then they read with the store's blocks
# gone), --evict drops them; errors end with a clear message.
# TIMEOUT: 300
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/cache.sh"

CHUNKS=$TESSERA_HOME/$T_VOL/objects/$T_VOL/chunks
t_format --trash-days 0
t_mount --cache-dir "$T_DIR/cache" --cache-size 1G
mkdir -p "$MNT/tree/sub"
t_gen "$MNT/big" 1 10
t_gen "$MNT/tree/a" 2 5
t_gen "$MNT/tree/sub/b" 3 1
echo small >"$MNT/tree/sub/c"
: >"$MNT/tree/empty"
ln -s big "$MNT/tree/link"
for f in big tree/a tree/sub/b tree/sub/c; do
	md5sum <"$MNT/$f" >"$T_DIR/$(basename $f).md5"
done
t_umount
rm -rf "$T_DIR/cache" # start cold
t_mount --cache-dir "$T_DIR/cache" --cache-size 1G

t_run 0 tessera warmup --check "$MNT"
t_grep '^5 files: 0 B of 16.0 MiB cached (0.0%), 0 of 7 blocks$' "$T_OUT"
t_run 0 tessera warmup "$MNT/big"
t_grep '^1 files: 10.0 MiB of 10.0 MiB cached, 0 blocks failed$' "$T_OUT"
t_run 0 tessera warmup -p 3 "$MNT/tree"
t_grep '^4 files: 6.0 MiB of 6.0 MiB cached, 0 blocks failed$' "$T_OUT"
t_run 0 tessera warmup "$MNT" --check
t_grep '^5 files: 16.0 MiB of 16.0 MiB cached (100.0%), 7 of 7 blocks$' "$T_OUT"
[ "$(t_cache_files raw)" = 7 ] || t_fail "$(t_cache_files raw) cache files"

# Warm files read with the store's blocks gone (after a remount).
t_umount
t_mount --cache-dir "$T_DIR/cache" --cache-size 1G
mv "$CHUNKS" "$T_DIR/away"
t_on_exit "[ -d '$T_DIR/away' ] && mv '$T_DIR/away' '$CHUNKS'"
for f in big tree/a tree/sub/b tree/sub/c; do
	[ "$(md5sum <"$MNT/$f")" = "$(cat "$T_DIR/$(basename $f).md5")" ] ||
		t_fail "$f differs"
done
mv "$T_DIR/away" "$CHUNKS"

t_run 0 tessera warmup --evict "$MNT/tree"
t_grep '^4 files: evicted 4 blocks (6.0 MiB)$' "$T_OUT"
t_run 0 tessera warmup --check "$MNT/tree" "$MNT/big"
t_grep '^5 files: 10.0 MiB of 16.0 MiB cached (62.5%), 3 of 7 blocks$' \
	"$T_OUT"

# The control file's protocol: hidden, one request at a time per handle.
ls -a "$MNT" | grep -q control && t_fail ".control shows in readdir"
python3 - "$MNT" "$(stat -c %i "$MNT/big")" <<'PY' || t_fail "control protocol"
import errno, os, sys
mnt, ino = sys.argv[1], int(sys.argv[2])
fd = os.open(os.path.join(mnt, ".control"), os.O_RDWR)
for bad in (b"bogus\n", b"check\n", b"check 1 2\n", b"warm x\n"):
    try:
        os.write(fd, bad)
        raise SystemExit("accepted %r" % bad)
    except OSError as e:
        assert e.errno == errno.EINVAL, e
assert os.read(fd, 256) == b""          # idle: end of file
os.write(fd, b"check %d\n" % ino)
try:
    os.write(fd, b"check %d\n" % ino)
    raise SystemExit("second request accepted")
except OSError as e:
    assert e.errno == errno.EBUSY, e
line = os.read(fd, 256).decode()
assert line == "done 0 3 %d 3 %d 0\n" % (10 << 20, 10 << 20), line
os.write(fd, b"check 987654321\n")
assert os.read(fd, 256).decode().startswith("done %d " % errno.ENOENT)
PY

# Errors.
t_run 2 tessera warmup
t_one_line_err
t_run 2 tessera warmup --evict --check "$MNT"
t_one_line_err
t_run 2 tessera warmup -p 0 "$MNT"
t_one_line_err
t_run 1 tessera warmup /tmp
t_grep "is not inside a tessera mount" "$T_ERR"
t_one_line_err
t_run 1 tessera warmup "$MNT/nope"
t_grep "No such file" "$T_ERR"
t_umount
# A cache directory that cannot be made: one clear line, no mount.
touch "$T_DIR/file"
t_run 1 tessera mount "$T_VOL" "$MNT" --cache-dir "$T_DIR/file"
t_grep "cannot create cache directory '$T_DIR/file/" "$T_ERR"
t_one_line_err
t_is_mounted && t_fail "mounted with a bad cache directory"
t_mount --cache-size 0
t_run 1 tessera warmup "$MNT/big"
t_grep "'$MNT/big': the mount has no disk cache" "$T_ERR"
t_umount
