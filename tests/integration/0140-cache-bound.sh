#!/usr/bin/env bash
# Writing far more than --cache-size (64M), with every written block cached
# (--cache-large-write), keeps the disk cache directory
# within the size plus one block (4 MiB), while writing and while reading
# everything back; the bound is exercised (blocks get evicted).  The
# amount written is TESSERA_TEST_CACHE_MB MiB (default 512).
# TIMEOUT: 900
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/cache.sh"

MB=${TESSERA_TEST_CACHE_MB:-512}
LIMIT=$(((64 + 4) << 20))
t_format --trash-days 0
t_mount --cache-dir "$T_DIR/cache" --cache-size 64M --cache-large-write

max=0
sample() {
	local b
	b=$(t_cache_bytes)
	[ "$b" -gt "$max" ] && max=$b
	[ "$b" -le "$LIMIT" ] || t_fail "cache holds $b bytes > $LIMIT"
}

nfiles=$(((MB + 31) / 32))
(
	for i in $(seq "$nfiles"); do
		t_gen "$MNT/f$i" "$i" 32 || exit 1
	done
) &
writer=$!
while kill -0 $writer 2>/dev/null; do
	sample
	sleep 0.2
done
wait $writer || t_fail "writing failed"
sample
[ "$(t_stat cache_evictions)" -gt 0 ] || t_fail "nothing was evicted"
[ "$(t_stat cache_used_bytes)" -le $((64 << 20)) ] ||
	t_fail "cache_used_bytes $(t_stat cache_used_bytes) > 64 MiB"

# Read back (after a remount: cold memory, warm disk) and verify, newest
# first: the cache holds the last blocks written.
t_umount
sample
t_mount --cache-dir "$T_DIR/cache" --cache-size 64M
(
	for i in $(seq "$nfiles" -1 1); do
		t_gen "$T_DIR/want" "$i" 32
		cmp -s "$T_DIR/want" "$MNT/f$i" || { echo "f$i differs"; exit 1; }
	done
) &
reader=$!
while kill -0 $reader 2>/dev/null; do
	sample
	sleep 0.2
done
wait $reader || t_fail "read back wrong data"
sample
[ "$(t_stat cache_hits)" -gt 0 ] || t_fail "no block came from the disk cache"
t_umount
t_log "largest cache directory seen: $max bytes (limit $LIMIT)"
