#!/usr/bin/env bash
# Credentials the S3 server refuses end `tessera format` and `tessera
# mount` (background and foreground) with one line naming the endpoint and
# "access denied", exit 1, and no partial state: the same commands with
# the right credentials then work.  s3rver checks only that the access key
# exists, not the signature, so a wrong ACCESS key stands for any refused
# credentials here (a wrong secret key is refused the same way by AWS,
# MinIO or Ceph: HTTP 403, the same code path).
# STORES: s3
# TIMEOUT: 60
. "$(dirname "$0")/../lib/mount.sh"
t_require_fuse

bad() { TESSERA_ACCESS_KEY=NOSUCHKEY TESSERA_SECRET_KEY=whatever "$@"; }
host=${T_S3_URL#http://}
host=${host%%/*}

# format with refused credentials
t_run 1 bad tessera format --storage "$T_S3_URL" "$T_VOL"
t_one_line_err
t_grep "$T_S3_URL" "$T_ERR"
t_grep "$host" "$T_ERR"
t_grep "access denied" "$T_ERR"
[ ! -e "$TESSERA_HOME/$T_VOL" ] || t_fail "a refused format left $TESSERA_HOME/$T_VOL"

# right credentials: format works (nothing left behind blocks it)
t_format
t_mount
echo data >"$MNT/f"
t_umount

# mount with refused credentials: background and foreground
t_run 1 bad tessera mount "$T_VOL" "$MNT"
t_one_line_err
t_grep "$T_S3_URL" "$T_ERR"
t_grep "access denied" "$T_ERR"
! t_is_mounted || t_fail "mounted with refused credentials"
t_run 1 bad tessera mount -f "$T_VOL" "$MNT"
t_one_line_err
t_grep "access denied" "$T_ERR"
! t_is_mounted || t_fail "mounted with refused credentials"

# and the volume is intact
t_mount
[ "$(cat "$MNT/f")" = data ] || t_fail "data lost"
t_umount
t_pass
