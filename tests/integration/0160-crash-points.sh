#!/usr/bin/env bash
# Crash-point matrix: for each named crash point (src/util/crash.c) a
# fresh volume, a mount armed with TESSERA_CRASH_POINT, a small workload
# that passes the point (tests/lib/crashwork.py), the mount killed there
# (SIGKILL by itself).  fsck of that state finds nothing but what a mount
# repairs.  Then a remount and: every fsynced (or committed: the death of
# the mount process loses no committed transaction) byte is there and
# every file reads; after a clean umount fsck
# is clean; gc (min age 0) finds exactly the objects the crash left
# unreferenced, and after `gc --delete` the store holds exactly the blocks
# fsck counts as referenced, every one of them decoding (fsck --verify).
# Write-back points run with the object store blocked (0143's trick), so
# the fsynced block lives only in the staging area when the mount dies.
# Last, unset or set to nothing a mount runs every workload and lives, and
# a bad value stops the mount with one line.  Redis and PostgreSQL run
# only the points where the engine's commit matters, S3 those where the
# store's PUT and DELETE do.
# STORES: file s3
# ENGINES: sqlite redis pg
# TIMEOUT: 300
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/cache.sh"
WORK="python3 $(dirname "$0")/../lib/crashwork.py"

# POINT[:N] LEAKED: the objects gc must find unreferenced after the crash.
POINTS=(
	"write.block_uploaded:2 1"
	"write.before_commit:2 1"
	"write.after_commit:2 0"
	"fsync.before_sync:2 0"
	"fsync.after_sync:2 0"
	"compact.after_upload 1"
	"compact.after_swap 0"
	"delete.before_store 0"
	"delete.after_store 0"
	"rename.before_commit 0"
	"rename.after_commit 0"
	"stage.after_write:2 1"
	"stage.after_upload 0"
)

# Every point of the code is in the matrix, and nothing else.
listed=$(for p in "${POINTS[@]}"; do p=${p%% *}; echo "${p%%:*}"; done | sort)
known=$(sed -n 's/^\t\[CRASH_[A-Z_]*\] = "\([a-z_.]*\)",$/\1/p' \
	"$TESSERA_SRC/src/util/crash.c" | sort)
[ "$listed" = "$known" ] ||
	t_fail "crash points in crash.c and here differ: $(diff <(echo "$listed") <(echo "$known") | tr '\n' ' ')"
# Redis and PostgreSQL: the points where what a commit promises matters
# (uploads and staging do not depend on the engine), to stay lean.
# S3: the points where what a PUT or DELETE did matters (the write-back
# ones block the file store, which S3 runs cannot).
if [ "$T_STORAGE" = s3 ]; then
	POINTS=("write.block_uploaded:2 1" "write.before_commit:2 1"
		"compact.after_upload 1" "delete.after_store 0")
elif [ "$T_ENGINE" != sqlite ]; then
	POINTS=("write.after_commit:2 0" "fsync.before_sync:2 0"
		"compact.after_swap 0" "delete.after_store 0"
		"rename.after_commit 0")
fi

gc_json() { # gc_json [--delete]: gc of $T_VOL, objects of any age
	t_run 0 env TESSERA_GC_MIN_AGE_S=0 "$TESSERA_BIN" gc "$(t_vol)" --json "$@"
}
json() { # json FIELD: a top-level number of the last command's JSON
	sed -n 's/^  "'"$1"'": \([0-9]*\),\{0,1\}$/\1/p' "$T_OUT"
}
obj_dir() { echo "$TESSERA_HOME/$T_VOL/objects/$T_VOL"; }
block_store() { mkdir -p "$(obj_dir)" && touch "$(obj_dir)/chunks"; }
unblock_store() { [ ! -f "$(obj_dir)/chunks" ] || rm "$(obj_dir)/chunks"; }

# check_files POINT MANIFEST: the files of $MNT against crashwork.py's
# manifest ("RULE SHA256|- NAME" lines); every file reads (no EIO).
check_files() {
	local rule sum f got
	while read -r rule sum f; do
		if [ ! -e "$MNT/$f" ]; then
			[ "$sum" = - ] || [ "$rule" = either ] ||
				t_fail "$1: $f is missing"
			continue
		fi
		[ "$sum" != - ] || t_fail "$1: $f exists"
		got=$(sha256sum <"$MNT/$f") || t_fail "$1: cannot read $f"
		[ "${got%% *}" = "$sum" ] || { [ "$rule" = either ] && [ ! -s "$MNT/$f" ]; } ||
			t_fail "$1: $f has $(stat -c %s "$MNT/$f") bytes, not its $rule content"
	done <"$2"
	find "$MNT" -type f -exec cat {} + >/dev/null || t_fail "$1: a file does not read"
}

# wait_dead: until the armed mount process has killed itself
wait_dead() {
	for _ in $(seq 600); do
		kill -0 "$T_MOUNT_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$T_MOUNT_PID" 2>/dev/null && t_fail "$1: mount alive after 60 s"
	wait "$T_MOUNT_PID" 2>/dev/null
	local rc=$?
	[ "$rc" = 137 ] || t_fail "$1: mount exited with $rc, not by SIGKILL"
	T_MOUNT_PID=
	umount -l "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT" 2>/dev/null
	! t_is_mounted || t_fail "$1: cannot clear the dead mount"
}

