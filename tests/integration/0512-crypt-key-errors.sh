#!/usr/bin/env bash
# Key errors end with one clear line and exit 1: mounting an encrypted
# volume without a key or with a wrong one, key files that others can read
# (format and mount), too short or missing key files.  A refused format
# leaves no volume behind.
# TIMEOUT: 90
. "$(dirname "$0")/../lib/mount.sh"
t_require_fuse

KEY=$T_DIR/key
WRONG=$T_DIR/wrong
printf 'the right secret, long enough' >"$KEY"
printf 'the wrong secret, long enough' >"$WRONG"
chmod 600 "$KEY" "$WRONG"

# Format refusals.
cp "$KEY" "$T_DIR/open"
chmod 644 "$T_DIR/open"
t_run 1 tessera format --encrypt-key "$T_DIR/open" bad1
t_one_line_err
t_grep "key file '$T_DIR/open' is accessible by others" "$T_ERR"
[ ! -e "$TESSERA_HOME/bad1" ] || t_fail "a refused format left a volume"
chmod 640 "$T_DIR/open"
t_run 1 tessera format --encrypt-key "$T_DIR/open" bad1
t_one_line_err
printf 'short' >"$T_DIR/short"
chmod 600 "$T_DIR/short"
t_run 1 tessera format --encrypt-key "$T_DIR/short" bad2
t_one_line_err
t_grep "too short" "$T_ERR"
t_run 1 tessera format --encrypt-key "$T_DIR/none" bad3
t_one_line_err
t_grep "$T_DIR/none" "$T_ERR"
[ ! -e "$TESSERA_HOME/bad2" ] && [ ! -e "$TESSERA_HOME/bad3" ] ||
	t_fail "a refused format left a volume"

# An encrypted volume with some data.
t_format --trash-days 0 --encrypt-key "$KEY"
t_mount --encrypt-key "$KEY"
echo "secret data" >"$MNT/f"
t_umount

# Mount refusals, foreground and background.
unset TESSERA_ENCRYPT_KEY_FILE
for fg in -f ""; do
	t_run 1 tessera mount $fg "$T_VOL" "$MNT"
	t_one_line_err
	t_grep "volume '$T_VOL' is encrypted: give --encrypt-key FILE" "$T_ERR"
	t_run 1 tessera mount $fg "$T_VOL" "$MNT" --encrypt-key "$WRONG"
	t_one_line_err
	t_grep "wrong encryption key for volume '$T_VOL'" "$T_ERR"
	t_run 1 env TESSERA_ENCRYPT_KEY_FILE="$WRONG" \
		"$TESSERA_BIN" mount $fg "$T_VOL" "$MNT"
	t_one_line_err
	t_grep "wrong encryption key for volume '$T_VOL'" "$T_ERR"
	t_run 1 tessera mount $fg "$T_VOL" "$MNT" --encrypt-key "$T_DIR/open"
	t_one_line_err
	t_grep "accessible by others" "$T_ERR"
	! t_is_mounted || t_fail "mounted despite a key error"
done

# The right key still works, and the data is there.
t_mount --encrypt-key "$KEY"
[ "$(cat "$MNT/f")" = "secret data" ] || t_fail "data lost"
t_umount
exit 0
