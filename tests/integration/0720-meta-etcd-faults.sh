#!/usr/bin/env bash
# etcd faults, on a private 3-member cluster this test starts (client ports
# 23821/23823/23825): nothing listening at mount ends `tessera mount` with
# one line and exit 1; with a mount writing, killing a member (the leader
# first, then another after the first is back) gives the application no
# error, and the data reads back afterwards.
# ENGINES: etcd
# TIMEOUT: 240
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/multi.sh"
[ "$T_ENGINE" = etcd ] || t_skip "runs with TESSERA_TEST_META_ENGINE=etcd"

ED=$T_DIR/etcd
cluster=e1=http://127.0.0.1:23822,e2=http://127.0.0.1:23824,e3=http://127.0.0.1:23826
start_member() {
	local n=$1 c=$((23819 + 2 * $1)) p=$((23820 + 2 * $1))
	etcd --name e$n --data-dir "$ED/e$n" \
		--listen-client-urls http://127.0.0.1:$c --advertise-client-urls http://127.0.0.1:$c \
		--listen-peer-urls http://127.0.0.1:$p --initial-advertise-peer-urls http://127.0.0.1:$p \
		--initial-cluster "$cluster" --initial-cluster-state new \
		--initial-cluster-token t0720 >>"$ED/e$n.log" 2>&1 </dev/null &
	echo $! >"$ED/e$n.pid"
}
stop_all() { for n in 1 2 3; do [ -f "$ED/e$n.pid" ] && kill "$(cat "$ED/e$n.pid")" 2>/dev/null; done; }
URL=etcd://127.0.0.1:23821,127.0.0.1:23823,127.0.0.1:23825/t0720

# nothing listens: one line, exit 1
mkdir -p "$T_DIR/m9" "$ED"
t_run 1 tessera mount "$URL" "$T_DIR/m9"
t_one_line_err
t_grep "127.0.0.1:23821" "$T_ERR"

for n in 1 2 3; do start_member $n; done
t_on_exit stop_all
for _ in $(seq 100); do
	curl -s -m 1 http://127.0.0.1:23821/health | grep -q true && break
	sleep 0.1
done
T_META=$URL
t_format
t_mount_n 1
M=$(t_mnt 1)

leader() {
	ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:23821,127.0.0.1:23823,127.0.0.1:23825 \
		endpoint status -w simple 2>/dev/null | awk -F', ' '$5 == "true" {print $1}' | head -n 1
}
python3 - "$M" "$T_DIR/stop" <<'PY' &
import os, sys
d, stop = sys.argv[1:3]
i = 0
while not os.path.exists(stop) or i < 50:
    with open(os.path.join(d, "f%d" % i), "wb") as f:
        f.write(b"x%d" % i * 100)
        os.fsync(f.fileno())
    os.rename(os.path.join(d, "f%d" % i), os.path.join(d, "g%d" % i))
    i += 1
open(stop + ".n", "w").write(str(i))
PY
writer=$!
sleep 1
for round in 1 2; do
	l=$(leader)
	[ -n "$l" ] || t_fail "no leader found"
	port=${l##*:}
	n=$(( (port - 23819) / 2 ))
	[ $round = 2 ] && n=$(( n % 3 + 1 )) # a follower the second time
	t_log "round $round: killing member e$n (leader $l)"
	kill -9 "$(cat "$ED/e$n.pid")"
	sleep 3
	etcd --name e$n --data-dir "$ED/e$n" \
		--listen-client-urls http://127.0.0.1:$((23819 + 2 * n)) --advertise-client-urls http://127.0.0.1:$((23819 + 2 * n)) \
		--listen-peer-urls http://127.0.0.1:$((23820 + 2 * n)) --initial-advertise-peer-urls http://127.0.0.1:$((23820 + 2 * n)) \
		--initial-cluster "$cluster" >>"$ED/e$n.log" 2>&1 </dev/null &
	echo $! >"$ED/e$n.pid"
	sleep 2
done
touch "$T_DIR/stop"
wait $writer || t_fail "the writer got an error while members were killed"
cnt=$(cat "$T_DIR/stop.n")
t_log "$cnt files written across two member kills"
for i in $(seq 0 $((cnt - 1))); do
	[ "$(cat "$M/g$i")" = "$(python3 -c "print(('x%d' % $i) * 100, end='')")" ] ||
		t_fail "g$i reads back wrong"
done
[ "$(ls "$M" | wc -l)" = "$cnt" ] || t_fail "$(ls "$M" | wc -l) names, wanted $cnt"
t_umount_n 1
t_pass
