#!/usr/bin/env bash
# tests/lib/multi.sh - several mounts of one volume, for the multi-client
# tests (sourced after mount.sh):
#
#   t_require_shared        skip unless the engine is redis, pg, mysql or etcd
#   t_mount_n N [options]   mount $(t_vol) at $T_DIR/mN in the foreground
#                           process of a background job, with its own
#                           TESSERA_HOME ($T_DIR/homeN) and log
#                           ($T_DIR/mountN.log); wait until live
#   t_mnt N                 prints $T_DIR/mN
#   t_umount_n N            tessera umount, wait for the process (exit 0)
#   t_kill9_n N             kill -9 the process, clear the dead mount
#
# The EXIT trap unmounts what is left (before mount.sh removes $T_DIR).
declare -A T_MPID=()

t_require_shared() {
	case "$T_ENGINE" in
	redis | pg | mysql | etcd) ;;
	*) t_skip "needs a shared metadata engine (TESSERA_TEST_META_ENGINE=redis, pg or mysql)" ;;
	esac
}

t_mnt() { echo "$T_DIR/m$1"; }

t_mount_n() {
	local n=$1 d
	shift
	d=$(t_mnt "$n")
	t_require_fuse
	mkdir -p "$d" "$T_DIR/home$n"
	TESSERA_HOME=$T_DIR/home$n "$TESSERA_BIN" mount -f "$(t_vol)" "$d" "$@" \
		>>"$T_DIR/mount$n.log" 2>&1 &
	T_MPID[$n]=$!
	for _ in $(seq 200); do
		if t_is_mounted "$d" && [ -e "$d/.stats" ]; then
			return 0
		fi
		kill -0 "${T_MPID[$n]}" 2>/dev/null || {
			tail -n 5 "$T_DIR/mount$n.log" >&2
			t_fail "mount $n exited before it was live"
		}
		sleep 0.1
	done
	t_fail "mount $n did not become live in 20 s"
}

t_umount_n() {
	local n=$1 rc
	tessera umount "$(t_mnt "$n")" || t_fail "tessera umount of mount $n failed"
	wait "${T_MPID[$n]}" 2>/dev/null
	rc=$?
	unset "T_MPID[$n]"
	[ $rc -eq 0 ] || t_fail "mount process $n exited with $rc"
}

t_kill9_n() {
	local n=$1 d
	d=$(t_mnt "$n")
	kill -9 "${T_MPID[$n]}"
	wait "${T_MPID[$n]}" 2>/dev/null
	unset "T_MPID[$n]"
	umount -l "$d" 2>/dev/null || fusermount3 -u -z "$d" 2>/dev/null
	! t_is_mounted "$d" || t_fail "cannot clear the dead mount $n"
}

t_multi_cleanup() {
	local n d
	for n in "${!T_MPID[@]}"; do
		d=$(t_mnt "$n")
		if t_is_mounted "$d"; then
			timeout 60 "$TESSERA_BIN" umount "$d" >/dev/null 2>&1 ||
				umount -l "$d" 2>/dev/null ||
				fusermount3 -u -z "$d" 2>/dev/null
		fi
		for _ in $(seq 100); do
			kill -0 "${T_MPID[$n]}" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "${T_MPID[$n]}" 2>/dev/null
		if [ -s "$T_DIR/mount$n.log" ]; then
			echo "--- mount $n log (tail)" >&9
			tail -n 10 "$T_DIR/mount$n.log" >&9
		fi
	done
	# mounts cleared by t_kill9_n may still be listed
	for d in "$T_DIR"/m[0-9]*; do
		[ -d "$d" ] && t_is_mounted "$d" && umount -l "$d" 2>/dev/null
	done
	return 0
}
t_on_exit t_multi_cleanup
