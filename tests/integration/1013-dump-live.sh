#!/usr/bin/env bash
# A dump of a mounted volume is one consistent state while a writer keeps
# creating, linking, renaming and removing files: each dump passes load's
# checks (every entry names an inode of the dump with its type, every
# chunk a file of the dump, the counters above every id), which a dump
# read in pieces at different times would fail.  Redis has no snapshots:
# its dump is written again when the volume changed meanwhile, and may
# give up with one line saying so; it never writes an inconsistent one.
# ENGINES: sqlite redis pg
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

t_format --trash-days 0
t_mount
mkdir -p "$MNT/w"
python3 - "$MNT/w" "$T_DIR/stop" <<'EOF' &
import os, sys
root, stop = sys.argv[1], sys.argv[2]
i = 0
while not os.path.exists(stop):
    d = os.path.join(root, "d%d" % (i % 8))
    os.makedirs(d, exist_ok=True)
    f = os.path.join(d, "f%d" % i)
    with open(f, "wb") as fh:
        fh.write(b"x" * (i % 5000 + 1))
    os.link(f, f + ".l")
    os.rename(f, os.path.join(root, "d%d" % ((i + 3) % 8), "r%d" % i)) \
        if os.path.isdir(os.path.join(root, "d%d" % ((i + 3) % 8))) else None
    if i >= 20:
        for n in ("f%d.l" % (i - 20),):
            try:
                os.unlink(os.path.join(root, "d%d" % ((i - 20) % 8), n))
            except FileNotFoundError:
                pass
    i += 1
EOF
WRITER=$!
t_on_exit "touch '$T_DIR/stop'; kill $WRITER"
for _ in $(seq 100); do
	[ "$(find "$MNT/w" | wc -l)" -gt 10 ] && break
	sleep 0.2
done
before=$(find "$MNT/w" | wc -l)
[ "$before" -gt 10 ] || t_fail "the writer does not write"
ok=0
for i in 1 2 3; do
	if tessera dump "$(t_vol)" "$T_DIR/live$i.json" >"$T_OUT" 2>"$T_ERR"; then
		t_run 0 tessera load --quiet "sqlite3://$T_DIR/live$i.db" \
			"$T_DIR/live$i.json"
		ok=$((ok + 1))
	else
		[ "$T_ENGINE" = redis ] || t_fail "dump $i failed: $(cat "$T_ERR")"
		t_grep "kept changing" "$T_ERR"
	fi
done
after=$(find "$MNT/w" | wc -l)
touch "$T_DIR/stop"
wait "$WRITER" || t_fail "the writer failed"
[ "$T_ENGINE" = redis ] || [ "$ok" = 3 ] || t_fail "only $ok dumps"
t_log "$ok dumps taken, $before -> $after paths meanwhile"
# the writer did run during the dumps
[ "$after" != "$before" ] || t_fail "the writer stood still during the dumps"
t_umount
t_pass
