# tests/lib/common.sh - helpers for integration tests (sourced).
#   t_tmpdir            a private directory, removed at exit
#   t_run CODE CMD...   run CMD, fail unless it exits CODE; output in $T_OUT/$T_ERR
#   t_grep RE FILE      fail unless FILE has a line matching RE
#   t_one_line_err      fail unless the last t_run wrote exactly one stderr line
#   t_fail MSG / t_skip MSG / t_pass
TESSERA_BIN=${TESSERA_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/tessera}
export TESSERA_BIN
T_CLEANUP=()
T_OUT=
T_ERR=

t_cleanup() {
	local i
	for ((i = ${#T_CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${T_CLEANUP[$i]}" >/dev/null 2>&1
	done
}
trap t_cleanup EXIT

t_on_exit() { T_CLEANUP+=("$1"); }

t_tmpdir() {
	local d
	d=$(mktemp -d /tmp/tessera-test.XXXXXX)
	chmod 755 "$d"
	t_on_exit "rm -rf '$d'"
	T_OUT=$d/.out
	T_ERR=$d/.err
	echo "$d"
}

t_fail() {
	echo "FAIL: $*" >&2
	[ -n "${BASH_LINENO[0]:-}" ] && echo "  at line ${BASH_LINENO[0]}" >&2
	exit 1
}

t_skip() {
	echo "$*"
	exit 77
}

t_pass() {
	echo "PASS"
	exit 0
}

t_run() {
	local want=$1 rc
	shift
	[ -n "$T_OUT" ] || { T_OUT=$(mktemp); T_ERR=$(mktemp); }
	"$@" >"$T_OUT" 2>"$T_ERR" </dev/null
	rc=$?
	if [ "$rc" != "$want" ]; then
		echo "command: $*" >&2
		echo "stdout:" >&2; head -c 2000 "$T_OUT" >&2
		echo "stderr:" >&2; head -c 2000 "$T_ERR" >&2
		echo "FAIL: exit $rc, wanted $want (line ${BASH_LINENO[0]})" >&2
		exit 1
	fi
}

t_grep() {
	grep -q -- "$1" "$2" || {
		echo "--- $2:" >&2; head -c 2000 "$2" >&2
		t_fail "no line matching '$1' (line ${BASH_LINENO[0]})"
	}
}

t_one_line_err() {
	local n
	n=$(wc -l <"$T_ERR")
	if [ "$n" -ne 1 ]; then
		echo "--- stderr ($n lines):" >&2; cat "$T_ERR" >&2
		t_fail "expected exactly one line on stderr (line ${BASH_LINENO[0]})"
	fi
}
