#!/usr/bin/env bash
# tessera objbench on a file:// store and (when s3rver answers) an S3 store:
# a row per operation, nothing left behind, failures reported with exit 1,
# bad arguments with exit 2.
# TIMEOUT: 180
set -u
BIN=${TESSERA_BIN:?}
T=$(mktemp -d /tmp/tessera-objbench-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

check_table() { # FILE
	for op in put head get list delete; do
		grep -Eq "^$op +[0-9]+ +0 " "$1" || fail "no clean '$op' row in $(cat "$1")"
	done
}

mkdir "$T/store"
"$BIN" objbench "file://$T/store/" --objects 40 --size 64K --threads 3 >"$T/out" 2>"$T/err" ||
	fail "objbench on file:// failed: $(cat "$T/err")"
check_table "$T/out"
grep -q "objects: 40 of 65536 bytes, 3 threads" "$T/out" || fail "bad header"
[ -z "$(find "$T/store" -type f)" ] || fail "objects left behind: $(find "$T/store" -type f)"

# Every put fails: exit 1, one summary line, still nothing left behind.
TESSERA_FAULT=err=1,ops=put "$BIN" objbench "file://$T/store/" --objects 5 >"$T/out" 2>"$T/err"
[ $? -eq 1 ] || fail "objbench under put faults did not exit 1"
grep -q "operations failed" "$T/err" || fail "no failure summary: $(cat "$T/err")"
[ -z "$(find "$T/store" -type f)" ] || fail "objects left after failed puts"

# Usage errors.
for args in "" "--objects 0 file://$T/store/" "--size x file://$T/store/" \
	"--threads 999 file://$T/store/" "--bogus file://$T/store/" "a b"; do
	# shellcheck disable=SC2086
	"$BIN" objbench $args >/dev/null 2>&1
	[ $? -eq 2 ] || fail "objbench $args: expected exit 2"
done
"$BIN" objbench "file://$T/missing/" >/dev/null 2>"$T/err"
[ $? -eq 1 ] || fail "missing directory: expected exit 1"

# The same against s3rver, when it runs.
S3=${TESSERA_TEST_S3:-http://127.0.0.1:4568}
if curl -s -o /dev/null "$S3/"; then
	export TESSERA_ACCESS_KEY=${TESSERA_TEST_S3_KEY:-S3RVER}
	export TESSERA_SECRET_KEY=${TESSERA_TEST_S3_SECRET:-S3RVER}
	"$BIN" objbench "$S3/tessera-test/objbench-it" --objects 30 --size 16K \
		--threads 4 >"$T/out" 2>"$T/err" || fail "objbench on S3 failed: $(cat "$T/err")"
	check_table "$T/out"
	TESSERA_ACCESS_KEY=nobody "$BIN" objbench "$S3/tessera-test" >/dev/null 2>"$T/err"
	[ $? -eq 1 ] || fail "bad key: expected exit 1"
	grep -q "access denied" "$T/err" || fail "bad key: $(cat "$T/err")"
else
	echo "s3rver not running at $S3: S3 part skipped"
fi
echo ok
