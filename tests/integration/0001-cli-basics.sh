#!/usr/bin/env bash
# The tessera binary: help, version, exit codes, format/status/config on the
# embedded defaults, and bad input rejected with one clear line.
# TIMEOUT: 120
# SMOKE
set -u
. "$(dirname "$0")/../lib/common.sh"

T=$(t_tmpdir)
export TESSERA_HOME=$T/home

# help and version
t_run 0 "$TESSERA_BIN" --help
t_grep "format" "$T_OUT"
t_run 0 "$TESSERA_BIN" --version
t_grep "^tessera [0-9]" "$T_OUT"
t_run 0 "$TESSERA_BIN" format --help
t_grep "usage: tessera format" "$T_OUT"
t_run 2 "$TESSERA_BIN"
t_run 2 "$TESSERA_BIN" nosuchcmd
t_one_line_err
t_run 2 "$TESSERA_BIN" --bogus
t_run 2 "$TESSERA_BIN" format vol1 --no-such-option
t_one_line_err
t_grep "no-such-option" "$T_ERR"
t_run 2 "$TESSERA_BIN" format vol1 --block-size 3M
t_run 2 "$TESSERA_BIN" format vol1 --compress gzip
t_run 2 "$TESSERA_BIN" status

# format + status --json
t_run 0 "$TESSERA_BIN" format vol1
t_run 0 "$TESSERA_BIN" status vol1 --json
python3 - "$T_OUT" <<'PY' || t_fail "status --json is not what it should be"
import json, sys, uuid
d = json.load(open(sys.argv[1]))
assert d["name"] == "vol1", d
uuid.UUID(d["uuid"])
assert d["block_size"] == 4 * 1024 * 1024, d
assert d["chunk_size"] == 64 * 1024 * 1024, d
assert d["trash_days"] == 1, d
PY
t_run 0 "$TESSERA_BIN" status vol1
t_grep "^name: *vol1" "$T_OUT"

# refuses to overwrite, unless --force (which changes the uuid)
"$TESSERA_BIN" status vol1 --json >"$T/s1.json"
t_run 1 "$TESSERA_BIN" format vol1
t_one_line_err
t_grep "already" "$T_ERR"
t_run 0 "$TESSERA_BIN" format vol1 --force --trash-days 0
"$TESSERA_BIN" status vol1 --json >"$T/s2.json"
python3 - "$T/s1.json" "$T/s2.json" <<'PY' || t_fail "format --force did not make a new volume"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert a["uuid"] != b["uuid"] and b["trash_days"] == 0
PY

# config changes settings
t_run 0 "$TESSERA_BIN" config vol1 --capacity 1G --inodes 1000 --trash-days 3
t_run 0 "$TESSERA_BIN" status vol1 --json
python3 - "$T_OUT" <<'PY' || t_fail "config did not persist"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["capacity"] == 1 << 30 and d["inodes"] == 1000 and d["trash_days"] == 3, d
PY
t_run 2 "$TESSERA_BIN" config vol1 --capacity lots

# bad input: one clear line, non-zero exit, nothing half-written
t_run 1 "$TESSERA_BIN" format 'sqlite3://' x
t_one_line_err
t_run 1 "$TESSERA_BIN" status redis://nohost:1/
t_one_line_err
t_run 1 "$TESSERA_BIN" format a/b
t_one_line_err
[ ! -e "$TESSERA_HOME/a" ] || t_fail "format of a bad name left files"
t_run 1 "$TESSERA_BIN" status nosuchvol
t_one_line_err
t_grep "does not exist" "$T_ERR"
t_run 1 "$TESSERA_BIN" format "sqlite3://$T/nodir/x/meta.db" v2 --storage "file://$T/objs/"
t_one_line_err
[ ! -e "$T/nodir" ] || t_fail "format left a metadata directory behind"
t_run 1 "$TESSERA_BIN" format "sqlite3://$T/meta2.db" v2 --storage "ftp://x/y"
t_one_line_err
[ ! -e "$T/meta2.db" ] || t_fail "format with a bad storage URL left a database"
t_run 2 "$TESSERA_BIN" format "sqlite3://$T/meta3.db" v3
[ ! -e "$T/meta3.db" ] || t_fail "format without --storage left a database"
# explicit metadata URL + storage works
t_run 0 "$TESSERA_BIN" format "sqlite3://$T/meta4.db" v4 --storage "file://$T/objs4/"
t_run 0 "$TESSERA_BIN" status "sqlite3://$T/meta4.db" --json
t_grep '"name": "v4"' "$T_OUT"
t_pass
