#!/usr/bin/env bash
# tessera load refuses what is not a whole, valid dump, and never leaves
# half a volume: truncated dumps (from a file and from standard input),
# a flipped byte (checksum), an inconsistent dump without its checksum,
# the wrong version, a quota on a file or not matching counter "quotas",
# things that are not dumps, a target that is not empty.  Each refusal is
# one stderr line naming the byte offset, and the target holds no record
# after it.  A load that fails while writing (an SQLite trigger makes
# xattr, or quota, writes fail) wipes what it wrote; a target left by a
# load that died (its marker) does not mount, is refused by load, and
# `load --force` wipes and loads it.
# SMOKE
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

command -v sqlite3 >/dev/null || t_skip "no sqlite3 command"
t_format --trash-days 0
t_mount
mkdir -p "$MNT/d"
for i in $(seq 40); do echo "file $i" >"$MNT/d/f$i"; done
setfattr -n user.a -v 1 "$MNT/d/f1"
ln -s f1 "$MNT/d/s"
t_run 0 tessera quota set "$T_VOL" --path /d --inodes 100
t_umount
D=$T_DIR/d.json
t_run 0 tessera dump "$T_VOL" "$D"
size=$(stat -c %s "$D")

# target $1 (a file path): missing, or no record in it
empty() {
	[ ! -e "$1" ] || [ "$(sqlite3 "$1" 'SELECT count(*) FROM kv')" = 0 ] ||
		t_fail "'$1' is not empty after a refused load (line ${BASH_LINENO[0]})"
}
# refuse FILE TARGET-NAME [PATTERN]: one line naming a byte, target empty
refuse() {
	t_run 1 tessera load "sqlite3://$T_DIR/$2.db" "$1"
	t_one_line_err
	t_grep "byte [0-9]" "$T_ERR"
	[ -z "${3:-}" ] || t_grep "$3" "$T_ERR"
	empty "$T_DIR/$2.db"
}

for cut in 0 1 100 $((size / 3)) $((size / 2)) $((size - 40)) $((size - 3)); do
	head -c "$cut" "$D" >"$T_DIR/cut.json"
	refuse "$T_DIR/cut.json" "cut$cut" "truncated"
done
head -c $((size / 2)) "$D" |
	"$TESSERA_BIN" load "sqlite3://$T_DIR/stdin.db" - 2>"$T_ERR" >/dev/null &&
	t_fail "a truncated dump on standard input loaded"
t_one_line_err
t_grep "standard input.*byte [0-9].*truncated" "$T_ERR"
empty "$T_DIR/stdin.db"

