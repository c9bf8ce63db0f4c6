#!/usr/bin/env bash
# A corrupted or truncated segment in the object store: a restore stops at
# the last good transaction with one clear line, the mount refuses it
# unless --accept-partial, and the database is never corrupt: it holds
# exactly the transactions before the damage.
# TIMEOUT: 240
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/repl.sh"

STORE=$T_DIR/store
mkdir -p "$STORE"
segs() { find "$STORE/$T_VOL/meta" -path '*/seg/*' -type f | sort; }
put() { echo "content of $1" >"$MNT/$1"; sync "$MNT/$1"; }

t_format --storage "file://$STORE/" --trash-days 0
t_mount
put f1
put f2
sleep 1.2 # whatever the mount commits on its own ships now
segs >"$T_DIR/s0"
put f3
segs >"$T_DIR/s1"
put f4
put f5
t_umount
bad=$(comm -13 "$T_DIR/s0" "$T_DIR/s1" | head -n 1)
[ -n "$bad" ] || t_fail "no segment for f3"
first=$(basename "$bad" | cut -d- -f1)
stop=$((16#$first - 1))
t_log "damaging $bad (restore must stop at txn $stop)"
cp -a "$STORE" "$T_DIR/pristine"

integrity() { # DB: PRAGMA integrity_check says ok
	python3 - "$1" <<'PY'
import sqlite3, sys
c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
r = c.execute("pragma integrity_check").fetchall()
assert r == [("ok",)], r
PY
}

check_damage() { # what: corrupt | truncated
	rm -rf "$HOME_B"
	mkdir -p "$HOME_B"
	TESSERA_HOME=$HOME_B t_run 1 tessera mount "file://$STORE/$T_VOL" "$MNT_B"
	t_grep "restore stopped at txn $stop: segment '.*' is $1" "$T_ERR"
	t_grep "refusing to use it; --accept-partial" "$T_ERR"
	[ "$(grep -c "^tessera: .*\(refusing\|stopped\)" "$T_ERR")" = 2 ] ||
		t_fail "expected the stop line and the refusal line: $(cat "$T_ERR")"
	t_is_mounted "$MNT_B" && t_fail "mounted a partial restore"
	integrity "$HOME_B/$T_VOL/meta.db" || t_fail "restored database is corrupt"
	[ ! -e "$HOME_B/$T_VOL/meta.db.restore" ] || t_fail "temp database left"
	r_mount_b "file://$STORE/$T_VOL" "$MNT_B" --accept-partial
	[ "$(cat "$MNT_B/f1")" = "content of f1" ] || t_fail "f1 lost"
	[ "$(cat "$MNT_B/f2")" = "content of f2" ] || t_fail "f2 lost"
	[ -e "$MNT_B/f4" ] && t_fail "f4 is there: txns after the damage were applied"
	[ -e "$MNT_B/f5" ] && t_fail "f5 is there: txns after the damage were applied"
	echo new >"$MNT_B/after"
	sync "$MNT_B/after"
	r_umount_b
	integrity "$HOME_B/$T_VOL/meta.db" || t_fail "database corrupt after the mount"
}

# one flipped byte in the middle of the segment
python3 - "$bad" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x55
open(p, "wb").write(b)
PY
check_damage corrupt

# the same segment cut short
rm -rf "$STORE"
cp -a "$T_DIR/pristine" "$STORE"
truncate -s $(($(stat -c %s "$bad") / 2)) "$bad"
check_damage "corrupt (length mismatch"
exit 0
