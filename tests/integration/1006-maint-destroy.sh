#!/usr/bin/env bash
# tessera destroy: refused while mounted and with a wrong UUID (nothing
# deleted); then every object of the volume (blocks, replicated metadata,
# checkpoints, lease) and its metadata go, and the volume is unknown.
# STORES: file s3
# TIMEOUT: 120
. "$(dirname "$0")/../lib/mount.sh"

# every key of the volume in its store
all_keys() {
	if [ -n "$T_S3_URL" ]; then
		python3 "$T_S3OBJ" ls "$T_S3_URL" "$T_VOL/" | cut -d' ' -f2
	else
		(cd "$TESSERA_HOME/$T_VOL/objects" 2>/dev/null &&
			find "$T_VOL" -type f | sort)
	fi
}

t_format
t_mount
python3 -c "import os; open('$MNT/big', 'wb').write(os.urandom(3 << 20))"
echo small >"$MNT/small"
sync
t_run 0 tessera checkpoint create "$T_VOL" c1
uuid=$(tessera status "$T_VOL" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['uuid'])")
n0=$(all_keys | wc -l)
all_keys | grep -q "^$T_VOL/meta/" || t_fail "no replicated metadata objects"
[ "$(t_objects)" -ge 2 ] || t_fail "no block objects"

t_run 1 tessera destroy "$T_VOL" "$uuid"
t_one_line_err
t_grep "mounted" "$T_ERR"
t_umount

t_run 1 tessera destroy "$T_VOL" 00000000-0000-4000-8000-000000000000
t_one_line_err
t_grep "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" "$T_ERR"
t_run 1 tessera destroy "$T_VOL" "${uuid:0:8}"
t_one_line_err
[ "$(all_keys | wc -l)" -ge "$n0" ] || t_fail "a refused destroy deleted objects"
t_run 0 tessera status "$T_VOL"

t_run 0 tessera destroy "$T_VOL" "$uuid" --quiet
t_grep "destroyed volume '$T_VOL'" "$T_OUT"
[ -z "$(all_keys)" ] || t_fail "objects left: $(all_keys | head -3)"
[ ! -e "$TESSERA_HOME/$T_VOL" ] || t_fail "volume directory left"
t_run 1 tessera status "$T_VOL"
t_one_line_err

# bad input
t_run 1 tessera destroy nosuchvol "$uuid"
t_one_line_err
t_run 2 tessera destroy "$T_VOL"
exit 0
