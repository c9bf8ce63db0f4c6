#!/usr/bin/env bash
# Encrypted volumes through a real mount: data round-trips (sha256), the
# objects and the disk cache never hold the plaintext the test wrote, the
# key can come from TESSERA_ENCRYPT_KEY_FILE, compression still works
# under encryption, and a damaged object reads as EIO with its key in the
# log, never as data.
# TIMEOUT: 180
. "$(dirname "$0")/../lib/mount.sh"
t_require_fuse

KEY=$T_DIR/key
printf 'a passphrase of some length\n' >"$KEY"
chmod 600 "$KEY"
PATTERN=TESSERA-KNOWN-PLAINTEXT-7f3a9c
# 5 MiB: the pattern over and over (compressible), then random bytes.
yes "$PATTERN" | head -c 5242880 >"$T_DIR/text"
head -c 2097152 /dev/urandom >"$T_DIR/rand"
want_text=$(sha256sum <"$T_DIR/text")
want_rand=$(sha256sum <"$T_DIR/rand")

objects_dir() { echo "$TESSERA_HOME/$T_VOL/objects"; }

for codec in none zstd; do
	T_VOL=enc$codec
	t_format --trash-days 0 --compress "$codec" --encrypt-key "$KEY"
	grep -q 'aes-256-gcm' "$T_DIR/format.log" ||
		t_fail "$codec: format did not report the encryption"
	tessera status "$T_VOL" | grep -q 'encrypt: *aes-256-gcm' ||
		t_fail "$codec: status does not show the encryption"
	t_mount --encrypt-key "$KEY"
	cp "$T_DIR/text" "$MNT/text" || t_fail "$codec: cp text"
	cp "$T_DIR/rand" "$MNT/rand" || t_fail "$codec: cp rand"
	[ "$(sha256sum <"$MNT/text")" = "$want_text" ] ||
		t_fail "$codec: text differs"
	t_umount
	[ "$(t_objects)" -ge 2 ] || t_fail "$codec: no block objects written"
	if grep -rqa "$PATTERN" "$(objects_dir)"; then
		t_fail "$codec: plaintext found in the object store"
	fi
	if grep -rqa "$PATTERN" "$TESSERA_HOME/$T_VOL/meta.db"; then
		t_fail "$codec: plaintext found in the metadata"
	fi
	if grep -rqa "$PATTERN" "$TESSERA_HOME/cache"; then
		t_fail "$codec: plaintext found in the disk cache"
	fi
	used=$(find "$(objects_dir)" -type f -path '*/chunks/*' -printf '%s\n' |
		awk '{ s += $1 } END { print s + 0 }')
	if [ "$codec" = zstd ]; then
		[ "$used" -lt $((2097152 + 1048576)) ] ||
			t_fail "zstd: not compressed before encryption ($used)"
	else
		[ "$used" -gt $((5242880 + 2097152)) ] ||
			t_fail "none: fewer bytes stored than written ($used)"
	fi
	# The key file from the environment.
	TESSERA_ENCRYPT_KEY_FILE=$KEY t_mount
	[ "$(sha256sum <"$MNT/text")" = "$want_text" ] ||
		t_fail "$codec: text differs after remount"
	[ "$(sha256sum <"$MNT/rand")" = "$want_rand" ] ||
		t_fail "$codec: random data differs after remount"
	t_umount
done

# Damage one byte in the middle of the largest object (the random file's
# only block; the text compressed to small ones): reading 'rand' fails with
# EIO and the log names the object, while 'text' still reads correctly.
# Without the disk cache, which holds good copies of both.
obj=$(find "$(objects_dir)" -type f -path '*/chunks/*' -printf '%s %p\n' |
	sort -n | tail -n 1 | cut -d' ' -f2-)
[ -n "$obj" ] || t_fail "no object to damage"
size=$(stat -c %s "$obj")
[ "$size" -gt 2000000 ] || t_fail "largest object is only $size bytes"
printf '\xff' | dd of="$obj" bs=1 seek=$((size / 2)) conv=notrunc status=none
: >"$T_DIR/mount.log"
rm -rf "$TESSERA_HOME/cache"
t_mount --encrypt-key "$KEY" --cache-size 0
[ "$(sha256sum <"$MNT/text")" = "$want_text" ] ||
	t_fail "the undamaged file does not read"
if cat "$MNT/rand" >/dev/null 2>"$T_DIR/cat.err"; then
	t_fail "reading a damaged encrypted block succeeded"
fi
t_grep 'Input/output error' "$T_DIR/cat.err"
key=${obj#"$(objects_dir)/"}
t_umount
t_grep "cannot read block '$key'" "$T_DIR/mount.log"
exit 0
