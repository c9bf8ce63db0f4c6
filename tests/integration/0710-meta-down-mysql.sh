#!/usr/bin/env bash
# MariaDB metadata server outages, through a TCP proxy the test cuts and
# restores (tests/lib/tcpproxy.py, port TESSERA_TEST_MYSQL_PROXY_PORT,
# default 5491): unreachable at mount and a wrong password end `tessera
# mount` with one line and exit 1 (password masked, also when it comes from
# TESSERA_META_PASSWORD); the password from TESSERA_META_PASSWORD works;
# the server dropping every connection (a restart) is not even seen by an
# application; cut while an application writes, it gets EIO, not a hang;
# restored, the same mount works again and the data written before is
# intact; the same when the proxy stalls (the server hangs).
# ENGINES: mysql
# TIMEOUT: 300
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/multi.sh"
. "$(dirname "$0")/../lib/outage.sh"
[ "$T_ENGINE" = mysql ] || t_skip "runs with TESSERA_TEST_META_ENGINE=mysql"

pport=${TESSERA_TEST_MYSQL_PROXY_PORT:-5491}
case "$T_META" in
mysql://*:*@*:[0-9]*/*) ;;
*) t_skip "cannot place a proxy in '$T_META'" ;;
esac
hostport=${T_META#*@}
hostport=${hostport%%/*}
db=${T_META##*/}
userpass=${T_META#mysql://}
userpass=${userpass%%@*}
PROXIED=${T_META/@$hostport\//@127.0.0.1:$pport/}
WRONG=$(echo "$T_META" | sed 's|://\([^:]*\):[^@]*@|://\1:wrong-pass@|')
NOPASS=$(echo "$T_META" | sed 's|://\([^:]*\):[^@]*@|://\1@|')
my() {
	mariadb --no-defaults -h "${hostport%:*}" -P "${hostport##*:}" \
		-u "${userpass%%:*}" -p"${userpass#*:}" -N -e "$1"
}

# nothing listens: one line, exit 1
mkdir -p "$T_DIR/m9"
t_run 1 tessera mount "$PROXIED" "$T_DIR/m9"
t_one_line_err
t_grep "127.0.0.1:$pport" "$T_ERR"

t_format
# wrong password: one line, exit 1, the password never shown
t_run 1 tessera mount "$WRONG" "$T_DIR/m9"
t_one_line_err
t_grep "Access denied" "$T_ERR"
! grep -q "wrong-pass" "$T_ERR" || t_fail "the password in the message"
# the same from the environment
TESSERA_META_PASSWORD=wrong-pass t_run 1 tessera status "$NOPASS"
t_one_line_err
t_grep "Access denied" "$T_ERR"
! grep -q "wrong-pass" "$T_ERR" || t_fail "the password in the message"
# the right one from the environment
TESSERA_META_PASSWORD=${userpass#*:} t_run 0 tessera status "$NOPASS"

python3 "$(dirname "$0")/../lib/tcpproxy.py" "$pport" "${hostport%:*}" \
	"${hostport##*:}" "$T_DIR/proxy" 2>"$T_DIR/proxy.log" &
proxy=$!
t_on_exit "kill $proxy"
wait_proxy() {
	for _ in $(seq 100); do
		[ "$(cat "$T_DIR/proxy" 2>/dev/null)" = "$1" ] && return 0
		sleep 0.1
	done
	t_fail "the proxy is not $1"
}
wait_proxy up

T_META=$PROXIED
t_mount_n 1 --heartbeat 1
M=$(t_mnt 1)
head -c 3000000 /dev/urandom >"$T_DIR/before"
cp "$T_DIR/before" "$M/before" || t_fail "write before the outage"

# the server drops every connection (as a restart does): nobody notices
for i in 1 2 3; do
	ids=$(my "SELECT id FROM information_schema.processlist WHERE db = '$db' AND id <> CONNECTION_ID()")
	[ -n "$ids" ] || t_fail "no server connections of the mount"
	for id in $ids; do my "KILL CONNECTION $id" 2>/dev/null; done
	echo "after kill $i" >"$M/k$i" || t_fail "write after the server dropped the connections"
	[ "$(cat "$M/k$i")" = "after kill $i" ] || t_fail "read after the kill"
done

t_outage_eio "$M" 'kill -USR1 $proxy; wait_proxy down'
kill -USR2 $proxy
wait_proxy up
t_outage_back "$M"
cmp "$T_DIR/before" "$M/before" || t_fail "data from before the outage"
# a server that hangs instead of refusing: EIO after timeouts
t_outage_eio "$M" 'kill -HUP $proxy; wait_proxy stalled'
kill -HUP $proxy
wait_proxy up
t_outage_back "$M"
cmp "$T_DIR/before" "$M/before" || t_fail "data from before the stall"
t_umount_n 1
t_pass
