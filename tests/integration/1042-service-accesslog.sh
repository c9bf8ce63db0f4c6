#!/usr/bin/env bash
# .accesslog at the mount root streams one line per request while it is
# open: time, uid, gid, pid, operation, inode and names (or size and
# offset), result, seconds.  A known sequence of operations by a known
# process shows up as exactly those lines (mkdir OK with the mkdir's pid,
# a lookup of a missing name ENOENT, create, write with its size and
# offset, rename with both names); the log's own reads are not logged;
# only root may open it; it is not listed by readdir.  `tessera profile`
# sums a saved log per operation and reads a live mount for --count
# tables.
# TIMEOUT: 120
# SMOKE
. "$(dirname "$0")/../lib/mount.sh"
t_format --trash-days 0
t_mount -o allow_other
chmod 755 "$MNT"

cat "$MNT/.accesslog" >"$T_DIR/log" &
reader=$!
t_on_exit "kill $reader"
for _ in $(seq 100); do
	ls -l "/proc/$reader/fd" 2>/dev/null | grep -q accesslog && break
	sleep 0.1
done
ls -l "/proc/$reader/fd" | grep -q accesslog || t_fail "the reader never opened .accesslog"

sh -c 'echo $$ >"$1/mkdir.pid"; exec mkdir "$2/dir"' sh "$T_DIR" "$MNT" || t_fail "mkdir"
stat "$MNT/dir/missing" >/dev/null 2>&1 && t_fail "stat of a missing file worked"
printf 'hello' >"$MNT/dir/f"
mv "$MNT/dir/f" "$MNT/dir/g"
stat "$MNT/end-marker" >/dev/null 2>&1
for _ in $(seq 100); do grep -q '"end-marker"' "$T_DIR/log" && break; sleep 0.1; done
kill "$reader"
wait "$reader" 2>/dev/null
log=$T_DIR/log
grep -q '"end-marker"' "$log" || t_fail "the end marker never reached the log: $(tail -5 "$log")"

re='^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6} \[uid:[0-9]+,gid:[0-9]+,pid:[0-9]+\] [a-z_0-9]+ \([^)]*\): (OK|E[A-Z0-9]+) <[0-9]+\.[0-9]{6}>$'
bad=$(grep -v '^#' "$log" | grep -Evc "$re")
[ "$bad" = 0 ] || t_fail "$bad lines not in the format: $(grep -v '^#' "$log" | grep -Ev "$re" | head -3)"
pid=$(cat "$T_DIR/mkdir.pid")
grep -Eq "\[uid:0,gid:0,pid:$pid\] mkdir \(1,\"dir\"\): OK <" "$log" ||
	t_fail "no mkdir line with pid $pid: $(grep mkdir "$log")"
grep -Eq '\] lookup \([0-9]+,"missing"\): ENOENT <' "$log" || t_fail "no ENOENT lookup of 'missing'"
grep -Eq '\] create \([0-9]+,"f"\): OK <' "$log" || t_fail "no create of 'f'"
grep -Eq '\] write \([0-9]+,5,0\): OK <' "$log" || t_fail "no write of 5 bytes at 0"
grep -Eq '\] rename2? \([0-9]+,"f","g"\): OK <' "$log" || t_fail "no rename f -> g"
grep -q accesslog "$log" && t_fail "the log's own requests are logged"
[ "$(grep -c '\] mkdir (' "$log")" = 1 ] || t_fail "mkdir logged more than once"

# profile of the saved log: exact counts per operation
t_run 0 tessera profile "$log"
awk '$1 == "mkdir" { print $2, $4 }' "$T_OUT" | grep -qx '1 0' || t_fail "profile: mkdir count/errors: $(cat "$T_OUT")"
awk '$1 == "rename2" || $1 == "rename" { n += $2 } END { exit n != 1 }' "$T_OUT" || t_fail "profile: rename: $(cat "$T_OUT")"
awk '$1 == "lookup" { exit !($4 >= 2) }' "$T_OUT" || t_fail "profile: lookup errors: $(cat "$T_OUT")"

# profile of the live mount
(for i in $(seq 30); do echo "$i" >"$MNT/dir/p$i"; sleep 0.05; done) &
writer=$!
t_run 0 tessera profile "$MNT" --interval 0.5 --count 2
wait "$writer"
[ "$(grep -c '^op ' "$T_OUT")" = 2 ] || t_fail "profile --count 2: $(cat "$T_OUT")"

# root only; hidden from readdir
if id nobody >/dev/null 2>&1; then
	su -s /bin/sh nobody -c "cat $MNT/.accesslog" >/dev/null 2>&1 && t_fail "nobody read the access log"
fi
ls -a "$MNT" | grep -q accesslog && t_fail ".accesslog listed by readdir"
t_run 1 tessera profile "$T_DIR/no-such"
t_one_line_err
t_umount
t_pass
