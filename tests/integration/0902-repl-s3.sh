#!/usr/bin/env bash
# Durable state as a URL on an S3 server (s3rver at $TESSERA_TEST_S3):
# fsynced writes on host A survive kill -9 and show on host B, which
# mounts http://HOST:PORT/BUCKET/NAME with an empty home; the lease keeps
# A out while B lives, --force takes it over and B's fsyncs fail.
# Skipped when the server does not answer.
# TIMEOUT: 300
. "$(dirname "$0")/../lib/mount.sh"
. "$(dirname "$0")/../lib/repl.sh"

S3=${TESSERA_TEST_S3:-http://127.0.0.1:4568}
curl -s -m 3 -o /dev/null "$S3/" || t_skip "no S3 server at $S3"
export TESSERA_ACCESS_KEY=${TESSERA_TEST_S3_KEY:-S3RVER}
export TESSERA_SECRET_KEY=${TESSERA_TEST_S3_SECRET:-S3RVER}
BUCKET=tessera-repl-$(date +%s)-$$
URL=$S3/$BUCKET/$T_VOL

t_format --storage "$S3/$BUCKET" --trash-days 0
t_mount
progress=$T_DIR/progress
r_start_writer "$MNT" "$progress" 10

TESSERA_HOME=$HOME_B t_run 1 tessera mount "$URL" "$MNT_B"
t_grep "in use by .* use --force" "$T_ERR"

t_kill9
wait $R_WRITER
t_log "A fsynced $(cat "$progress") rounds before kill -9"
r_mount_b "$URL" "$MNT_B"
r_check "$MNT_B" "$progress" || t_fail "fsynced data lost on the way to B"

echo "from B" >"$MNT_B/b-file"
sync "$MNT_B/b-file"
t_mount --force
[ "$(cat "$MNT/b-file")" = "from B" ] || t_fail "A does not see B's file"
r_fsync_erofs "$MNT_B/late" ||
	t_fail "B could still fsync after losing the lease"
r_umount_b
t_umount
exit 0
