#!/usr/bin/env bash
# The disk cache of an encrypted volume holds ciphertext only: after
# writes, reads, warmup and write-back (with kill -9), no file under the
# cache directory has any of the plaintext written, yet the cache serves
# reads with the store's blocks moved away (cache hits, nothing counted
# corrupt), warmup fills it with usable blocks, and blocks staged before a
# kill -9 are uploaded encrypted and read back correctly.
# TIMEOUT: 300
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/cache.sh"

KEY=$T_DIR/key
printf 'the cache key passphrase\n' >"$KEY"
chmod 600 "$KEY"
PATTERN=TESSERA-CACHE-PLAINTEXT-52be01
# 6 MiB of the pattern (two blocks, uncompressed: --compress none), and
# 3 MiB of random bytes (one block).
yes "$PATTERN" | head -c 6291456 >"$T_DIR/text"
t_gen "$T_DIR/rand" 5 3
want_text=$(sha256sum <"$T_DIR/text")
want_rand=$(sha256sum <"$T_DIR/rand")
CACHE=$T_DIR/cache

# no_plain DIR WHAT: fail if a file under DIR holds the pattern, or any
# 32-byte window (one every 64 KiB) of the random file.
no_plain() {
	if grep -rqa "$PATTERN" "$1"; then
		t_fail "plaintext found under $1 ($2)"
	fi
	python3 - "$1" "$T_DIR/rand" <<'PY' || t_fail "random plaintext under $1 ($2)"
import os, sys
top, rand = sys.argv[1], open(sys.argv[2], "rb").read()
wins = [rand[i:i + 32] for i in range(100, len(rand) - 32, 65536)]
for d, _, names in os.walk(top):
    for n in names:
        data = open(os.path.join(d, n), "rb").read()
        if any(w in data for w in wins):
            sys.exit("%s holds plaintext" % os.path.join(d, n))
PY
}

# same WHAT: both files read back right.
same() {
	[ "$(sha256sum <"$MNT/text")" = "$want_text" ] || t_fail "text differs ($1)"
	[ "$(sha256sum <"$MNT/rand")" = "$want_rand" ] || t_fail "rand differs ($1)"
}

# store_away / store_back: move the volume's block objects away and back.
store_away() {
	mv "$CHUNKS" "$T_DIR/away"
	t_on_exit "[ -d '$T_DIR/away' ] && mv '$T_DIR/away' '$CHUNKS'"
}
store_back() { mv "$T_DIR/away" "$CHUNKS"; }

# hits_no_corrupt N WHAT: at least N cache hits, nothing corrupt.
hits_no_corrupt() {
	[ "$(t_stat cache_hits)" -ge "$1" ] ||
		t_fail "$(t_stat cache_hits) cache hits, wanted $1 ($2)"
	[ "$(t_stat cache_corrupt)" = 0 ] ||
		t_fail "$(t_stat cache_corrupt) corrupt cache files ($2)"
}

T_VOL=enc
CHUNKS=$TESSERA_HOME/$T_VOL/objects/$T_VOL/chunks
t_format --trash-days 0 --compress none --encrypt-key "$KEY"

# Written blocks go to the cache (encrypted); a reread is served by it.
t_mount --encrypt-key "$KEY" --cache-dir "$CACHE" --cache-size 1G --cache-large-write
cp "$T_DIR/text" "$MNT/text" || t_fail "cp text"
cp "$T_DIR/rand" "$MNT/rand" || t_fail "cp rand"
same "written"
t_umount
[ "$(t_cache_files raw)" = 3 ] || t_fail "$(t_cache_files raw) cached blocks"
no_plain "$CACHE" "after writing"
t_mount --encrypt-key "$KEY" --cache-dir "$CACHE" --cache-size 1G
store_away
same "from the cache"
hits_no_corrupt 3 "remount"
t_umount
store_back

# Blocks fetched from the store are cached encrypted too.
rm -rf "$CACHE"
t_mount --encrypt-key "$KEY" --cache-dir "$CACHE" --cache-size 1G
same "fetched"
t_umount
[ "$(t_cache_files raw)" = 3 ] || t_fail "fetched blocks not cached"
no_plain "$CACHE" "after reading"

# Warmup: the encrypted objects land in the cache and serve reads.
rm -rf "$CACHE"
t_mount --encrypt-key "$KEY" --cache-dir "$CACHE" --cache-size 1G
t_run 0 tessera warmup "$MNT"
t_grep '^2 files: 9.0 MiB of 9.0 MiB cached, 0 blocks failed$' "$T_OUT"
store_away
same "warmed up"
hits_no_corrupt 3 "warmup"
t_umount
store_back
no_plain "$CACHE" "after warmup"

# Write-back with the store refusing writes, then kill -9: the staged
# blocks hold no plaintext, and the next mount serves and uploads them.
rm -rf "$CACHE"
T_VOL=wb
CHUNKS=$TESSERA_HOME/$T_VOL/objects/$T_VOL/chunks
OBJ=$TESSERA_HOME/$T_VOL/objects/$T_VOL
t_format --trash-days 0 --compress none --encrypt-key "$KEY"
t_mount --encrypt-key "$KEY" --cache-dir "$CACHE" --cache-size 1G --writeback
mkdir -p "$OBJ"
touch "$CHUNKS" # block keys live under chunks/: the store refuses them
python3 - "$T_DIR" "$MNT" <<'PY' || t_fail "writes or fsync failed"
import os, sys
src, mnt = sys.argv[1], sys.argv[2]
for name in ("text", "rand"):
    fd = os.open(os.path.join(mnt, name), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, open(os.path.join(src, name), "rb").read())
    os.fsync(fd)
    os.close(fd)
PY
t_kill9
[ "$(t_cache_files staging)" = 3 ] ||
	t_fail "$(t_cache_files staging) staged blocks after kill -9"
[ "$(t_objects)" = 0 ] || t_fail "blocks reached the blocked store"
no_plain "$CACHE" "staged"
rm "$CHUNKS"
t_mount --encrypt-key "$KEY" --cache-dir "$CACHE" --cache-size 1G
same "staged, after kill -9"
for _ in $(seq 600); do
	[ "$(t_stat cache_staged)" = 0 ] && break
	sleep 0.1
done
[ "$(t_stat cache_staged)" = 0 ] || t_fail "staged blocks not uploaded"
hits_no_corrupt 3 "staged"
t_umount
[ "$(t_objects)" = 3 ] || t_fail "$(t_objects) objects uploaded, wanted 3"
[ "$(t_cache_files staging)" = 0 ] || t_fail "staging not emptied"
no_plain "$TESSERA_HOME/$T_VOL/objects" "uploaded objects"
no_plain "$CACHE" "uploaded"
# The store alone (no cache) has every byte, encrypted.
rm -rf "$CACHE"
t_mount --encrypt-key "$KEY" --cache-dir "$CACHE" --cache-size 0
same "from the store alone"
t_umount
exit 0