n=0
for entry in "${POINTS[@]}"; do
	spec=${entry%% *} leaked=${entry##* } name=${spec%%:*}
	n=$((n + 1))
	T_VOL=v$n
	man=$T_DIR/$T_VOL.files
	cache=(--cache-dir "$T_DIR/cache-$T_VOL")
	wb=()
	t_format --trash-days 0 --block-size 64K
	: >"$T_DIR/mount.log"
	case $name in
	stage.after_write)
		block_store
		wb=(--writeback)
		;;
	stage.after_upload)
		# the fsynced block stays staged: the store refuses it
		block_store
		t_mount "${cache[@]}" --writeback
		$WORK run "$name" "$MNT" "$man" || t_fail "$name: workload"
		t_kill9
		unblock_store
		;;
	esac
	if [ "$name" = stage.after_upload ]; then
		# the staged block goes up while the mount starts: it may die
		# before it is live
		TESSERA_CRASH_POINT=$spec "$TESSERA_BIN" mount -f "$(t_vol)" "$MNT" \
			"${cache[@]}" >>"$T_DIR/mount.log" 2>&1 &
		T_MOUNT_PID=$!
	else
		TESSERA_CRASH_POINT=$spec t_mount "${cache[@]}" "${wb[@]}"
		$WORK run "$name" "$MNT" "$man" >"$T_DIR/work.log" 2>&1 ||
			t_fail "$name: workload failed before the crash: $(cat "$T_DIR/work.log")"
	fi
	wait_dead "$name"
	hit=1
	[ "$spec" = "$name" ] || hit=${spec#*:}
	t_grep "crash point '$name' reached (hit $hit)" "$T_DIR/mount.log"
	unblock_store

	# The crash state: fsck finds at most what the next mount repairs
	# (the dead session's unflushed usage, inodes only it kept alive;
	# with write-back, blocks still staged in the cache directory).
	ok=(-e 'usage counters say' -e 'orphan inode: no entry names it')
	[[ $name != stage.* ]] || ok+=(-e "object '$T_VOL/chunks/[0-9/_]*' is missing")
	"$TESSERA_BIN" fsck "$(t_vol)" --json >"$T_DIR/pre.json" 2>&1
	grep '"problem"' "$T_DIR/pre.json" | grep -v "${ok[@]}" >"$T_DIR/pre.bad" &&
		t_fail "$name: fsck of the crash state: $(cat "$T_DIR/pre.bad")"

	# recovery by an ordinary mount
	staged=$(find "$T_DIR/cache-$T_VOL" -path '*/staging/*' -type f | wc -l)
	t_mount "${cache[@]}"
	check_files "$name" "$man"
	t_umount
	# write-back: the fsynced block was only staged; umount uploaded it
	case $name in
	stage.*) [ "$staged" -ge 1 ] || t_fail "$name: nothing was staged" ;;
	esac
	[ "$(find "$T_DIR/cache-$T_VOL" -path '*/staging/*' -type f | wc -l)" = 0 ] ||
		t_fail "$name: staged blocks left after umount"
	t_run 0 tessera fsck "$(t_vol)"

	# unreferenced objects: exactly the ones the crash left, all found
	gc_json
	[ "$(json leaked_objects)" = "$leaked" ] ||
		t_fail "$name: gc found $(json leaked_objects) leaked objects, expected $leaked: $(cat "$T_OUT")"
	gc_json --delete
	gc_json
	[ "$(json leaked_objects)" = 0 ] && [ "$(json pending_deletes)" = 0 ] ||
		t_fail "$name: gc --delete left work: $(cat "$T_OUT")"
	t_run 0 tessera fsck "$(t_vol)" --verify --json
	[ "$(json problems)" = 0 ] && [ "$(json blocks)" = "$(t_objects)" ] ||
		t_fail "$name: store holds $(t_objects) objects: $(cat "$T_OUT")"
	t_log "$spec: ok ($(json blocks) blocks, $leaked leaked)"
done

# The rest depends on neither the engine nor the store.
[ "$T_ENGINE" = sqlite ] && [ "$T_STORAGE" = file ] || exit 0

# Unset: the same workloads pass every point and the mount lives on.
T_VOL=noop
t_format --trash-days 0 --block-size 64K
: >"$T_DIR/mount.log"
t_mount --cache-dir "$T_DIR/cache-noop" --writeback
$WORK noop "$MNT" "$T_DIR/noop.files" || t_fail "workloads on an unarmed mount"
for _ in $(seq 300); do
	[ "$(t_stat compactions)" -ge 2 ] && [ "$(t_stat deleted_slices)" -ge 2 ] &&
		[ "$(t_stat cache_staged)" = 0 ] && break
	sleep 0.1
done
[ "$(t_stat compactions)" -ge 2 ] || t_fail "no compaction on the unarmed mount"
[ "$(t_stat deleted_slices)" -ge 2 ] || t_fail "no deletion on the unarmed mount"
kill -0 "$T_MOUNT_PID" || t_fail "unarmed mount died"
grep -q "crash point" "$T_DIR/mount.log" && t_fail "a crash point fired unarmed"
t_umount
TESSERA_CRASH_POINT= t_mount
t_umount

# A bad value: one line, exit 1, no mount.
for bad in nope write.after_commit:0 write.after_commit:x; do
	TESSERA_CRASH_POINT=$bad t_run 1 tessera mount -f "$(t_vol)" "$MNT"
	t_one_line_err
	t_grep "TESSERA_CRASH_POINT='$bad'" "$T_ERR"
	! t_is_mounted || t_fail "mounted with TESSERA_CRASH_POINT=$bad"
done
