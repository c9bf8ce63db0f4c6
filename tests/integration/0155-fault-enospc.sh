#!/usr/bin/env bash
# Full disks (small tmpfs): a full local store gives ENOSPC (not EIO) to
# write and fsync, leaks no object of the failed writes, keeps what was
# written before intact, and works again once space returns; a full disk
# cache and a full write-back staging area cost no error at all (blocks
# go to the store directly).
# TIMEOUT: 180
. "$(dirname "$0")/../lib/mount.sh"

FS=$T_DIR/small
mkdir -p "$FS"
mount -t tmpfs -o size=24m tmpfs "$FS" 2>/dev/null || t_skip "cannot mount a tmpfs"
t_on_exit "umount -l '$FS'"

write_fsync() { # write_fsync PATH MIB: prints the errno name, or OK
	python3 - "$1" "$2" <<'PY'
import errno, os, sys
path, mib = sys.argv[1], int(sys.argv[2])
try:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for _ in range(mib):
        os.write(fd, os.urandom(1 << 20))
    os.fsync(fd)
    os.close(fd)
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
PY
}

# 1. the store is full
mkdir -p "$FS/objs"
t_format --trash-days 0 --storage "file://$FS/objs/"
t_mount
[ "$(write_fsync "$MNT/a" 8)" = OK ] || t_fail "cannot write the first file"
sum_a=$(md5sum <"$MNT/a")
r=$(write_fsync "$MNT/b" 40)
[ "$r" = ENOSPC ] || t_fail "a full store gave $r, not ENOSPC"
[ "$(md5sum <"$MNT/a")" = "$sum_a" ] || t_fail "the first file changed"
rm -f "$MNT/b"
t_umount
t_run 0 env TESSERA_GC_MIN_AGE_S=1 "$TESSERA_BIN" gc "$T_VOL" --json
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d['leaked_objects'] != 0)" "$T_OUT" ||
	t_fail "the failed writes leaked objects: $(cat "$T_OUT")"
t_mount
for _ in $(seq 50); do # the deletion worker frees b's space
	[ "$(write_fsync "$MNT/c" 6)" = OK ] && break
	sleep 0.2
done
[ "$(write_fsync "$MNT/c" 6)" = OK ] || t_fail "no recovery once space returned"
[ "$(md5sum <"$MNT/a")" = "$sum_a" ] || t_fail "the first file changed after recovery"
t_umount
t_run 0 tessera fsck "$T_VOL"

# 2. the disk cache and the write-back staging area are full
T_VOL=vol2
rm -rf "${FS:?}/objs"
mkdir -p "$FS/cache"
t_format --trash-days 0
head -c 20m /dev/zero >"$FS/filler" 2>/dev/null # leave ~4 MiB
t_mount --cache-dir "$FS/cache" --cache-size 1G --free-space-ratio 0 \
	--writeback --cache-large-write
r=$(write_fsync "$MNT/big" 24)
[ "$r" = OK ] || t_fail "a full cache/staging disk gave $r"
sum=$(md5sum <"$MNT/big")
echo 3 >/proc/sys/vm/drop_caches
[ "$(md5sum <"$MNT/big")" = "$sum" ] || t_fail "data differs after a full staging area"
t_umount
rm -f "$FS/filler"
t_mount
[ "$(md5sum <"$MNT/big")" = "$sum" ] || t_fail "data differs after remount"
t_umount
t_run 0 tessera fsck "$T_VOL"
echo ok
