#!/usr/bin/env bash
# tests/lib/mount.sh - sourced by integration tests that need a real mount
# (builds on common.sh: t_fail, t_skip, t_run, t_grep, t_one_line_err).
#
#   . "$(dirname "$0")/../lib/mount.sh"
#   t_format [format options]       # tessera format [options] $T_VOL
#   t_mount [mount options]         # mount $T_VOL at $MNT (foreground
#                                   # process in the background, log in
#                                   # $T_DIR/mount.log), wait until live
#   ... test against $MNT ...
#   t_umount                        # tessera umount, wait for the process
#
# Everything lives under a private mktemp directory $T_DIR: TESSERA_HOME
# ($T_DIR/home), the mountpoint $MNT ($T_DIR/mnt).  An EXIT trap unmounts
# (lazily if needed), kills a mount process left behind and removes $T_DIR.
# The mount log's tail goes to stderr at exit; t_fail exits 1, t_skip 77.
#
# Object store: TESSERA_TEST_STORAGE=file (default) keeps blocks in the
# embedded file:// store; =s3 makes t_format put them in a fresh bucket
# $T_S3_URL of the test S3 server ($TESSERA_TEST_S3, keys
# TESSERA_TEST_S3_KEY/_SECRET exported as TESSERA_ACCESS_KEY/_SECRET_KEY),
# emptied and removed at exit.  $T_STORAGE says which; t_objects,
# t_obj_keys, t_obj_flip and t_obj_rm work on either.  tests/run runs a
# test once per store its "# STORES: file s3" line names.
#
# Metadata engine: TESSERA_TEST_META_ENGINE=sqlite (default: the embedded
# volume $T_VOL), redis, pg, mysql or etcd: t_format then formats the URL in
# TESSERA_TEST_META_URL (tests/run gives each checkout its own redis
# database / postgres schema / MariaDB database; default:
# $TESSERA_TEST_REDIS/15, $TESSERA_TEST_PG or $TESSERA_TEST_MYSQL) with --force, blocks still under
# $TESSERA_HOME/$T_VOL/objects.  $T_META is that URL ("" on sqlite);
# `t_vol` prints the volume argument of mount and status ($T_META, or
# $T_VOL, which a test may change after sourcing this).  tests/run runs a test once per
# engine its "# ENGINES: sqlite redis pg" line names (default sqlite).
# S3 runs use SQLite; redis/pg runs use the file:// store.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
T_VOL=${T_VOL:-vol}
T_DIR=$(mktemp -d /tmp/tessera-t.XXXXXX)
chmod 755 "$T_DIR"
export TESSERA_HOME=$T_DIR/home
MNT=$T_DIR/mnt
T_MOUNT_PID=
T_OUT=$T_DIR/.out
T_ERR=$T_DIR/.err
mkdir -p "$TESSERA_HOME" "$MNT"
exec 9>&2 # common.sh runs cleanups with stderr discarded; ours reports
T_STORAGE=${TESSERA_TEST_STORAGE:-file}
T_S3_URL=
T_S3OBJ=$(dirname "${BASH_SOURCE[0]}")/s3obj.py
case "$T_STORAGE" in
file) ;;
s3)
	export TESSERA_ACCESS_KEY=${TESSERA_TEST_S3_KEY:-S3RVER}
	export TESSERA_SECRET_KEY=${TESSERA_TEST_S3_SECRET:-S3RVER}
	T_S3_URL=${TESSERA_TEST_S3:-http://127.0.0.1:4568}
	curl -s -o /dev/null "$T_S3_URL/" ||
		{ rm -rf "$T_DIR"; t_skip "no S3 server at $T_S3_URL"; }
	# bucket names: lower case, digits, '-'; unique per test run
	T_S3_URL=$T_S3_URL/t-$(basename "$T_DIR" | tr 'A-Z._' 'a-z--')-$$
	;;
*) rm -rf "$T_DIR"; t_fail "TESSERA_TEST_STORAGE='$T_STORAGE': expected file or s3" ;;
esac

