#!/usr/bin/env bash
# Execute permission alone runs a program for another user (the kernel
# opens it for exec itself: no read permission needed, as on ext4), and
# device nodes: a mount is nodev,nosuid by default, and -o dev,suid from
# root makes a character device usable.
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

id nobody >/dev/null 2>&1 || t_skip "no user nobody"
t_format
t_mount -o allow_other
chmod 755 "$MNT"
cp /bin/true "$MNT/t"
chmod 711 "$MNT/t"
su -s /bin/sh nobody -c "$MNT/t" || t_fail "a 0711 program does not run for nobody"
chmod 744 "$MNT/t"
! su -s /bin/sh nobody -c "$MNT/t" 2>/dev/null || t_fail "a 0744 program ran for nobody"
# reading still needs read permission
chmod 711 "$MNT/t"
! su -s /bin/sh nobody -c "cat $MNT/t" >/dev/null 2>&1 || t_fail "nobody read a 0711 file"
mknod "$MNT/null" c 1 3 || t_fail "mknod"
grep " $MNT " /proc/mounts | grep -q nodev || t_fail "not nodev by default: $(grep " $MNT " /proc/mounts)"
! sh -c "echo x >'$MNT/null'" 2>/dev/null || t_fail "a device opened on a nodev mount"
t_umount

t_mount -o dev,suid
opts=$(grep " $MNT " /proc/mounts)
case "$opts" in *nodev* | *nosuid*) t_fail "-o dev,suid not applied: $opts" ;; esac
echo x >"$MNT/null" || t_fail "cannot write the null device with -o dev"
[ "$(head -c 4 "$MNT/null" | wc -c)" = 0 ] || t_fail "null device reads data"
t_umount
echo ok
