#!/usr/bin/env bash
# Durable state as a URL, file store, two hosts on one machine (two
# TESSERA_HOMEs): A writes with fsyncs and is killed with -9; B, with an
# empty home, mounts STORAGE-URL/NAME alone and finds every fsynced byte.
# The lease: A cannot mount while B is alive, --force takes the volume
# over, B's fsyncs then fail with EROFS and B says so.  Status shows the
# replication state, also from the URL alone.
# TIMEOUT: 300
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/repl.sh"

STORE=$T_DIR/store
URL=file://$STORE/$T_VOL
mkdir -p "$STORE"
t_format --storage "file://$STORE/" --trash-days 0
t_grep "mount it anywhere as $URL" "$T_DIR/format.log"
t_mount
t_run 0 tessera status "$T_VOL"
t_grep "^replication: on" "$T_OUT"
t_grep "mounted: *$MNT" "$T_OUT"

progress=$T_DIR/progress
r_start_writer "$MNT" "$progress" 20

# B while A is alive: refused, naming the holder; nothing restored.
TESSERA_HOME=$HOME_B t_run 1 tessera mount "$URL" "$MNT_B"
t_one_line_err
t_grep "in use by .* use --force" "$T_ERR"
[ ! -e "$HOME_B/$T_VOL/meta.db" ] || t_fail "B restored without the lease"

t_kill9
wait $R_WRITER
n=$(cat "$progress")
t_log "A fsynced $n rounds before kill -9"

# The store alone tells what it holds (B has no copy yet).
TESSERA_HOME=$HOME_B t_run 0 tessera status "$URL"
t_grep "local: *no copy" "$T_OUT"
t_grep "stored: *generation [0-9a-f]\{16\}" "$T_OUT"

# B: mount from the URL alone (A's lease belongs to a dead process here).
r_mount_b "$URL" "$MNT_B"
grep -q "restored volume '$T_VOL' at txn" "$T_DIR/mount-b.log" ||
	t_fail "no restore progress: $(cat "$T_DIR/mount-b.log")"
r_check "$MNT_B" "$progress" || t_fail "fsynced data lost on the way to B"
[ -s "$HOME_B/$T_VOL/meta.db" ] || t_fail "no local copy on B"
# in sync once shipped (1 s lag; reads may still start compactions and
# deletions on B for a while)
for _ in $(seq 300); do
	TESSERA_HOME=$HOME_B t_run 0 tessera status "$T_VOL"
	grep -q "local: .*(in sync)" "$T_OUT" && break
	sleep 0.1
done
t_grep "local: .*(in sync)" "$T_OUT"

# B writes on; A (its copy is behind now) is refused while B lives.
echo "from B" >"$MNT_B/b-file"
sync "$MNT_B/b-file"
tessera mount "$T_VOL" "$MNT" >"$T_OUT" 2>"$T_ERR" && t_fail "A mounted beside B"
t_grep "in use by" "$T_ERR"
t_is_mounted && t_fail "A mounted beside B"

# A takes over with --force: its copy is restored from the store first.
t_mount --force
t_grep "behind the object store" "$T_DIR/mount.log"
[ "$(cat "$MNT/b-file")" = "from B" ] || t_fail "A does not see B's fsynced file"
r_check "$MNT" "$progress" || t_fail "A lost data"

# B lost the lease: its fsync fails with EROFS, and it says so.
r_fsync_erofs "$MNT_B/late" ||
	t_fail "B could still fsync after losing the lease"
grep -q "^repl_lease_lost 1" "$MNT_B/.stats" || t_fail "B's .stats does not say the lease is lost"
grep -q "stops writing" "$T_DIR/mount-b.log" || t_fail "B did not say it stops writing"
[ -e "$MNT/late" ] && t_fail "B's write after the takeover reached A"
r_umount_b

# A's writes are durable in the store: a third host sees them.
echo "after takeover" >"$MNT/a-file"
sync "$MNT/a-file"
t_umount
rm -rf "$HOME_B"
mkdir -p "$HOME_B"
r_mount_b "$URL" "$MNT_B" --read-only
[ "$(cat "$MNT_B/a-file")" = "after takeover" ] || t_fail "A's file missing"
r_umount_b
exit 0