T_ENGINE=${TESSERA_TEST_META_ENGINE:-sqlite}
T_META=
case "$T_ENGINE" in
sqlite) ;;
redis)
	T_META=${TESSERA_TEST_META_URL:-${TESSERA_TEST_REDIS:-redis://127.0.0.1:6379}/15}
	redis-cli -u "${T_META%%\?*}" ping >/dev/null 2>&1 ||
		{ rm -rf "$T_DIR"; t_skip "no redis at $T_META"; }
	;;
pg)
	T_META=${TESSERA_TEST_META_URL:-${TESSERA_TEST_PG:-postgres://tessera:tessera@127.0.0.1:5432/tessera}}
	pg_isready -q -d "${T_META%%\?*}" >/dev/null 2>&1 ||
		{ rm -rf "$T_DIR"; t_skip "no postgres at ${T_META%%\?*}"; }
	;;
mysql)
	T_META=${TESSERA_TEST_META_URL:-${TESSERA_TEST_MYSQL:-mysql://tessera:tessera@127.0.0.1:3316/tessera}}
	t_mh=${T_META#*@} t_mh=${t_mh%%/*} t_mu=${T_META#*://} t_mu=${t_mu%%@*}
	mariadb --no-defaults -h "${t_mh%:*}" -P "${t_mh##*:}" -u "${t_mu%%:*}" -p"${t_mu#*:}" \
		-e 'SELECT 1' >/dev/null 2>&1 ||
		{ rm -rf "$T_DIR"; t_skip "no mysql at $t_mh"; }
	;;
etcd)
	T_META=${TESSERA_TEST_META_URL:-${TESSERA_TEST_ETCD:-etcd://127.0.0.1:23791,127.0.0.1:23793,127.0.0.1:23795/tessera}}
	t_eh=${T_META#etcd://} t_eh=${t_eh%%/*} t_eh=${t_eh%%,*}
	curl -s -m 2 "http://$t_eh/health" 2>/dev/null | grep -q true ||
		{ rm -rf "$T_DIR"; t_skip "no etcd at $t_eh"; }
	;;
*) rm -rf "$T_DIR"; t_fail "TESSERA_TEST_META_ENGINE='$T_ENGINE': expected sqlite, redis, pg, mysql or etcd" ;;
esac

tessera() { "$TESSERA_BIN" "$@"; }

t_vol() { echo "${T_META:-$T_VOL}"; }

t_log() { echo "# $*"; }

# t_is_mounted [DIR]: is DIR (default $MNT) a live or dead tessera mount?
t_is_mounted() {
	local d=${1:-$MNT}
	awk -v d="$d" '$5 == d { for (i = 6; i <= NF; i++) if ($i == "-") { print $(i + 1); exit } }' \
		/proc/self/mountinfo | grep -q '^fuse.tessera$'
}

t_require_fuse() {
	[ -e /dev/fuse ] || t_skip "no /dev/fuse"
	[ -x "$TESSERA_BIN" ] || t_fail "no tessera binary at $TESSERA_BIN"
}

# t_format [options]: format $T_VOL (on S3: in $T_S3_URL unless --storage;
# on redis/pg: $T_META, wiped).
t_format() {
	local st=() args=("$T_VOL")
	if [[ " $* " != *" --storage "* ]]; then
		if [ -n "$T_S3_URL" ]; then
			st=(--storage "$T_S3_URL")
		elif [ "$T_ENGINE" != sqlite ]; then
			mkdir -p "$TESSERA_HOME/$T_VOL/objects"
			st=(--storage "file://$TESSERA_HOME/$T_VOL/objects/")
		fi
	fi
	[ "$T_ENGINE" = sqlite ] || args=("$T_META" "$T_VOL" --force)
	tessera format "${st[@]}" "$@" "${args[@]}" >"$T_DIR/format.log" 2>&1 ||
		t_fail "tessera format ${st[*]} $* ${args[*]}: $(cat "$T_DIR/format.log")"
	t_log "$(grep -m1 'storage:' "$T_DIR/format.log")"
}

# t_mount [options]: foreground mount in the background, wait until live.
t_mount() {
	t_require_fuse
	"$TESSERA_BIN" mount -f "$(t_vol)" "$MNT" "$@" >>"$T_DIR/mount.log" 2>&1 &
	T_MOUNT_PID=$!
	for _ in $(seq 200); do
		if t_is_mounted && [ -e "$MNT/.stats" ]; then
			return 0
		fi
		kill -0 "$T_MOUNT_PID" 2>/dev/null ||
			t_fail "tessera mount exited before the mount was live"
		sleep 0.1
	done
	t_fail "mount did not become live in 20 s"
}

# t_umount: clean unmount; all data is durable when it returns.
t_umount() {
	tessera umount "$MNT" || t_fail "tessera umount $MNT failed"
	if [ -n "$T_MOUNT_PID" ]; then
		wait "$T_MOUNT_PID" 2>/dev/null
		local rc=$?
		T_MOUNT_PID=
		[ $rc -eq 0 ] || t_fail "mount process exited with $rc"
	fi
	! t_is_mounted || t_fail "$MNT still mounted after umount"
}

# t_kill9: kill the mount process hard and clear the dead mount.
t_kill9() {
	[ -n "$T_MOUNT_PID" ] || t_fail "t_kill9: no mount process"
	kill -9 "$T_MOUNT_PID"
	wait "$T_MOUNT_PID" 2>/dev/null
	T_MOUNT_PID=
	umount -l "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT" 2>/dev/null
	! t_is_mounted || t_fail "cannot clear the dead mount"
}

# t_obj_keys: keys of the block objects of $T_VOL, one per line, sorted.
t_obj_keys() {
	if [ -n "$T_S3_URL" ]; then
		python3 "$T_S3OBJ" ls "$T_S3_URL" "$T_VOL/chunks/" | cut -d' ' -f2
	else
		(cd "$TESSERA_HOME/$T_VOL/objects" 2>/dev/null &&
			find "$T_VOL" -type f -path "$T_VOL/chunks/*" \
				! -name '*.tmp*' | sort)
	fi
}

# t_objects: number of block objects of $T_VOL.
t_objects() {
	t_obj_keys | wc -l
}

# t_obj_flip KEY OFF: corrupt an object in place (xor byte OFF with 0xff).
t_obj_flip() {
	if [ -n "$T_S3_URL" ]; then
		python3 "$T_S3OBJ" flip "$T_S3_URL" "$1" "$2"
	else
		python3 - "$TESSERA_HOME/$T_VOL/objects/$1" "$2" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    b = f.read(1)
    f.seek(int(sys.argv[2]))
    f.write(bytes([b[0] ^ 0xFF]))
PY
	fi
}

# t_obj_rm KEY: delete an object behind tessera's back.
t_obj_rm() {
	if [ -n "$T_S3_URL" ]; then
		python3 "$T_S3OBJ" rm "$T_S3_URL" "$1"
	else
		rm "$TESSERA_HOME/$T_VOL/objects/$1"
	fi
}

t_mount_cleanup() {
	if t_is_mounted; then
		timeout 60 "$TESSERA_BIN" umount "$MNT" >/dev/null 2>&1 ||
			umount -l "$MNT" 2>/dev/null ||
			fusermount3 -u -z "$MNT" 2>/dev/null
	fi
	if [ -n "$T_MOUNT_PID" ] && kill -0 "$T_MOUNT_PID" 2>/dev/null; then
		for _ in $(seq 100); do
			kill -0 "$T_MOUNT_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$T_MOUNT_PID" 2>/dev/null
	fi
	if [ -s "$T_DIR/mount.log" ]; then
		echo "--- mount log (tail)" >&9
		tail -n 15 "$T_DIR/mount.log" >&9
	fi
	[ -z "$T_S3_URL" ] || python3 "$T_S3OBJ" rb "$T_S3_URL" >&9
	rm -rf "$T_DIR"
}
t_on_exit t_mount_cleanup
trap 'exit 143' INT TERM
