#!/usr/bin/env bash
# tessera mount / umount: the default (background) mode, umount waiting for
# the mount process, and the error cases, each one clear line and exit 1.
# STORES: file s3
# ENGINES: sqlite (command-line checks and the SQLite mount lock)
# TIMEOUT: 90
# SMOKE
. "$(dirname "$0")/../lib/mount.sh"
t_require_fuse

t_format --trash-days 0
mkdir -p "$T_DIR/full" "$T_DIR/mnt2"
touch "$T_DIR/full/x"

# missing volume, missing / non-empty / non-directory mountpoint
t_run 1 tessera mount nosuch "$MNT"
t_one_line_err
t_grep "volume 'nosuch' does not exist" "$T_ERR"
t_run 1 tessera mount "$T_VOL" "$T_DIR/no/such/dir"
t_one_line_err
t_grep "does not exist" "$T_ERR"
t_run 1 tessera mount "$T_VOL" "$T_DIR/full"
t_one_line_err
t_grep "not empty" "$T_ERR"
t_run 1 tessera mount "$T_VOL" "$T_DIR/full/x"
t_one_line_err
t_run 2 tessera mount "$T_VOL"
t_run 2 tessera mount "$T_VOL" "$MNT" --no-such-option
t_run 2 tessera mount "$T_VOL" "$MNT" --buffer-size lots
t_run 1 tessera mount "bad name!" "$MNT"
t_one_line_err

# background mode: returns once the mount is live
t_run 0 tessera mount "$T_VOL" "$MNT"
t_is_mounted || t_fail "not mounted after tessera mount returned"
pid=$(sed -n 's/^pid //p' "$MNT/.stats")
[ -n "$pid" ] && kill -0 "$pid" || t_fail "no mount process"
[ "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid" ] ||
	t_fail "the mount process did not detach (setsid)"
head -c 5000000 /dev/urandom >"$T_DIR/local"
cp "$T_DIR/local" "$MNT/f"

# double mount of the volume, mount over a mount
t_run 1 tessera mount "$T_VOL" "$T_DIR/mnt2"
t_one_line_err
t_grep "already mounted" "$T_ERR"
t_run 1 tessera mount "$T_VOL" "$MNT"
t_one_line_err

# umount: busy while a file is open, then waits for the process to exit
exec 7<"$MNT/f"
t_run 1 tessera umount "$MNT"
t_one_line_err
t_grep "busy" "$T_ERR"
exec 7<&-
t_run 0 tessera umount "$MNT"
st=$(ps -o stat= -p "$pid" 2>/dev/null)
case "$st" in
"" | Z*) ;; # gone, or exited and not reaped yet
*) t_fail "mount process still running after umount ($st)" ;;
esac
t_is_mounted && t_fail "still mounted"
t_run 1 tessera umount "$MNT"
t_one_line_err
t_grep "not a tessera mount" "$T_ERR"

# the data survived
t_mount
cmp "$T_DIR/local" "$MNT/f" || t_fail "data differs after remount"
t_umount
