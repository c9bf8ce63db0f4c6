#!/usr/bin/env bash
# Memory stays within --buffer-size: a sequential write of
# TESSERA_TEST_MEM_MB MiB (default 1024) with --buffer-size 64M, then
# reading it back, keeps the mount's peak RSS (VmHWM) under 64 MiB plus a
# fixed 32 MiB for everything else (binary, libraries, SQLite, FUSE
# threads' buffers; about 11 MiB at rest).  Also with --writeback.
# STORES: file s3
# TIMEOUT: 900
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/cache.sh"

MB=${TESSERA_TEST_MEM_MB:-1024}
BOUND_KB=$(((64 + 32) * 1024))
hwm() {
	local pid
	pid=$(t_stat pid)
	awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status"
}
t_format --trash-days 0
for mode in plain writeback; do
	extra=()
	[ $mode = writeback ] && extra=(--writeback)
	t_mount --buffer-size 64M --cache-dir "$T_DIR/cache" --cache-size 64M \
		"${extra[@]}"
	dd if=/dev/zero of="$MNT/big" bs=1M count="$MB" conv=fsync \
		status=none || t_fail "write failed"
	h=$(hwm)
	t_log "$mode: VmHWM after writing $MB MiB: $h kB"
	[ "$h" -le "$BOUND_KB" ] || t_fail "$mode write: VmHWM $h kB > $BOUND_KB kB"
	[ "$(cmp -n $((MB << 20)) "$MNT/big" /dev/zero 2>&1)" = "" ] ||
		t_fail "read back wrong data"
	h=$(hwm)
	t_log "$mode: VmHWM after reading: $h kB"
	[ "$h" -le "$BOUND_KB" ] || t_fail "$mode read: VmHWM $h kB > $BOUND_KB kB"
	t_umount
done
