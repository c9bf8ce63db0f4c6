#!/usr/bin/env bash
# The mount's fsync of its SQLite metadata must not drop SQLite's own file
# locks (closing any descriptor of a file drops every fcntl lock the
# process holds on it).  Once they were dropped, the next tool that opened
# and closed the database (tessera status) saw it unused, checkpointed it
# and deleted the -wal file the mount was still writing: everything the
# mount committed afterwards, fsynced or not, was lost at a kill -9.
# SMOKE
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

fsync_file() { # fsync_file PATH CONTENT: write, fsync, close
	python3 - "$1" "$2" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, sys.argv[2].encode())
os.fsync(fd)
os.close(fd)
PY
}

t_format --trash-days 0
t_mount
fsync_file "$MNT/first" one || t_fail "first fsync"
# a tool opens and closes the database while the mount runs
t_run 0 tessera status "$T_VOL"
[ -e "$TESSERA_HOME/$T_VOL/meta.db-wal" ] ||
	t_fail "the -wal file of the mounted volume was deleted by 'tessera status'"
for i in $(seq 10); do
	fsync_file "$MNT/after-$i" "v$i" || t_fail "fsync after-$i"
done
t_run 0 tessera status "$T_VOL"
t_kill9
t_mount --force
[ "$(cat "$MNT/first")" = one ] || t_fail "first file lost"
for i in $(seq 10); do
	[ "$(cat "$MNT/after-$i" 2>/dev/null)" = "v$i" ] ||
		t_fail "fsynced file after-$i lost after kill -9"
done
t_umount
echo ok
