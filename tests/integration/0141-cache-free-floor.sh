#!/usr/bin/env bash
# The free-space floor: on a 64 MiB tmpfs with --free-space-ratio 0.5 and a
# cache size far above it, caching stops at the floor (free space never
# below half, up to one block), and when something else takes space the
# evictor gives blocks back until the floor holds again.  Needs root.
# TIMEOUT: 300
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/cache.sh"

[ "$(id -u)" = 0 ] || t_skip "needs root (mounts a tmpfs)"
FS=$T_DIR/cachefs
mkdir -p "$FS"
mount -t tmpfs -o size=64m,mode=0700 tessera-test "$FS" ||
	t_skip "cannot mount a tmpfs"
fs_cleanup() {
	t_is_mounted && { timeout 60 "$TESSERA_BIN" umount "$MNT" ||
		umount -l "$MNT"; }
	umount "$FS" 2>/dev/null || umount -l "$FS"
}
t_on_exit fs_cleanup

BLOCK=$((4 << 20))
total() { echo $(($(stat -f -c '%b' "$FS") * $(stat -f -c '%S' "$FS"))); }
avail() { echo $(($(stat -f -c '%a' "$FS") * $(stat -f -c '%S' "$FS"))); }
FLOOR=$(($(total) / 2))
check_floor() {
	local a
	a=$(avail)
	[ "$a" -ge $((FLOOR - BLOCK)) ] ||
		t_fail "free space $a below the floor $FLOOR (minus a block)"
}

t_format --trash-days 0
t_mount --cache-dir "$FS" --cache-size 1G --free-space-ratio 0.5 \
	--cache-large-write
(
	for i in $(seq 8); do
		t_gen "$MNT/f$i" "$i" 16 || exit 1
	done
) &
writer=$!
while kill -0 $writer 2>/dev/null; do
	check_floor
	sleep 0.2
done
wait $writer || t_fail "writing failed"
check_floor
blocks=$(t_stat cache_blocks)
[ "$blocks" -gt 0 ] || t_fail "nothing cached"
[ $(($(t_stat cache_drops) + $(t_stat cache_evictions))) -gt 0 ] ||
	t_fail "the floor never stopped caching"
t_log "cached $blocks blocks, free $(avail) of $(total)"

# Someone else takes 16 MiB: the evictor frees space (checks every second).
head -c $((16 << 20)) /dev/zero >"$FS/junk"
[ "$(avail)" -lt "$FLOOR" ] || t_fail "junk did not push below the floor"
for _ in $(seq 100); do
	[ "$(avail)" -ge "$FLOOR" ] && break
	sleep 0.1
done
[ "$(avail)" -ge "$FLOOR" ] || t_fail "evictor did not restore the floor"
[ "$(t_stat cache_blocks)" -lt "$blocks" ] || t_fail "no block evicted"
# Files stay correct throughout.
for i in $(seq 8); do
	t_gen "$T_DIR/want" "$i" 16
	cmp -s "$T_DIR/want" "$MNT/f$i" || t_fail "f$i differs"
done
check_floor
t_umount
