#!/usr/bin/env bash
# POSIX ACLs (system.posix_acl_access / _default), enforced by the kernel
# (FUSE_CAP_POSIX_ACL) for a user other than root: named users and groups,
# the mask, getfacl after a remount, default ACL inheritance by a new file
# and directory, chmod keeping the mask in step, tessera clone keeping the
# ACL, and -o noacl.
# ENGINES: sqlite redis pg
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

command -v setfacl >/dev/null || t_skip "no setfacl (package acl)"
id nobody >/dev/null 2>&1 || t_skip "no user nobody"
NOGRP=$(id -gn nobody)

t_format --trash-days 0
t_mount -o allow_other
chmod 755 "$MNT"

as_nobody() { su -s /bin/sh nobody -c "$1" >/dev/null 2>&1; }

echo secret >"$MNT/f"
chmod 600 "$MNT/f"
! as_nobody "cat $MNT/f" || t_fail "nobody read a 0600 file"
setfacl -m u:nobody:r "$MNT/f" || t_fail "setfacl u:nobody:r"
as_nobody "cat $MNT/f" || t_fail "u:nobody:r does not let nobody read"
[ "$(stat -c %a "$MNT/f")" = 640 ] || t_fail "mode after setfacl: $(stat -c %a "$MNT/f")"
! as_nobody "echo x >>$MNT/f" || t_fail "u:nobody:r lets nobody write"
setfacl -x u:nobody "$MNT/f" || t_fail "setfacl -x"
! as_nobody "cat $MNT/f" || t_fail "nobody reads after the entry went"

# a named group
setfacl -m "g:$NOGRP:r" "$MNT/f" || t_fail "setfacl g:$NOGRP:r"
as_nobody "cat $MNT/f" || t_fail "a named group entry does not let nobody read"
setfacl -x "g:$NOGRP" "$MNT/f" || t_fail "setfacl -x g"

# the mask limits a named user
setfacl -m u:nobody:rw "$MNT/f" || t_fail "setfacl u:nobody:rw"
as_nobody "cat $MNT/f" || t_fail "u:nobody:rw does not let nobody read"
setfacl -m m::- "$MNT/f" || t_fail "setfacl m::-"
! as_nobody "cat $MNT/f" || t_fail "nobody reads through an empty mask"
[ "$(stat -c %a "$MNT/f")" = 600 ] || t_fail "mode after m::-: $(stat -c %a "$MNT/f")"
setfacl -m m::r "$MNT/f" || t_fail "setfacl m::r"

# chmod keeps the mask in step
as_nobody "cat $MNT/f" || t_fail "mask r: nobody cannot read"
chmod g-r "$MNT/f"
getfacl -c "$MNT/f" 2>/dev/null | grep -qx 'mask::---' ||
	t_fail "chmod g-r left the mask: $(getfacl -c "$MNT/f" 2>/dev/null | tr '\n' ' ')"
! as_nobody "cat $MNT/f" || t_fail "nobody reads after chmod g-r"
chmod g+r "$MNT/f"
as_nobody "cat $MNT/f" || t_fail "nobody cannot read after chmod g+r"

# default ACL inherited by a new file and a new directory
mkdir "$MNT/d"
setfacl -m u:nobody:rwx "$MNT/d" || t_fail "setfacl on a directory"
setfacl -d -m u:nobody:rw,g::r,o::- "$MNT/d" || t_fail "setfacl -d"
(umask 077; echo new >"$MNT/d/nf"; mkdir "$MNT/d/sub")
getfacl -c "$MNT/d/nf" 2>/dev/null | grep -q '^user:nobody:rw' ||
	t_fail "file did not inherit: $(getfacl -c "$MNT/d/nf" 2>/dev/null | tr '\n' ' ')"
getfacl -c "$MNT/d/sub" 2>/dev/null | grep -q '^default:user:nobody:rw' ||
	t_fail "directory did not inherit the default ACL"
getfacl -c "$MNT/d/sub" 2>/dev/null | grep -q '^user:nobody:rw' ||
	t_fail "directory did not inherit the access ACL"
as_nobody "cat $MNT/d/nf" || t_fail "nobody cannot read an inherited file (umask applied?)"
as_nobody "echo more >$MNT/d/nby" || t_fail "nobody cannot create in a u:nobody:rwx dir"

# clone keeps the ACL
t_run 0 tessera clone "$MNT/f" "$MNT/f2"
[ "$(getfacl -c "$MNT/f2" 2>/dev/null)" = "$(getfacl -c "$MNT/f" 2>/dev/null)" ] ||
	t_fail "clone lost the ACL"

# malformed values are refused
python3 - "$MNT/f" <<'PY' || t_fail "a malformed ACL was accepted"
import errno, os, sys
try:
    os.setxattr(sys.argv[1], "system.posix_acl_access", b"\x02\0\0\0\x01\0")
except OSError as e:
    sys.exit(0 if e.errno == errno.EINVAL else 1)
sys.exit(1)
PY

# getfacl round trip across a remount
getfacl -R "$MNT/f" "$MNT/d" >"$T_DIR/before" 2>/dev/null
t_umount
t_mount -o allow_other
getfacl -R "$MNT/f" "$MNT/d" >"$T_DIR/after" 2>/dev/null
cmp -s "$T_DIR/before" "$T_DIR/after" || t_fail "getfacl differs after a remount"
as_nobody "cat $MNT/f" || t_fail "ACL not enforced after a remount"
t_umount

# -o noacl: no ACLs at all
t_mount -o allow_other,noacl
! setfacl -m u:nobody:r "$MNT/f" 2>/dev/null || t_fail "setfacl works with -o noacl"
t_umount
exit 0
