#!/usr/bin/env bash
# Generate the man pages from the one source of every help text, the
# command table in src/cli/main.c, as printed by the binary:
#   tessera.1           from `tessera --help`
#   tessera-COMMAND.1   from `tessera help COMMAND`, for every command
# Usage: scripts/mkman.sh TESSERA-BINARY OUTDIR
set -euo pipefail
bin=$1
out=$2
mkdir -p "$out"
version=$("$bin" --version | awk '{ print $2 }')
date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%d)

# roff-escape a help text: backslashes, leading dots and quotes.
esc() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/" -e 's/-/\\-/g'; }

cmds=$("$bin" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
{
	echo ".TH TESSERA 1 \"$date\" \"tessera $version\" \"Tessera manual\""
	echo ".SH NAME"
	echo "tessera \\- a POSIX filesystem on an object store and a metadata database"
	echo ".SH SYNOPSIS"
	echo ".B tessera"
	echo "[\\-\\-version] [\\-\\-help] COMMAND [ARGS]"
	echo ".SH DESCRIPTION"
	echo "Tessera keeps file data as immutable blocks in an object store and"
	echo "metadata in SQLite, Redis or PostgreSQL; a FUSE mount shows a volume"
	echo "as a local filesystem.  Each command has its own page,"
	echo ".BR tessera\\-COMMAND (1)."
	echo ".SH COMMANDS"
	"$bin" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ {
		c = $1; $1 = ""; sub(/^ /, "");
		printf ".TP\n.B %s\n%s\n", c, $0 }' | sed 's/-/\\-/g'
	echo ".SH MOUNT HELPER"
	echo "Installed as /sbin/mount.tessera, the binary lets"
	echo ".BR mount (8)"
	echo "and /etc/fstab mount a volume:"
	echo ".B mount \\-t tessera VOLUME MOUNTPOINT \\-o OPTIONS"
	echo "takes every option of"
	echo ".BR tessera\\-mount (1)"
	echo "as NAME or NAME=VALUE, drops the generic options of fstab"
	echo "(_netdev, noauto, nofail, x\\-systemd.*, defaults) and reads the"
	echo "environment from /etc/default/tessera (or env=FILE; home=DIR sets"
	echo "TESSERA_HOME).  Installed as /sbin/umount.fuse.tessera, it makes"
	echo ".BR umount (8)"
	echo "flush and wait like"
	echo ".BR \"tessera umount\" ."
	echo ".SH ENVIRONMENT"
	echo ".TP"
	echo ".B TESSERA_HOME"
	echo "where embedded volumes and the cache live (default /var/lib/tessera for root)"
	echo ".TP"
	echo ".B TESSERA_ACCESS_KEY, TESSERA_SECRET_KEY"
	echo "object store credentials"
	echo ".SH SEE ALSO"
	sep=""
	for c in $cmds; do
		printf '%s.BR tessera\\-%s (1)' "$sep" "$c"
		sep=$',\n'
	done
	echo
} >"$out/tessera.1"

for c in $cmds; do
	# No early awk exit here: under pipefail it races the writer into
	# SIGPIPE and fails the build now and then.
	desc=$("$bin" --help | awk -v c="$c" '!d && $1 == c { $1 = ""; sub(/^ /, ""); print; d = 1 }')
	help=$("$bin" help "$c")
	{
		echo ".TH TESSERA-${c^^} 1 \"$date\" \"tessera $version\" \"Tessera manual\""
		echo ".SH NAME"
		echo "tessera\\-$c \\- $desc" | sed 's/\([^\\]\)-/\1\\-/g'
		echo ".SH SYNOPSIS"
		echo ".nf"
		printf '%s\n' "$help" | awk '!stop && (/^usage: / || (u && /^       /)) { u = 1; sub(/^usage: /, ""); sub(/^       /, ""); print; next } { stop = 1 }' | esc
		echo ".fi"
		echo ".SH DESCRIPTION"
		echo ".nf"
		printf '%s\n' "$help" | awk 'NR == 1 || (!body && /^       /) { next } { body = 1; print }' | esc
		echo ".fi"
		echo ".SH SEE ALSO"
		echo ".BR tessera (1)"
	} >"$out/tessera-$c.1"
done
