#!/usr/bin/env bash
# Mount options: --read-only (EROFS, data still readable), timeouts and
# buffer options accepted after the positional arguments, -o passed to
# FUSE (unknown FUSE options refused with one line).
# STORES: file s3
# ENGINES: sqlite (command-line checks and the SQLite mount lock)
# TIMEOUT: 90
. "$(dirname "$0")/../lib/mount.sh"
t_require_fuse

t_format --trash-days 0
t_mount --attr-timeout 0 --entry-timeout 0.5 --buffer-size 64M --max-uploads 4
echo data >"$MNT/f"
mkdir "$MNT/d"
t_umount

t_mount --read-only
[ "$(cat "$MNT/f")" = data ] || t_fail "read-only mount cannot read"
grep -q "^read_only 1" "$MNT/.config" || t_fail ".config does not say read_only"
out=$(touch "$MNT/new" 2>&1) && t_fail "created a file on a read-only mount"
case "$out" in *"Read-only file system"*) ;; *) t_fail "touch: $out" ;; esac
echo more >>"$MNT/f" 2>/dev/null && t_fail "appended on a read-only mount"
rmdir "$MNT/d" 2>/dev/null && t_fail "rmdir on a read-only mount"
t_umount

t_run 1 tessera mount "$T_VOL" "$MNT" -f -o no_such_fuse_option
t_one_line_err
t_is_mounted && t_fail "mounted despite a bad -o"
t_run 2 tessera mount "$T_VOL" "$MNT" --max-uploads 0
t_run 2 tessera mount "$T_VOL" "$MNT" --attr-timeout -1
exit 0
