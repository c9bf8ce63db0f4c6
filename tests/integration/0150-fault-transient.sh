#!/usr/bin/env bash
# Transient object-store faults are retried (DESIGN 7.4): with the fault
# layer failing 10% of all store calls, cutting 5% of GET bodies short and
# slowing 2% down by 300 ms (TESSERA_FAULT for the mount process), writing
# a large file through the mount and reading it back after a remount gives
# the exact bytes and no application error, and `tessera warmup` caches
# it all; the mount log shows the retries, and no block failed for good.
# Size: TESSERA_TEST_FAULT_SIZE (default 256M; passes at 1G).
# STORES: file s3
# TIMEOUT: 1200
. "$(dirname "$0")/../lib/mount.sh"

size=${TESSERA_TEST_FAULT_SIZE:-256M}
# A deterministic stream of $size bytes (AES-CTR over zeros).
stream() {
	openssl enc -aes-128-ctr -nosalt -pass pass:tessera-fault-0150 \
		-pbkdf2 -in /dev/zero 2>/dev/null | head -c "$size"
}
want=$(stream | sha256sum | cut -d' ' -f1)

t_format --trash-days 0
faults="err=0.1,trunc=0.05,delay_ms=300,delay=0.02"
TESSERA_FAULT="$faults,seed=11" t_mount # default disk cache
t_grep "injecting faults" "$T_DIR/mount.log"
stream | dd of="$MNT/big" bs=1M iflag=fullblock conv=fsync status=none ||
	t_fail "writing $size under faults failed"
# a few small files too: each is one slice and one object
for i in $(seq 20); do
	printf 'file %d\n' "$i" >"$MNT/small$i" || t_fail "small write $i"
done
t_umount

# read back from the store (fresh mount, no disk cache), other faults
TESSERA_FAULT="$faults,seed=12" t_mount --cache-size 0
got=$(sha256sum <"$MNT/big" | cut -d' ' -f1) || t_fail "reading back failed"
[ "$got" = "$want" ] || t_fail "sha256 differs: wrote $want, read $got"
for i in $(seq 20); do
	[ "$(cat "$MNT/small$i")" = "file $i" ] || t_fail "small file $i differs"
done
t_umount

# tessera warmup fetches into the disk cache with the same retries
TESSERA_FAULT="$faults,seed=13" t_mount --cache-dir "$T_DIR/cache" --cache-size 1G
t_run 0 tessera warmup "$MNT/big"
t_grep " cached, 0 blocks failed$" "$T_OUT"
cat "$T_OUT"
t_umount
if grep -E "cannot (read|upload|warm up) block '[^']*': " "$T_DIR/mount.log" |
	grep -v retrying; then
	t_fail "a block failed for good"
fi
# Faults were injected and retried (a few hundred calls at 10%: some
# certainly failed; which kind is chance, so the kinds are only counted;
# t_chunk tests each kind deterministically).
n() { grep -Ec "$1" "$T_DIR/mount.log"; }
cut='(length mismatch|truncated header)'
t_log "retried: $(n 'upload block.*retrying') uploads," \
	"$(n 'read block.*retrying') reads ($(n "read block.*$cut.*retrying") cut)," \
	"$(n 'warm up block.*retrying') warmup reads"
[ "$(n retrying)" -gt 0 ] || t_fail "nothing was retried: were faults injected?"
t_pass
