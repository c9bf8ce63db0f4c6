#!/usr/bin/env bash
# --max-readahead: 0 turns readahead off and reads stay correct; a bound
# larger than 1G or a malformed size is a usage error.
# TIMEOUT: 180
set -u
. "$(dirname "$0")/../lib/mount.sh"

t_format
t_mount --max-readahead 0 --cache-size 0
head -c $((24 << 20)) /dev/urandom >"$T_DIR/src"
cp "$T_DIR/src" "$MNT/f" || t_fail "copy"
t_umount
t_mount --max-readahead 0 --cache-size 0
cmp "$T_DIR/src" "$MNT/f" || t_fail "read with readahead off differs"
t_umount
t_mount --max-readahead 4M --cache-size 0
cmp "$T_DIR/src" "$MNT/f" || t_fail "read with a 4M window differs"
t_umount
t_run 2 "$TESSERA_BIN" mount "$T_VOL" "$MNT" --max-readahead 2G
t_one_line_err
t_run 2 "$TESSERA_BIN" mount "$T_VOL" "$MNT" --max-readahead lots
t_pass
