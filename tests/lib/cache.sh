#!/usr/bin/env bash
# tests/lib/cache.sh - helpers for disk cache tests (sourced after mount.sh).
#   t_cache_bytes [DIR]   bytes of the files under DIR (default $T_DIR/cache)
#   t_stat NAME           a counter of the mount's .stats
#   t_cache_files SUB     files under <cache dir>/<uuid>/SUB (raw, staging)
#   t_gen PATH SEED MIB   write MIB MiB of bytes derived from SEED to PATH
t_cache_bytes() {
	find "${1:-$T_DIR/cache}" -type f -printf '%s\n' 2>/dev/null |
		awk '{ s += $1 } END { print s + 0 }'
}

t_stat() {
	awk -v k="$1" '$1 == k { print $2 }' "$MNT/.stats"
}

t_cache_files() {
	find "$T_DIR"/cache/*/"$1" -type f 2>/dev/null | wc -l
}

t_gen() {
	python3 - "$1" "$2" "$3" <<'PY'
import random, sys
path, seed, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed)
with open(path, "wb") as f:
    for _ in range(mib):
        f.write(r.randbytes(1 << 20))
PY
}
