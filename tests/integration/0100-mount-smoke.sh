#!/usr/bin/env bash
# Mount an embedded volume, do the everyday things, unmount, remount: the
# data is still there and the .stats virtual file names the mount process
# and counts the requests it served per FUSE opcode.
# STORES: file s3
# ENGINES: sqlite redis pg
# TIMEOUT: 60
# SMOKE
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0
t_mount

echo hello >"$MNT/a" || t_fail "cannot create a file"
[ "$(cat "$MNT/a")" = hello ] || t_fail "read back differs"
mkdir -p "$MNT/d/e" || t_fail "mkdir -p"
head -c 3000000 /dev/urandom >"$T_DIR/local"
cp "$T_DIR/local" "$MNT/d/e/blob" || t_fail "cp into the mount"
cmp "$T_DIR/local" "$MNT/d/e/blob" || t_fail "copied file differs"
[ "$(stat -c %s "$MNT/d/e/blob")" = 3000000 ] || t_fail "wrong size"
ls "$MNT" | grep -qx a || t_fail "ls misses a"
ls -a "$MNT" | grep -q '^\.stats$' && t_fail ".stats must be hidden from readdir"
grep -q "^pid $T_MOUNT_PID\$" "$MNT/.stats" || t_fail ".stats has no pid line"
grep -q '"name"' "$MNT/.config" || t_fail ".config has no settings"
# "fuse_op NAME COUNT TOTAL_US": five mkdirs in a new directory are five
# MKDIR requests more than before.
mk0=$(awk '$1 == "fuse_op" && $2 == "mkdir" {print $3}' "$MNT/.stats")
mkdir "$MNT/m" "$MNT/m/1" "$MNT/m/2" "$MNT/m/3" "$MNT/m/4" || t_fail "mkdir"
mk1=$(awk '$1 == "fuse_op" && $2 == "mkdir" {print $3}' "$MNT/.stats")
[ "$mk1" = $((${mk0:-0} + 5)) ] || t_fail "fuse_op mkdir went ${mk0:-0} -> $mk1"
grep -Eq '^fuse_op lookup [0-9]+ [0-9]+$' "$MNT/.stats" ||
	t_fail "no fuse_op lookup line: $(grep fuse_op "$MNT/.stats")"
rm "$MNT/a" && [ ! -e "$MNT/a" ] || t_fail "rm"
mv "$MNT/d/e/blob" "$MNT/blob2" || t_fail "mv"

t_umount
t_mount
cmp "$T_DIR/local" "$MNT/blob2" || t_fail "data differs after remount"
[ -d "$MNT/d/e" ] || t_fail "directory lost after remount"
t_umount
