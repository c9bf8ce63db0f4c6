#!/usr/bin/env bash
# The engine-independent suites (unit tests t_kv, the kv.h conformance
# suite, and t_meta_*, the metadata rules) on the Redis and PostgreSQL
# engines: redis database 12, postgres schema t_kv_suite of the test
# database.  Skips an engine whose server does not answer; skips when the
# unit tests are not built (make unit).
# TIMEOUT: 900
set -u
. "$(dirname "$0")/../lib/common.sh"

T=$(t_tmpdir)
BIN=$(dirname "$TESSERA_BIN")/tests
[ -x "$BIN/t_kv" ] || t_skip "t_kv not built (make unit)"
REDIS=${TESSERA_TEST_REDIS:-redis://127.0.0.1:6379}
PG=${TESSERA_TEST_PG:-postgres://tessera:tessera@127.0.0.1:5432/tessera}
ran=0

run_suites() {
	local url=$1 log t
	for t in "$BIN"/t_kv "$BIN"/t_meta_*; do
		[ -x "$t" ] || continue
		log=$T/$(basename "$t").$2.log
		if ! TESSERA_TEST_META=$url "$t" >"$log" 2>&1; then
			tail -n 40 "$log" >&2
			t_fail "$(basename "$t") failed on '$2'"
		fi
		grep -q '^\[  PASSED  \]' "$log" ||
			t_fail "$(basename "$t") ran no test on '$2'"
		echo "ok $(basename "$t") on $2"
	done
	ran=$((ran + 1))
}

if redis-cli -u "$REDIS" ping 2>/dev/null | grep -q PONG; then
	run_suites "$REDIS/12" redis
fi
if psql "$PG" -qtAc "CREATE SCHEMA IF NOT EXISTS t_kv_suite" >/dev/null 2>&1; then
	run_suites "$PG?options=-csearch_path%3Dt_kv_suite" postgres
fi
[ "$ran" -gt 0 ] || t_skip "neither redis nor postgres answers"
t_pass
