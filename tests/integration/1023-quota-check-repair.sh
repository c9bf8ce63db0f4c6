#!/usr/bin/env bash
# tessera quota check [--repair] and fsck: a usage that drifted from the
# tree (the quota record changed behind the mount's back, as a damaged or
# hand-edited database would have it) makes creates fail too early; check
# reports the stored and the counted usage and exits 1, --repair stores
# the counted one while mounted, and the limit then holds at exactly the
# right count; fsck reports it too and fsck --repair fixes it.
# Also bad input to `tessera quota`: one clear line, exit 2 or 1.
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0 --replicate=off
t_mount
V=$(t_vol)
DB=$TESSERA_HOME/$T_VOL/meta.db

mkdir -p "$MNT/q/sub" "$MNT/p"
echo data >"$MNT/q/sub/f"
t_run 0 tessera quota set "$V" --path /q --inodes 5
t_grep '^/q space 8192/unlimited inodes 2/5$' "$T_OUT"
t_run 0 tessera quota set "$V" --path /q/sub --capacity 1M
t_run 0 tessera quota check "$V"
t_grep '^/q: ok (space 8192, inodes 2)$' "$T_OUT"

QINO=$(stat -c %i "$MNT/q")
# drift QINO: the record says 5 inodes and 1 MiB used (was 8 KiB, 2)
drift() {
	python3 - "$DB" "$1" <<'PY' || t_fail "edit the quota record"
import sqlite3, struct, sys
db = sqlite3.connect(sys.argv[1])
k = struct.pack(">Q", int(sys.argv[2]))
v = db.execute("SELECT v FROM kv WHERE g = 17 AND k = ?", (k,)).fetchone()[0]
sl, il, us, ui = struct.unpack(">QQqq", v[:32])
assert (il, us, ui) == (5, 8192, 2), (sl, il, us, ui)
db.execute("UPDATE kv SET v = ? WHERE g = 17 AND k = ?",
           (struct.pack(">QQqq", sl, il, 1 << 20, 5), k))
db.commit()
PY
}
drift "$QINO"
t_run 1 touch "$MNT/q/x"
t_grep 'Disk quota exceeded' "$T_ERR"
t_run 1 tessera quota check "$V"
t_grep '^/q: usage space 1048576 inodes 5, counted space 8192 inodes 2 (use --repair)$' "$T_OUT"
t_grep '^/q/sub: ok' "$T_OUT"
t_run 0 tessera quota check "$V" --path /q --repair
t_grep '^/q: repaired (space 8192, inodes 2)$' "$T_OUT"
t_run 0 tessera quota get "$V" --path /q
t_grep '^/q space 8192/unlimited inodes 2/5$' "$T_OUT"
# now exactly 3 more fit
for i in 1 2 3; do touch "$MNT/q/x$i" || t_fail "create $i after repair"; done
t_run 1 touch "$MNT/q/x4"
t_run 0 tessera quota check "$V"

# bad input
t_run 2 tessera quota
t_run 2 tessera quota frob "$V"
t_run 2 tessera quota set "$V"
t_grep 'missing --path' "$T_ERR"
t_run 2 tessera quota set "$V" --path /q
t_grep 'needs --capacity or --inodes' "$T_ERR"
t_run 2 tessera quota set "$V" --path /q --capacity 12Q
t_run 2 tessera quota set "$V" --path /q --inodes -1
t_run 2 tessera quota get "$V" --path /q --repair
t_run 1 tessera quota get "$V" --path /nope
t_one_line_err
t_grep "cannot find directory '/nope'" "$T_ERR"
t_run 1 tessera quota set "$V" --path /q/sub/f --inodes 1
t_one_line_err
t_grep 'Not a directory' "$T_ERR"
t_run 1 tessera quota set "$V" --path / --inodes 1
t_one_line_err
t_grep 'the root takes none' "$T_ERR"
t_run 1 tessera quota delete "$V" --path /p
t_one_line_err
t_grep "no quota on '/p'" "$T_ERR"
t_run 1 tessera quota get no-such-volume --path /q
t_one_line_err
t_run 0 tessera quota list "$V"
[ "$(wc -l <"$T_OUT")" = 2 ] || t_fail "two quotas listed"
t_umount

# fsck reports a drifted quota too, and --repair fixes it
t_mount
rm "$MNT"/q/x1 "$MNT"/q/x2 "$MNT"/q/x3
t_umount
drift "$QINO"
t_run 1 tessera fsck "$V"
t_grep "quota usage says 1048576 bytes, 5 inodes; its tree holds 8192 bytes, 2 inodes$" "$T_OUT"
t_run 0 tessera fsck "$V" --repair
t_grep "quota usage says .*; repaired" "$T_OUT"
t_run 0 tessera quota check "$V"

# unmounted: changes open the volume directly
t_run 0 tessera quota delete "$V" --path /q/sub
t_run 0 tessera quota list "$V" --json
python3 -c 'import json,sys; q=json.load(open(sys.argv[1])); assert [x["path"] for x in q] == ["/q"], q' "$T_OUT" ||
	t_fail "list after delete"
t_pass
