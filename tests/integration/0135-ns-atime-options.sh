#!/usr/bin/env bash
# atime follows the mount options as on ext4: relatime (default) moves it
# on the first read after a change, noatime never, strictatime on every
# read; readdir moves a directory's atime unless nodiratime; lazytime is
# accepted.
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

at() { stat -c %X.%x "$1" | sed 's/ .*//; s/^\([0-9]*\)\.[0-9-]* [0-9:]*\.\([0-9]*\).*/\1\2/'; }
atns() { python3 -c "import os,sys; print(os.stat(sys.argv[1]).st_atime_ns)" "$1"; }
rd() { cat "$1" >/dev/null; }

t_format
mnt_with() { t_mount --attr-timeout 0 --entry-timeout 0 "$@"; }

# relatime
mnt_with
echo data >"$MNT/f"
mkdir "$MNT/d"
sleep 0.05
a0=$(atns "$MNT/f")
rd "$MNT/f"
a1=$(atns "$MNT/f")
[ "$a1" -gt "$a0" ] || t_fail "relatime: the first read after a write did not move atime"
sleep 0.05
rd "$MNT/f"
[ "$(atns "$MNT/f")" = "$a1" ] || t_fail "relatime: a second read moved atime"
touch "$MNT/d/x"
sleep 0.05
d0=$(atns "$MNT/d")
ls "$MNT/d" >/dev/null
[ "$(atns "$MNT/d")" -gt "$d0" ] || t_fail "relatime: readdir after a change did not move the directory's atime"
t_umount

# noatime
mnt_with -o noatime
echo more >>"$MNT/f"
sleep 0.05
a0=$(atns "$MNT/f")
rd "$MNT/f"
[ "$(atns "$MNT/f")" = "$a0" ] || t_fail "noatime: a read moved atime"
touch "$MNT/d/y"
d0=$(atns "$MNT/d")
ls "$MNT/d" >/dev/null
[ "$(atns "$MNT/d")" = "$d0" ] || t_fail "noatime: readdir moved atime"
t_umount

# strictatime (with lazytime)
mnt_with -o strictatime,lazytime
rd "$MNT/f"
a1=$(atns "$MNT/f")
sleep 0.05
rd "$MNT/f"
a2=$(atns "$MNT/f")
[ "$a2" -gt "$a1" ] || t_fail "strictatime: a second read did not move atime ($a1 $a2)"
t_umount
# strictatime atimes reach metadata: seen after a remount
mnt_with
[ "$(atns "$MNT/f")" = "$a2" ] || t_fail "strictatime: atime not kept ($(atns "$MNT/f") != $a2)"
t_umount

# nodiratime: files still move, directories not
mnt_with -o nodiratime
touch "$MNT/d/z"
sleep 0.05
d0=$(atns "$MNT/d")
ls "$MNT/d" >/dev/null
[ "$(atns "$MNT/d")" = "$d0" ] || t_fail "nodiratime: readdir moved atime"
echo again >>"$MNT/f"
sleep 0.05
a0=$(atns "$MNT/f")
rd "$MNT/f"
[ "$(atns "$MNT/f")" -gt "$a0" ] || t_fail "nodiratime: a file read did not move atime"
t_umount
echo ok
