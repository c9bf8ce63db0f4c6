#!/usr/bin/env bash
# An encrypted, compressed volume whose blocks live on S3 (s3rver): data
# round-trips through a mount and a remount; a wrong key is refused.
# TIMEOUT: 180
. "$(dirname "$0")/../lib/mount.sh"
t_require_fuse

S3=${TESSERA_TEST_S3:-http://127.0.0.1:4568}
curl -s -o /dev/null "$S3/" || t_skip "s3rver not running at $S3"
export TESSERA_ACCESS_KEY=${TESSERA_TEST_S3_KEY:-S3RVER}
export TESSERA_SECRET_KEY=${TESSERA_TEST_S3_SECRET:-S3RVER}

KEY=$T_DIR/key
printf 'an s3 passphrase, long enough\n' >"$KEY"
printf 'not the s3 passphrase at all!\n' >"$T_DIR/wrong"
chmod 600 "$KEY" "$T_DIR/wrong"
yes 'TESSERA-S3-PLAINTEXT' | head -c 2097152 >"$T_DIR/text"
head -c 1572864 /dev/urandom >"$T_DIR/rand"

t_format --trash-days 0 --compress lz4 --encrypt-key "$KEY" \
	--storage "$S3/tessera-test/crypt-$$-$RANDOM"
t_mount --encrypt-key "$KEY"
cp "$T_DIR/text" "$T_DIR/rand" "$MNT/" || t_fail "cp into the mount"
cmp "$T_DIR/text" "$MNT/text" || t_fail "text differs"
t_umount

t_run 1 tessera mount -f "$T_VOL" "$MNT" --encrypt-key "$T_DIR/wrong"
t_one_line_err
t_grep "wrong encryption key for volume '$T_VOL'" "$T_ERR"

t_mount --encrypt-key "$KEY"
cmp "$T_DIR/text" "$MNT/text" || t_fail "text differs after remount"
cmp "$T_DIR/rand" "$MNT/rand" || t_fail "random data differs after remount"
rm -f "$MNT/text" "$MNT/rand" # trash 0: the objects go too
t_umount
exit 0
