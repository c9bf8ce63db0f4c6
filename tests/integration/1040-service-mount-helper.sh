#!/usr/bin/env bash
# mount(8), fstab and umount(8) through the helper links make install
# puts in /sbin (mount.tessera, umount.fuse.tessera): `mount -t tessera`
# with tessera options as -o name=value, generic fstab options dropped,
# home=DIR for TESSERA_HOME; the options reach the daemon (.config);
# `mount -T FSTAB -a`; plain umount(8) flushes and waits for the mount
# process like `tessera umount`.  Bad input (an unknown -o option, a
# tessera option without its value, a missing volume in fstab) gives one
# line, a non-zero exit and nothing mounted.  `make install DESTDIR=`
# installs the binary, the helper links, a man page per command and a
# systemd unit that `systemd-analyze verify` accepts.
# TIMEOUT: 180
. "$(dirname "$0")/../lib/mount.sh"
t_require_fuse
command -v mount >/dev/null || t_skip "no mount(8)"
[ "$(id -u)" = 0 ] || t_skip "needs root (mount(8) helpers in /sbin)"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}

# The helpers point at the binary under test for this test only.
for h in mount.tessera umount.fuse.tessera; do
	if [ -e "/sbin/$h" ] || [ -L "/sbin/$h" ]; then
		mv "/sbin/$h" "$T_DIR/saved.$h"
		t_on_exit "mv -f '$T_DIR/saved.$h' '/sbin/$h'"
	else
		t_on_exit "rm -f '/sbin/$h'"
	fi
	ln -s "$TESSERA_BIN" "/sbin/$h"
done

t_format --trash-days 0
home=$TESSERA_HOME
mounted() { grep -q " $MNT fuse.tessera " /proc/mounts; }
mount_pid() { sed -n 's/^pid //p' "$MNT/.stats"; }

# mount -t tessera, TESSERA_HOME only through home=
env -u TESSERA_HOME mount -t tessera "$T_VOL" "$MNT" \
	-o "home=$home,cache-size=123M,cache_dir=$T_DIR/cache,writeback,_netdev,nofail,noauto,x-systemd.requires=x.service,defaults,allow_other,noatime" ||
	t_fail "mount -t tessera failed"
mounted || t_fail "not mounted after mount -t tessera"
t_grep "^cache_size 128974848$" "$MNT/.config"
t_grep "^cache_dir $T_DIR/cache/" "$MNT/.config"
t_grep "^writeback 1$" "$MNT/.config"
t_grep "^atime noatime$" "$MNT/.config"
grep " $MNT " /proc/mounts | grep -q allow_other || t_fail "allow_other did not reach the kernel"
grep " $MNT " /proc/mounts | grep -q _netdev && t_fail "_netdev reached the kernel"
pid=$(mount_pid)
[ -n "$pid" ] || t_fail "no pid in .stats"
head -c 16M /dev/urandom >"$T_DIR/data"
cp "$T_DIR/data" "$MNT/data"
# umount(8): runs umount.fuse.tessera, which waits for the process
umount "$MNT" || t_fail "umount(8) failed"
mounted && t_fail "still mounted after umount(8)"
# (a daemon's parent is init, which may reap it later: a zombie is gone)
state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)
[ -z "$state" ] || [ "$state" = Z ] ||
	t_fail "mount process $pid still running ($state) after umount(8) returned"

# fstab: options through the fifth field, mount -a, then umount(8)
cat >"$T_DIR/fstab" <<EOT
# a comment
$T_VOL $MNT tessera home=$home,_netdev,allow_other,max-uploads=7,read-only 0 0
EOT
mount -T "$T_DIR/fstab" -a || t_fail "mount -T fstab -a failed"
mounted || t_fail "not mounted by mount -a"
t_grep "^max_uploads 7$" "$MNT/.config"
t_grep "^read_only 1$" "$MNT/.config"
cmp "$T_DIR/data" "$MNT/data" || t_fail "data written before umount(8) differs"
umount "$MNT" || t_fail "umount(8) of the fstab mount failed"
mounted && t_fail "still mounted after the second umount(8)"

# bad input: one line, non-zero, nothing mounted
t_run 1 mount -t tessera -o "home=$home,bogus_option" "$T_VOL" "$MNT"
t_one_line_err
t_grep "unknown option.*bogus_option" "$T_ERR"
t_run 1 mount -t tessera -o "home=$home,cache-size" "$T_VOL" "$MNT"
t_one_line_err
t_grep "cache-size.*needs a value" "$T_ERR"
mounted && t_fail "mounted despite bad options"
echo "nosuchvol $MNT tessera home=$home,_netdev 0 0" >"$T_DIR/fstab2"
mount -T "$T_DIR/fstab2" -a >"$T_OUT" 2>"$T_ERR" && t_fail "mount -a of a missing volume succeeded"
t_one_line_err
t_grep "nosuchvol.*does not exist" "$T_ERR"
mounted && t_fail "mounted a missing volume"

# make install: binary, helper links, man pages, systemd unit
inst=$T_DIR/inst
make -s -C "$ROOT" BUILD="$BUILD" install DESTDIR="$inst" PREFIX=/usr/local \
	>"$T_DIR/install.log" 2>&1 || t_fail "make install: $(tail -3 "$T_DIR/install.log")"
[ -x "$inst/usr/local/bin/tessera" ] || t_fail "no binary installed"
for h in mount.tessera umount.fuse.tessera; do
	[ "$(readlink "$inst/sbin/$h")" = /usr/local/bin/tessera ] ||
		t_fail "/sbin/$h does not link to /usr/local/bin/tessera"
done
for c in $("$TESSERA_BIN" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }'); do
	f=$inst/usr/local/share/man/man1/tessera-$c.1
	[ -s "$f" ] || t_fail "no man page tessera-$c.1"
	grep -q "^tessera\\\\-$c \\\\- " "$f" || t_fail "tessera-$c.1 has no NAME line"
done
[ -s "$inst/usr/local/share/man/man1/tessera.1" ] || t_fail "no tessera.1"
if command -v man >/dev/null; then
	MANWIDTH=80 man -l "$inst/usr/local/share/man/man1/tessera-fsck.1" 2>&1 |
		grep -q -- "--verify" || t_fail "man tessera-fsck does not render --verify"
fi
unit=$inst/etc/systemd/system/tessera@.service
[ -s "$unit" ] || t_fail "no systemd unit installed"
grep -q "^ExecStart=/usr/local/bin/tessera mount " "$unit" || t_fail "unit ExecStart"
if command -v systemd-analyze >/dev/null; then
	# verify the unit as installed, its binary path pointed at this build
	mkdir -p "$T_DIR/units"
	sed "s|/usr/local/bin/tessera|$TESSERA_BIN|g" "$unit" >"$T_DIR/units/tessera@.service"
	systemd-analyze verify --man=no "$T_DIR/units/tessera@vol.service" \
		>"$T_DIR/verify.log" 2>&1 || t_fail "systemd-analyze verify: $(cat "$T_DIR/verify.log")"
	[ -s "$T_DIR/verify.log" ] && t_fail "systemd-analyze verify warns: $(cat "$T_DIR/verify.log")"
fi
t_pass
