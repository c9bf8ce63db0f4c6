#!/usr/bin/env bash
# dump and load of an encrypted, compressed volume through a pipe: the
# dump (--json-indent, to standard output) keeps the wrapped data key and
# never the key file's secret; `load ... -` reads standard input; the
# loaded volume mounts with the same --encrypt-key and reads the same
# bytes (the objects are shared), and refuses to mount without it.
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

KEY=$T_DIR/key
SECRET=a-secret-passphrase-for-dump-1012
printf '%s\n' "$SECRET" >"$KEY"
chmod 600 "$KEY"
t_format --trash-days 0 --compress zstd --encrypt-key "$KEY"
t_mount --encrypt-key "$KEY"
head -c 3000000 /dev/urandom >"$T_DIR/data"
cp "$T_DIR/data" "$MNT/data"
yes compressible | head -c 1000000 >"$MNT/text"
want_data=$(sha256sum <"$T_DIR/data")
want_text=$(sha256sum <"$MNT/text")
t_umount

DB=$T_DIR/loaded.db
tessera dump "$T_VOL" - --json-indent 2>"$T_ERR" |
	tee "$T_DIR/dump.json" |
	tessera load "sqlite3://$DB" - >"$T_OUT" 2>>"$T_ERR" ||
	t_fail "dump | load failed: $(cat "$T_ERR")"
t_grep "^loaded 'standard input'" "$T_OUT"
t_grep '^    "encrypt": "aes-256-gcm",$' "$T_DIR/dump.json"
t_grep '^    "key_wrapped": "tk1:' "$T_DIR/dump.json"
t_grep '^  "checksum": "xxh3:' "$T_DIR/dump.json"
if grep -q "$SECRET" "$T_DIR/dump.json"; then
	t_fail "the key file's secret is in the dump"
fi

T_META=sqlite3://$DB
t_run 1 tessera mount "$T_META" "$MNT"
t_grep "encrypted" "$T_ERR"
t_mount --encrypt-key "$KEY"
[ "$(sha256sum <"$MNT/data")" = "$want_data" ] || t_fail "data differs"
[ "$(sha256sum <"$MNT/text")" = "$want_text" ] || t_fail "text differs"
t_umount
t_pass
