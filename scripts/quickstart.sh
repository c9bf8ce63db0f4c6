#!/usr/bin/env bash
# The README's first command: install what is missing (build and test
# dependencies), build, install /usr/local/bin/tessera, format the embedded
# default volume "demo" (if it does not exist yet) and mount it on
# /mnt/tessera (if not mounted yet).
set -euo pipefail
cd "$(dirname "$0")/.."
VOL=${TESSERA_QUICKSTART_VOLUME:-demo}
MNT=${TESSERA_QUICKSTART_MOUNT:-/mnt/tessera}
scripts/install-deps.sh --test
make -j"$(nproc)" all
make install >/dev/null
if ! tessera status "$VOL" >/dev/null 2>&1; then
	tessera format "$VOL"
fi
mkdir -p "$MNT"
if mountpoint -q "$MNT"; then
	echo "quickstart: $MNT is already mounted"
else
	tessera mount "$VOL" "$MNT"
fi
echo "quickstart: volume '$VOL' is mounted on $MNT (metadata and data under $(tessera status "$VOL" | sed -n 's/^storage: *file:\/\///p' | sed 's/objects\/$//'))"
echo "quickstart: unmount with 'tessera umount $MNT'; run the tests with 'make test'"
