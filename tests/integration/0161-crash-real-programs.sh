#!/usr/bin/env bash
# Real programs under kill -9 of the mount (DESIGN 7.2): an SQLite
# database in WAL mode with synchronous=FULL and a `git commit` loop (with
# core.fsync=all, core.fsyncMethod=fsync: git's promises are then real)
# run at once; the mount is killed with both mid-run.  After the remount:
# every transaction SQLite reported committed is there with its bytes, the
# two tables of each transaction agree (atomicity), integrity_check is ok;
# `git fsck --full` passes, HEAD is a valid commit and every commit the
# loop saw returned is its ancestor.  A clean umount then leaves fsck clean.
# TIMEOUT: 180
. "$(dirname "$0")/../lib/mount.sh"
command -v git >/dev/null || t_skip "no git (scripts/install-deps.sh --test)"

t_format --trash-days 0
t_mount

# sql.py DB OUT: one transaction at a time, each a row and a running total
# in another table; OUT/sql-committed holds the number committed.
cat >"$T_DIR/sql.py" <<'PY'
import hashlib, os, sqlite3, sys

path, out = sys.argv[1], sys.argv[2]
db = sqlite3.connect(path, isolation_level=None)
assert db.execute("pragma journal_mode=wal").fetchone()[0] == "wal"
db.execute("pragma synchronous=full")
db.execute("create table t(i integer primary key, v blob)")
db.execute("create table s(k integer primary key, n integer, total integer)")
db.execute("insert into s values (0, 0, 0)")
n = 0
try:
    while True:
        v = hashlib.sha256(b"%d" % n).digest() * 20
        db.execute("begin")
        db.execute("insert into t values (?, ?)", (n, v))
        db.execute("update s set n = n + 1, total = total + ? where k = 0",
                   (n,))
        db.execute("commit")
        n += 1
        with open(out + "/sql-committed.tmp", "w") as f:
            f.write("%d\n" % n)
        os.rename(out + "/sql-committed.tmp", out + "/sql-committed")
except (OSError, sqlite3.Error):
    pass  # the mount went away under us
PY

# git.sh REPO OUT: commit a changed file in a loop; OUT/git-committed holds
# the last commit `git commit` returned.
cat >"$T_DIR/git.sh" <<'SH'
repo=$1 out=$2
git init -q "$repo" || exit 1
cd "$repo" || exit 1
git config core.fsync all
git config core.fsyncMethod fsync
git config user.name crash
git config user.email crash@example.com
git config gc.auto 0
i=0
while :; do
	echo "line $i" >>file || break
	head -c $((i * 37 % 3000)) /dev/zero >"f$((i % 7))" || break
	git add -A 2>/dev/null || break
	git commit -q -m "commit $i" 2>/dev/null || break
	sha=$(git rev-parse HEAD) || break
	i=$((i + 1))
	echo "$sha $i" >"$out/git-committed.tmp" &&
		mv "$out/git-committed.tmp" "$out/git-committed"
done
SH

python3 "$T_DIR/sql.py" "$MNT/app.db" "$T_DIR" &
sql=$!
bash "$T_DIR/git.sh" "$MNT/repo" "$T_DIR" &
gitl=$!
# a few seconds of both: at least 100 transactions and 15 commits
for _ in $(seq 1200); do
	[ -s "$T_DIR/sql-committed" ] && [ "$(cat "$T_DIR/sql-committed")" -ge 100 ] &&
		[ -s "$T_DIR/git-committed" ] &&
		[ "$(cut -d' ' -f2 "$T_DIR/git-committed")" -ge 15 ] && break
	kill -0 $sql 2>/dev/null || t_fail "sqlite writer died early"
	kill -0 $gitl 2>/dev/null || t_fail "git loop died early"
	sleep 0.1
done
kill -0 $sql 2>/dev/null && kill -0 $gitl 2>/dev/null ||
	t_fail "a writer stopped before the kill"
t_kill9
wait $sql
wait $gitl
read -r committed <"$T_DIR/sql-committed"
read -r head ncommits <"$T_DIR/git-committed"
t_log "kill -9 after $committed sqlite transactions, $ncommits git commits"

t_mount
python3 - "$MNT/app.db" "$committed" <<'PY' || t_fail "sqlite lost committed transactions"
import hashlib, sqlite3, sys

db = sqlite3.connect(sys.argv[1], isolation_level=None)
committed = int(sys.argv[2])
ok = db.execute("pragma integrity_check").fetchall()
assert ok == [("ok",)], ok
n, total = db.execute("select n, total from s where k = 0").fetchone()
rows = db.execute("select i, v from t order by i").fetchall()
assert n == len(rows) >= committed, (n, len(rows), committed)
assert total == sum(range(n)), (total, n)
for i, v in rows:
    assert v == hashlib.sha256(b"%d" % i).digest() * 20, i
assert [i for i, _ in rows] == list(range(n))
print("rows", n, "committed", committed)
PY
cd "$MNT/repo" || t_fail "no repository after the remount"
git fsck --full --no-progress >"$T_DIR/fsck.log" 2>&1 ||
	t_fail "git fsck --full: $(cat "$T_DIR/fsck.log")"
[ "$(git cat-file -t HEAD)" = commit ] || t_fail "HEAD is no commit"
git merge-base --is-ancestor "$head" HEAD ||
	t_fail "commit $head, returned before the kill, is not in HEAD's history"
t_log "HEAD has $(git rev-list --count HEAD) commits"
cd / || exit 1
t_umount
t_run 0 tessera fsck "$T_VOL"
