#!/usr/bin/env bash
# Install what building and testing Tessera needs on Debian 12 (idempotent).
# Usage: scripts/install-deps.sh [--test]   (--test adds servers and tools
# used only by the test suite)
set -euo pipefail
pkgs=(build-essential pkg-config libfuse3-dev fuse3 libsqlite3-dev sqlite3
	libcurl4-openssl-dev libssl-dev liblz4-dev libzstd-dev libxxhash-dev
	libjansson-dev libhiredis-dev libpq-dev libmariadb-dev liburing-dev libcmocka-dev)
if [ "${1:-}" = --test ]; then
	pkgs+=(attr acl python3 util-linux procps psmisc redis-server postgresql mariadb-server etcd-server etcd-client
		xfsprogs clang curl prometheus git)
	# s3rver comes from npm: use the machine's Node.js when it has one (a
	# NodeSource nodejs ships npm and conflicts with Debian's npm package)
	command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || { echo "install-deps: run as root to install: ${missing[*]}" >&2; exit 1; }
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
