#!/usr/bin/env bash
# tessera info and summary inside a mount: info shows a file's size, chunks,
# slices and object keys (each key exists in the store), and a directory's
# totals; --json parses; summary gives exact counts of a known tree, per
# subdirectory with --depth; paths outside a mount or missing are one line
# and exit 1.
# STORES: file s3
# TIMEOUT: 180
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0
t_mount

# a file over two chunks (64 MiB each), written in one go
python3 -c "import sys; sys.stdout.buffer.write(b'x' * ((65 << 20) + 5))" >"$MNT/f"
sync
t_run 0 tessera info "$MNT/f"
t_grep '^  size: 68157445$' "$T_OUT"
t_grep '^  chunks: 2$' "$T_OUT"
t_grep '^  links: 1$' "$T_OUT"
t_grep '^  type: file$' "$T_OUT"
[ "$(grep -c '^  chunk ' "$T_OUT")" = 2 ] || t_fail "two chunk lines: $(cat "$T_OUT")"
awk '$2 ~ /\/chunks\// { print $2 }' "$T_OUT" | sort >"$T_DIR/keys"
n=$(wc -l <"$T_DIR/keys")
[ "$n" -ge 17 ] || t_fail "65 MiB in 4 MiB blocks is at least 17 objects, info shows $n"
t_obj_keys >"$T_DIR/store"
missing=$(comm -23 "$T_DIR/keys" "$T_DIR/store")
[ -z "$missing" ] || t_fail "keys info shows are not in the store: $missing"
# the object lengths add up to the bytes of the slices
sum=$(awk '$2 ~ /\/chunks\// { s += $1 } END { print s }' "$T_OUT")
[ "$sum" = 68157445 ] || t_fail "object lengths sum to $sum"

t_run 0 tessera info --json "$MNT/f"
python3 - "$T_OUT" <<'PY' || t_fail "info --json: $(head -c 500 "$T_OUT")"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["size"] == 68157445 and o["links"] == 1 and o["type"] == "file", o
assert len(o["chunks"]) == 2 and o["chunks"][1]["index"] == 1, o["chunks"]
objs = [b for c in o["chunks"] for s in c["slices"] for b in s["objects"]]
assert sum(b["length"] for b in objs) == 68157445
assert all("/chunks/" in b["key"] for b in objs)
PY

# a known tree: top/ a (100 B) b (2000 B) d1/ c (10 B) d1/e/ f (1 B)
# d2/ g (7 B) h (0 B) ; links count per name
mkdir -p "$MNT/top/d1/e" "$MNT/top/d2" "$MNT/top/d3"
head -c 100 /dev/zero >"$MNT/top/a"
head -c 2000 /dev/zero >"$MNT/top/b"
head -c 10 /dev/zero >"$MNT/top/d1/c"
head -c 1 /dev/zero >"$MNT/top/d1/e/f"
head -c 7 /dev/zero >"$MNT/top/d2/g"
: >"$MNT/top/d2/h"
t_run 0 tessera summary "$MNT/top"
# BYTES FILES DIRS PATH
[ "$(awk 'NR == 2 { print $1, $2, $3 }' "$T_OUT")" = "2118 6 5" ] ||
	t_fail "summary of top: $(cat "$T_OUT")"
[ "$(wc -l <"$T_OUT")" = 2 ] || t_fail "depth 0 is one line: $(cat "$T_OUT")"
t_run 0 tessera summary "$MNT/top" --depth 1
cat "$T_OUT"
[ "$(wc -l <"$T_OUT")" = 5 ] || t_fail "depth 1: top and 3 subdirectories: $(cat "$T_OUT")"
t_grep "^ *11  *2  *2  $MNT/top/d1\$" "$T_OUT"
t_grep "^ *7  *2  *1  $MNT/top/d2\$" "$T_OUT"
t_grep "^ *0  *0  *1  $MNT/top/d3\$" "$T_OUT"
t_run 0 tessera summary "$MNT/top" --depth 2 --json
python3 - "$T_OUT" <<'PY' || t_fail "summary --json: $(cat "$T_OUT")"
import json, sys
o = json.load(open(sys.argv[1]))
assert (o["files"], o["dirs"], o["bytes"]) == (6, 5, 2118), o
d1 = [c for c in o["children"] if c["path"].endswith("/d1")][0]
assert (d1["files"], d1["dirs"], d1["bytes"]) == (2, 2, 11), d1
assert [c["bytes"] for c in d1["children"]] == [1], d1
PY
# info of a directory: its totals
t_run 0 tessera info "$MNT/top"
t_grep '^  type: dir$' "$T_OUT"
t_grep '^  files: 6$' "$T_OUT"
t_grep '^  bytes: 2118$' "$T_OUT"
t_grep '^  entries: 5$' "$T_OUT"

# bad input: one line, exit 1
t_run 1 tessera info /tmp
t_one_line_err
t_grep "not inside a tessera mount" "$T_ERR"
t_run 1 tessera summary /tmp
t_one_line_err
t_run 1 tessera info "$MNT/missing"
t_one_line_err
t_run 1 tessera summary "$MNT/missing" --depth 1
t_one_line_err

t_umount
