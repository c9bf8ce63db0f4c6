#!/usr/bin/env bash
# Prometheus metrics of a mount (--metrics ADDR) and `tessera stats`:
# /metrics passes `promtool check metrics` and has at least 20 tessera_*
# series with HELP and TYPE; a 16 MiB write + fsync moves the right
# series (application bytes, object PUTs and bytes up, FUSE write count
# and latency histogram, metadata transactions) by at least what was
# written.  Without --metrics the default 127.0.0.1:9567 moves to the
# next free port when taken; an address given that is taken, or a bad
# one, fails the mount with one line and nothing mounted; --no-metrics
# serves nothing.  `tessera stats --count 2` prints a header and two
# lines; --json two JSON objects.
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"
command -v curl >/dev/null || t_skip "no curl"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
metric() { # metric FILE 'name{labels}': its value (0 when absent)
	awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }' "$1"
}

t_format --trash-days 0
port=$(free_port)
t_mount --metrics "127.0.0.1:$port"
t_grep "^metrics_addr 127.0.0.1:$port$" "$MNT/.stats"
curl -sf "http://127.0.0.1:$port/metrics" >"$T_DIR/m1" || t_fail "GET /metrics failed"
head -c 16M /dev/urandom >"$T_DIR/data"
dd if="$T_DIR/data" of="$MNT/f" bs=1M conv=fsync status=none || t_fail "write"
curl -sf "http://127.0.0.1:$port/metrics" >"$T_DIR/m2" || t_fail "second GET /metrics failed"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nothing")
[ "$code" = 404 ] || t_fail "GET /nothing answered $code, want 404"

if command -v promtool >/dev/null; then
	for m in m1 m2; do
		promtool check metrics <"$T_DIR/$m" >"$T_DIR/promtool.log" 2>&1 ||
			t_fail "promtool check metrics ($m): $(head -5 "$T_DIR/promtool.log")"
	done
else
	t_log "no promtool (Debian package prometheus): format not linted"
fi
n=$(grep -c '^# TYPE tessera_' "$T_DIR/m2")
h=$(grep -c '^# HELP tessera_' "$T_DIR/m2")
[ "$n" -ge 20 ] && [ "$h" -eq "$n" ] || t_fail "$n TYPE and $h HELP lines, want >= 20 of each"
for want in tessera_fuse_op_duration_seconds tessera_object_request_duration_seconds \
	tessera_cache_hits_total tessera_cache_misses_total tessera_cache_bytes \
	tessera_cache_evictions_total tessera_buffer_bytes tessera_meta_conflicts_total \
	tessera_meta_transactions_total tessera_object_retries_total \
	tessera_uploads_pending tessera_replication_lag_seconds \
	tessera_replication_segments_total; do
	grep -q "^# TYPE $want " "$T_DIR/m2" || t_fail "no series $want"
done
moved() { # moved NAME MIN: the series grew by at least MIN
	local a b
	a=$(metric "$T_DIR/m1" "$1")
	b=$(metric "$T_DIR/m2" "$1")
	awk -v a="$a" -v b="$b" -v m="$2" 'BEGIN { exit !(b - a >= m) }' ||
		t_fail "$1 went from $a to $b, want +$2"
}
moved tessera_write_bytes_total 16777216
moved 'tessera_object_bytes_total{direction="up"}' 16777216
moved 'tessera_object_requests_total{method="PUT",result="ok"}' 4
moved 'tessera_fuse_ops_total{op="write"}' 1
moved 'tessera_fuse_op_duration_seconds_count{op="write"}' 1
moved 'tessera_fuse_ops_total{op="fsync"}' 1
moved tessera_meta_transactions_total 1
[ "$(metric "$T_DIR/m2" 'tessera_object_requests_total{method="PUT",result="error"}')" = 0 ] ||
	t_fail "PUT errors counted on a healthy store"

# tessera stats
t_run 0 tessera stats "$MNT" --count 2 --interval 0.2
[ "$(wc -l <"$T_OUT")" = 3 ] || t_fail "stats --count 2: $(cat "$T_OUT")"
head -1 "$T_OUT" | grep -q 'ops/s' || t_fail "no header: $(head -1 "$T_OUT")"
t_run 0 tessera stats "$MNT" --count 2 --interval 0.2 --json
python3 - "$T_OUT" <<'PY' || t_fail "stats --json: $(cat "$T_OUT")"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 2, lines
for l in lines:
    d = json.loads(l)
    for k in ("ops", "read_Bps", "write_Bps", "object_puts", "cache_hit_pct", "uploads_pending"):
        assert k in d, k
    assert d["ops"] > 0, d  # reading .stats itself is FUSE requests
PY
t_run 1 tessera stats "$T_DIR"
t_one_line_err
t_run 2 tessera stats "$MNT" --count 0
t_umount

# an address given and taken: one line, nothing mounted
# (SO_REUSEADDR: the port may still have connections in TIME_WAIT)
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); print("up", flush=True); time.sleep(60)' "$port" >"$T_DIR/holder" &
holder=$!
t_on_exit "kill $holder"
for _ in $(seq 50); do grep -q up "$T_DIR/holder" && break; sleep 0.1; done
grep -q up "$T_DIR/holder" || t_fail "cannot hold port $port for the test"
t_run 1 tessera mount "$(t_vol)" "$MNT" --metrics "127.0.0.1:$port"
t_one_line_err
t_grep "in use" "$T_ERR"
t_is_mounted && t_fail "mounted although the metrics address is taken"
t_run 1 tessera mount "$(t_vol)" "$MNT" --metrics "127.0.0.1:99999"
t_one_line_err
t_is_mounted && t_fail "mounted with a bad metrics address"
# the default address moves on when taken
python3 -c 'import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 9567)); s.listen(1); print("up", flush=True); time.sleep(60)' >"$T_DIR/holder2" 2>/dev/null &
holder2=$!
t_on_exit "kill $holder2"
# (when something else holds 9567 already, the mount must move on anyway)
for _ in $(seq 20); do grep -q up "$T_DIR/holder2" && break; sleep 0.1; done
t_mount
addr=$(sed -n 's/^metrics_addr //p' "$MNT/.stats")
[ -n "$addr" ] && [ "$addr" != off ] && [ "$addr" != 127.0.0.1:9567 ] ||
	t_fail "default metrics address with 9567 taken: '$addr'"
curl -sf "http://$addr/metrics" | grep -q '^tessera_build_info' || t_fail "nothing served on $addr"
t_umount
t_mount --no-metrics
t_grep "^metrics_addr off$" "$MNT/.stats"
t_umount
t_pass