# one byte changed: a digit of a time (still valid JSON)
python3 - "$D" "$T_DIR/flip.json" <<'EOF'
import sys
d = open(sys.argv[1], "rb").read()
i = d.index(b'"mtime":', len(d) // 3) + 12
b = d[i:i + 1]
d = d[:i] + (b"1" if b != b"1" else b"2") + d[i + 1:]
open(sys.argv[2], "wb").write(d)
EOF
refuse "$T_DIR/flip.json" flip "checksum mismatch"

# without its checksum, a dump is still checked for consistency
python3 - "$D" "$T_DIR" <<'EOF'
import re, sys
d = open(sys.argv[1]).read()
d = d[:d.index(',\n"checksum"')] + "\n}\n"
open(sys.argv[2] + "/nosum.json", "w").write(d)
open(sys.argv[2] + "/dangling.json", "w").write(
    d.replace('"name":"f1","ino":', '"name":"f1","ino":9', 1))
open(sys.argv[2] + "/count.json", "w").write(
    re.sub(r'"entries":(\d+)', lambda m: '"entries":%d' % (int(m.group(1)) + 1), d))
open(sys.argv[2] + "/version.json", "w").write(
    d.replace('"version":1,', '"version":2,', 1))
open(sys.argv[2] + "/nextino.json", "w").write(
    re.sub(r'"nextInode":\d+', '"nextInode":3', d))
f1 = re.search(r'"name":"f1","ino":(\d+)', d).group(1)
open(sys.argv[2] + "/qfile.json", "w").write(
    re.sub(r'("quotas":\[\s*\{"ino":)\d+', r'\g<1>' + f1, d))
open(sys.argv[2] + "/qcount.json", "w").write(
    re.sub(r'("counters":\{[^}]*"quotas":)1', r'\g<1>2', d))
EOF
refuse "$T_DIR/dangling.json" dangling "not in the dump"
refuse "$T_DIR/count.json" count "summary counts"
refuse "$T_DIR/version.json" version "dump version 2"
refuse "$T_DIR/nextino.json" nextino "nextInode"
refuse "$T_DIR/qfile.json" qfile "quotas\[0\].*not a directory"
refuse "$T_DIR/qcount.json" qcount "counter quotas is 2"
printf '{}' >"$T_DIR/obj.json"
refuse "$T_DIR/obj.json" obj "format"
head -c 3000 /dev/urandom >"$T_DIR/junk.json"
refuse "$T_DIR/junk.json" junk
t_run 0 tessera load "sqlite3://$T_DIR/nosum.db" "$T_DIR/nosum.json"

# a target that holds a volume is refused and stays as it was
t_run 1 tessera load "sqlite3://$T_DIR/nosum.db" "$D"
t_one_line_err
t_grep "holds a volume" "$T_ERR"
t_run 0 tessera dump "sqlite3://$T_DIR/nosum.db" "$T_DIR/again.json"
norm() { grep -v -e '^"dumped":' -e '^"checksum":' -e '^"replicate":' "$1"; }
diff <(norm "$D") <(norm "$T_DIR/again.json") >/dev/null ||
	t_fail "the refused load changed the target"

# a load that fails while writing leaves the target empty
DB=$T_DIR/fail.db
sqlite3 "$DB" "CREATE TABLE kv (g INTEGER NOT NULL, k BLOB NOT NULL,
	v BLOB NOT NULL, PRIMARY KEY (g, k)) WITHOUT ROWID;
	CREATE TABLE tessera_schema (version INTEGER NOT NULL);
	INSERT INTO tessera_schema VALUES (1);
	CREATE TRIGGER no_xattrs BEFORE INSERT ON kv WHEN NEW.g = 9
	BEGIN SELECT RAISE(ABORT, 'injected failure'); END;" ||
	t_fail "cannot prepare $DB"
t_run 1 tessera load "sqlite3://$DB" "$D"
t_grep "cannot load into" "$T_ERR"
empty "$DB"
t_run 1 tessera mount "sqlite3://$DB" "$MNT"
t_grep "no volume" "$T_ERR"
# the quotas go in last, after the tree: their failure wipes it too
DB=$T_DIR/failq.db
sqlite3 "$DB" "CREATE TABLE kv (g INTEGER NOT NULL, k BLOB NOT NULL,
	v BLOB NOT NULL, PRIMARY KEY (g, k)) WITHOUT ROWID;
	CREATE TABLE tessera_schema (version INTEGER NOT NULL);
	INSERT INTO tessera_schema VALUES (1);
	CREATE TRIGGER no_quotas BEFORE INSERT ON kv WHEN NEW.g = 17
	BEGIN SELECT RAISE(ABORT, 'injected failure'); END;" ||
	t_fail "cannot prepare $DB"
t_run 1 tessera load "sqlite3://$DB" "$D"
t_grep "cannot put back the quota" "$T_ERR"
empty "$DB"

# what a load that died leaves (its marker, some records)
DB=$T_DIR/died.db
sqlite3 "$DB" "CREATE TABLE kv (g INTEGER NOT NULL, k BLOB NOT NULL,
	v BLOB NOT NULL, PRIMARY KEY (g, k)) WITHOUT ROWID;
	CREATE TABLE tessera_schema (version INTEGER NOT NULL);
	INSERT INTO tessera_schema VALUES (1);
	INSERT INTO kv VALUES (1, CAST('load' AS BLOB), CAST('{\"pid\":1}' AS BLOB));
	INSERT INTO kv VALUES (2, CAST('nextInode' AS BLOB), X'0000000000000400');" ||
	t_fail "cannot prepare $DB"
t_run 1 tessera mount "sqlite3://$DB" "$MNT"
t_one_line_err
t_grep "load.*did not finish" "$T_ERR"
t_run 1 tessera load "sqlite3://$DB" "$D"
t_one_line_err
t_grep "did not finish.*--force" "$T_ERR"
t_run 0 tessera load --force "sqlite3://$DB" "$D"
t_run 0 tessera dump "sqlite3://$DB" "$T_DIR/died.json"
diff <(norm "$D") <(norm "$T_DIR/died.json") >/dev/null ||
	t_fail "the load after --force differs from the dump"
t_pass
