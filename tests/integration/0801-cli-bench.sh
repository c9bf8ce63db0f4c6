#!/usr/bin/env bash
# `tessera bench PATH` on a real mount: runs every phase, checks bytes, cleans
# up after itself; bad options are usage errors.
# TIMEOUT: 300
set -u
. "$(dirname "$0")/../lib/mount.sh"

t_format
t_mount
t_run 0 "$TESSERA_BIN" bench "$MNT" -p 2 --big-file-size 8M --small-files 20 --small-file-size 16K
for item in "write big file" "read big file" "write small file" "read small file" "stat file"; do
	t_grep "^| $item" "$T_OUT"
done
[ -z "$(ls -A "$MNT")" ] || t_fail "bench left files behind: $(ls -A "$MNT")"
t_run 2 "$TESSERA_BIN" bench "$MNT" -p 0
t_run 2 "$TESSERA_BIN" bench "$MNT" --small-file-size 2M
t_run 2 "$TESSERA_BIN" bench
t_run 1 "$TESSERA_BIN" bench /nonexistent/dir
t_one_line_err
t_pass
