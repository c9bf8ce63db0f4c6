#!/usr/bin/env bash
# A directory of 50,000 entries is listed completely, exactly once each,
# also while entries are removed during the listing; after a remount too.
# STORES: file s3
# ENGINES: sqlite redis pg
# TIMEOUT: 600
. "$(dirname "$0")/../lib/mount.sh"

n=${TESSERA_TEST_BIGDIR:-50000}
t_format --trash-days 0
t_mount

python3 - "$MNT/big" "$n" <<'PY' || t_fail "big directory"
import os, sys

d, n = sys.argv[1], int(sys.argv[2])
os.mkdir(d)
for i in range(n):
    os.close(os.open(os.path.join(d, "entry-%06d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
names = os.listdir(d)
assert len(names) == n, "listdir gave %d of %d" % (len(names), n)
assert set(names) == {"entry-%06d" % i for i in range(n)}, "wrong names"
# scandir with d_type, while deleting every other entry as we go
seen = 0
with os.scandir(d) as it:
    for e in it:
        assert e.is_file(follow_symlinks=False), e.name
        seen += 1
        if seen % 2 == 0:
            os.unlink(e.path)
assert seen == n, "scandir saw %d of %d while deleting" % (seen, n)
assert len(os.listdir(d)) == n - n // 2
print("ok")
PY
t_umount
t_mount
[ "$(ls -f "$MNT/big" | grep -c '^entry-')" = $((n - n / 2)) ] ||
	t_fail "wrong count after remount"
t_umount
