#!/usr/bin/env bash
# tests/lib/outage.sh - a metadata outage seen by an application (sourced
# after mount.sh by the 07xx outage tests):
#
#   t_outage_eio DIR DOWN-CMD    start a writer (write + fsync + close of
#                                100 KB files in DIR, in a loop), run
#                                DOWN-CMD once it is writing, then require
#                                that it stops with EIO within 120 s
#   t_outage_back DIR            after the server is back: a new write in
#                                DIR succeeds within 30 s and reads back

t_outage_eio() {
	local dir=$1 down=$2 writer t0
	rm -f "$T_DIR/go" "$T_DIR/result"
	python3 - "$dir" "$T_DIR/go" "$T_DIR/result" <<'PY' &
import errno, os, sys, time
d, go, result = sys.argv[1:4]
i = 0
out = "no error"
while i < 100000:
    try:
        with open(os.path.join(d, "w%d" % i), "wb") as f:
            f.write(os.urandom(100000))
            os.fsync(f.fileno())
        i += 1
        if not os.path.exists(go):
            open(go, "w").close()
    except OSError as e:
        out = errno.errorcode.get(e.errno, str(e.errno))
        break
    time.sleep(0.05)
open(result, "w").write(out)
PY
	writer=$!
	for _ in $(seq 100); do [ -e "$T_DIR/go" ] && break; sleep 0.1; done
	[ -e "$T_DIR/go" ] || t_fail "the writer did not start"
	eval "$down"
	t0=$(date +%s.%N)
	for _ in $(seq 1200); do
		kill -0 $writer 2>/dev/null || break
		sleep 0.1
	done
	kill -0 $writer 2>/dev/null &&
		t_fail "the writer hangs with the metadata server down"
	wait $writer
	[ "$(cat "$T_DIR/result")" = EIO ] ||
		t_fail "writer got '$(cat "$T_DIR/result")', not EIO"
	t_log "writer got EIO $(echo "$(date +%s.%N) - $t0" | bc) s after: $down"
	ls "$dir" >/dev/null 2>&1 && t_fail "listing works with the server down?"
	return 0
}

t_outage_back() {
	local dir=$1 t0 ok=
	t0=$(date +%s.%N)
	for _ in $(seq 150); do
		if echo after >"$dir/after" 2>/dev/null; then
			ok=1
			break
		fi
		sleep 0.2
	done
	[ -n "$ok" ] || t_fail "no write succeeds after the server came back"
	t_log "a new write succeeded $(echo "$(date +%s.%N) - $t0" | bc) s after it came back"
	[ "$(cat "$dir/after")" = after ] || t_fail "read after the outage"
	ls "$dir" | grep -qx after || t_fail "listing after the outage"
	rm "$dir/after" || t_fail "unlink after the outage"
}
