#!/usr/bin/env bash
# A file store beside the cache gets none by default; writing caches
# partial blocks only (full ones with --cache-large-write);
# files read before are served from the disk cache after a remount with the
# object store's blocks moved away; a corrupted cache file is detected,
# its block fetched from the store again and the file replaced.
# TIMEOUT: 300
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/cache.sh"

CHUNKS=$TESSERA_HOME/$T_VOL/objects/$T_VOL/chunks
t_format --trash-days 0
# Without --cache-size, a file store on the cache's filesystem gets no
# block cache (it would write every block twice to the same disk).
t_mount --cache-dir "$T_DIR/cache"
echo hello >"$MNT/small"
t_umount
[ "$(t_cache_files raw)" = 0 ] ||
	t_fail "$(t_cache_files raw) blocks cached without a cache"
t_mount --cache-dir "$T_DIR/cache" --cache-size 1G
t_gen "$MNT/big" 1 9
t_gen "$MNT/mid" 2 3
echo hello >"$MNT/small"
t_umount
# big: 2 full blocks + 1 MiB, mid: 3 MiB, small: the 3 partial ones
[ "$(t_cache_files raw)" = 3 ] ||
	t_fail "$(t_cache_files raw) blocks cached after writing, want 3"
t_mount --cache-dir "$T_DIR/cache" --cache-size 1G
for f in big mid small; do md5sum <"$MNT/$f" >"$T_DIR/$f.md5"; done
t_umount
[ "$(t_cache_files raw)" = 5 ] ||
	t_fail "$(t_cache_files raw) blocks cached after reading, want 5"

same() {
	local f
	for f in big mid small; do
		[ "$(md5sum <"$MNT/$f")" = "$(cat "$T_DIR/$f.md5")" ] ||
			t_fail "$f differs ($1)"
	done
}

# Remount (index rebuilt), then take the blocks away from the store.
t_mount --cache-dir "$T_DIR/cache" --cache-size 1G
mv "$CHUNKS" "$T_DIR/away"
t_on_exit "[ -d '$T_DIR/away' ] && mv '$T_DIR/away' '$CHUNKS'"
same "store gone"
[ "$(t_stat cache_hits)" -ge 5 ] || t_fail "reads not served by the cache"
t_umount
mv "$T_DIR/away" "$CHUNKS"

# Corrupt one cached block: the mount notices and refetches it.
victim=$(find "$T_DIR"/cache/*/raw -type f -name '*_1_*' | head -n 1)
[ -n "$victim" ] || t_fail "no cached second block"
printf 'X' | dd of="$victim" bs=1 seek=1000 conv=notrunc status=none
t_mount --cache-dir "$T_DIR/cache" --cache-size 1G
same "corrupt cache file"
[ "$(t_stat cache_corrupt)" = 1 ] || t_fail "corruption not counted"
t_umount
grep -q "is corrupt" "$T_DIR/mount.log" || t_fail "corruption not logged"
# ... and the cache file was replaced by a good copy: store away again.
[ -f "$victim" ] || t_fail "cache file not replaced"
t_mount --cache-dir "$T_DIR/cache" --cache-size 1G
mv "$CHUNKS" "$T_DIR/away"
same "replaced cache file"
t_umount
mv "$T_DIR/away" "$CHUNKS"
