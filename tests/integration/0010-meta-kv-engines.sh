#!/usr/bin/env bash
# The kv.h conformance suite (unit test t_kv) on the Redis and PostgreSQL
# engines: redis database 12, postgres schema t_kv_suite of the test
# database.  Skips an engine whose server does not answer; skips when the
# unit tests are not built (make unit).
# TIMEOUT: 600
set -u
. "$(dirname "$0")/../lib/common.sh"

T=$(t_tmpdir)
T_KV=$(dirname "$TESSERA_BIN")/tests/t_kv
[ -x "$T_KV" ] || t_skip "t_kv not built (make unit)"
REDIS=${TESSERA_TEST_REDIS:-redis://127.0.0.1:6379}
PG=${TESSERA_TEST_PG:-postgres://tessera:tessera@127.0.0.1:5432/tessera}
ran=0

run_suite() {
	local url=$1 log=$T/t_kv.log
	if ! TESSERA_TEST_META=$url "$T_KV" >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		t_fail "t_kv failed on '$2'"
	fi
	grep -q '^\[  PASSED  \]' "$log" || t_fail "t_kv ran no test on '$2'"
	ran=$((ran + 1))
}

if redis-cli -u "$REDIS" ping 2>/dev/null | grep -q PONG; then
	run_suite "$REDIS/12" redis
fi
if psql "$PG" -qtAc "CREATE SCHEMA IF NOT EXISTS t_kv_suite" >/dev/null 2>&1; then
	run_suite "$PG?options=-csearch_path%3Dt_kv_suite" postgres
fi
[ "$ran" -gt 0 ] || t_skip "neither redis nor postgres answers"
t_pass
