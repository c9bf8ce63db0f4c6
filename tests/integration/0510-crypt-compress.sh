#!/usr/bin/env bash
# Compressed volumes (lz4, zstd) through a real mount: data round-trips
# (sha256) before and after a remount, and compressible data takes less
# room in the object store than it has bytes.
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"
t_require_fuse

# 6 MiB of text (compresses well) and 3 MiB of random bytes.
yes 'tessera compress test line, the same again and again' |
	head -c 6291456 >"$T_DIR/text"
head -c 3145728 /dev/urandom >"$T_DIR/rand"
want_text=$(sha256sum <"$T_DIR/text")
want_rand=$(sha256sum <"$T_DIR/rand")

objects_bytes() {
	find "$TESSERA_HOME/$T_VOL/objects" -type f -path '*/chunks/*' \
		-printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}

for codec in lz4 zstd; do
	T_VOL=v$codec
	t_format --trash-days 0 --compress "$codec"
	tessera status "$T_VOL" | grep -q "compress: *$codec" ||
		t_fail "$codec: status does not show the codec"
	t_mount
	cp "$T_DIR/text" "$MNT/text" || t_fail "$codec: cp text"
	cp "$T_DIR/rand" "$MNT/rand" || t_fail "$codec: cp rand"
	[ "$(sha256sum <"$MNT/text")" = "$want_text" ] ||
		t_fail "$codec: text differs"
	t_umount
	# The text is 6 MiB; compressed blocks take far less.
	used=$(objects_bytes)
	[ "$used" -gt 3145728 ] || t_fail "$codec: too few bytes stored ($used)"
	[ "$used" -lt $((3145728 + 2097152)) ] ||
		t_fail "$codec: text not compressed ($used bytes stored)"
	t_mount
	[ "$(sha256sum <"$MNT/text")" = "$want_text" ] ||
		t_fail "$codec: text differs after remount"
	[ "$(sha256sum <"$MNT/rand")" = "$want_rand" ] ||
		t_fail "$codec: random data differs after remount"
	# Random reads inside compressed blocks.
	dd if="$MNT/text" bs=1 skip=4194000 count=400 status=none >"$T_DIR/part"
	dd if="$T_DIR/text" bs=1 skip=4194000 count=400 status=none |
		cmp - "$T_DIR/part" || t_fail "$codec: ranged read differs"
	t_umount
done
exit 0
