#!/usr/bin/env bash
# Redis metadata server outages, on a private redis-server (port
# TESSERA_TEST_REDIS_PORT, default 6390, append-only file in $T_DIR):
# unreachable at mount and a wrong password end `tessera mount` with one
# line and exit 1 (password masked); stopped while an application writes,
# the application gets EIO, not a hang; restarted, the same mount works
# again (new writes, reads, listing) and the data written before is intact;
# the same when the server hangs (SIGSTOP) instead of refusing connections.
# ENGINES: redis
# TIMEOUT: 300
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/multi.sh"
. "$(dirname "$0")/../lib/outage.sh"
[ "$T_ENGINE" = redis ] || t_skip "runs with TESSERA_TEST_META_ENGINE=redis"
command -v redis-server >/dev/null || t_skip "no redis-server"

port=${TESSERA_TEST_REDIS_PORT:-6390}
pass=s3cret-pass
rdir=$T_DIR/redis
mkdir -p "$rdir"
redis-cli -p "$port" ping >/dev/null 2>&1 && t_skip "port $port is taken"

rstart() {
	redis-server --port "$port" --bind 127.0.0.1 --dir "$rdir" \
		--requirepass "$pass" --save "" --appendonly yes \
		--appendfsync always --daemonize yes \
		--pidfile "$rdir/redis.pid" --logfile "$rdir/redis.log" ||
		t_fail "cannot start redis-server on port $port"
	for _ in $(seq 50); do
		redis-cli -p "$port" -a "$pass" --no-auth-warning ping 2>/dev/null |
			grep -q PONG && return 0
		sleep 0.1
	done
	t_fail "redis-server on port $port did not start"
}
rstop() {
	redis-cli -p "$port" -a "$pass" --no-auth-warning shutdown >/dev/null 2>&1
	for _ in $(seq 50); do
		redis-cli -p "$port" ping >/dev/null 2>&1 || return 0
		sleep 0.1
	done
	t_fail "redis-server on port $port did not stop"
}
t_on_exit "[ -s '$rdir/redis.pid' ] && kill \$(cat '$rdir/redis.pid')"

# nothing listens: one line, exit 1
mkdir -p "$T_DIR/m9"
t_run 1 tessera mount "redis://127.0.0.1:$port/0" "$T_DIR/m9"
t_one_line_err
t_grep "127.0.0.1:$port" "$T_ERR"

rstart
T_META="redis://:$pass@127.0.0.1:$port/0"
t_format
# wrong password: one line, exit 1, the password never shown
t_run 1 tessera mount "redis://:wrong-pass@127.0.0.1:$port/0" "$T_DIR/m9"
t_one_line_err
t_grep "auth" "$T_ERR"
! grep -q "wrong-pass\|$pass" "$T_ERR" || t_fail "a password in the message"
t_run 1 tessera status "redis://:wrong-pass@127.0.0.1:$port/0"
t_one_line_err

t_mount_n 1 --heartbeat 1
M=$(t_mnt 1)
head -c 3000000 /dev/urandom >"$T_DIR/before"
cp "$T_DIR/before" "$M/before" || t_fail "write before the outage"

t_outage_eio "$M" rstop
rstart
t_outage_back "$M"
cmp "$T_DIR/before" "$M/before" || t_fail "data from before the outage"
# a server that hangs (SIGSTOP) instead of refusing: EIO after timeouts
t_outage_eio "$M" 'kill -STOP $(cat "$rdir/redis.pid")'
kill -CONT "$(cat "$rdir/redis.pid")"
t_outage_back "$M"
cmp "$T_DIR/before" "$M/before" || t_fail "data from before the stall"
t_umount_n 1
t_pass
