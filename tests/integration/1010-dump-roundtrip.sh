#!/usr/bin/env bash
# tessera dump / load round trip SQLite -> Redis -> PostgreSQL -> SQLite.
# The tree has every kind of inode and attribute: nested directories with
# odd modes and owners, setgid and sticky bits, hard links (three names in
# two directories), symlinks (relative, absolute, dangling, 1000 bytes),
# a fifo, a socket, character and block devices, empty, small, multi-block
# and sparse files (holes across chunks), user xattrs (text and binary),
# access and default ACLs, chattr +i / +a, nanosecond times set by touch,
# names with a newline, non-UTF-8 bytes and UTF-8, a clone (slice
# references) and a file in the trash.  Each loaded volume is mounted and
# compared with the original entry by entry (type, mode, owner, nlink,
# inode number, size, blocks, rdev, atime/mtime/ctime to the nanosecond,
# flags, xattrs, symlink target, the data/hole map and a hash of the
# bytes; link groups by inode).  The dump of each loaded volume equals the
# first one except "dumped", "checksum" and "replicate" (docs/dump.md).
# Nested directory quotas (one on a hard-linked file's home) are in the
# dump, and `quota list` of each loaded volume (limits and the usage load
# recounts) equals the source's; a file written on each loaded volume is
# charged to every quota above it (the tree was flagged).
# A dump of the mounted volume, taken while an unlinked file is held
# open, carries that file as a deleted file and loads.
# ENGINES: redis
# TIMEOUT: 240
. "$(dirname "$0")/../lib/mount.sh"

command -v setfacl >/dev/null || t_skip "no setfacl (package acl)"
command -v chattr >/dev/null || t_skip "no chattr (e2fsprogs)"
PG=${TESSERA_TEST_PG:-postgres://tessera:tessera@127.0.0.1:5432/tessera}
pg_isready -q -d "$PG" >/dev/null 2>&1 || t_skip "no postgres at $PG"
REDIS=$T_META
# the source is the embedded SQLite volume
T_META=
T_ENGINE=sqlite
# a private PostgreSQL schema for this run
SCHEMA=dump_$$_$RANDOM
psql -q "$PG" -c "CREATE SCHEMA $SCHEMA" >/dev/null 2>&1 ||
	t_fail "cannot create schema $SCHEMA"
t_on_exit "psql -q '$PG' -c 'DROP SCHEMA $SCHEMA CASCADE'"
PGURL="$PG?options=-csearch_path%3D$SCHEMA"
SQ2="sqlite3://$T_DIR/loaded.db"
redis-cli -u "$REDIS" flushdb >/dev/null || t_fail "cannot empty $REDIS"

t_format
t_mount -o noatime
M=$MNT
mkdir -p "$M/a/b/c" "$M/other" "$M/shared"
chmod 0750 "$M/a"
chmod 2775 "$M/a/b"
chmod 1777 "$M/shared"
chown 1234:5678 "$M/a/b/c"
: >"$M/empty"
echo small >"$M/a/small"
head -c 5000000 /dev/urandom >"$M/a/b/multi"
truncate -s 200M "$M/sparse"
printf 'in chunk one' | dd of="$M/sparse" bs=1 seek=$((70 * 1024 * 1024)) conv=notrunc status=none
printf 'at the start' | dd of="$M/sparse" bs=1 seek=0 conv=notrunc status=none
ln "$M/a/small" "$M/a/b/link2"
ln "$M/a/small" "$M/other/link3"
ln -s small "$M/a/rel"
ln -s /etc/passwd "$M/abs"
ln -s does/not/exist "$M/dangling"
ln -s "$(head -c 1000 /dev/zero | tr '\0' x)" "$M/longlink"
mkfifo "$M/fifo"
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$M/sock"
mknod "$M/null" c 1 3
mknod "$M/loop" b 7 0
chown 42:43 "$M/null"
printf 'x' >"$M/$(printf 'new\nline')"
printf 'y' >"$M/$(printf 'bad\xff\xfebytes')"
printf 'z' >"$M/ünïcødé"
setfattr -n user.text -v hello "$M/a/small"
setfattr -n user.bin -v 0x00ff0102 "$M/a/small"
setfattr -n user.empty "$M/empty"
setfacl -m u:nobody:r "$M/a/small"
setfacl -d -m g:65534:rx "$M/a/b"
echo immutable >"$M/immut"
echo append >"$M/appendonly"
touch -d '2001-02-03 04:05:06.123456789' "$M/a/b/multi"
touch -a -d '1999-12-31 23:59:59.987654321' "$M/a/b/multi"
touch -m -d '1969-07-20 20:17:40.5' "$M/other"
t_run 0 tessera clone "$M/a/b/multi" "$M/clone"
echo trash me >"$M/trashed"
rm "$M/trashed"
chattr +i "$M/immut" || t_fail "chattr +i"
chattr +a "$M/appendonly" || t_fail "chattr +a"
ls "$M/.trash" | grep -q trashed || t_fail "no file in the trash"
# nested quotas; a/small (3 names) counts at its home /a only
t_run 0 tessera quota set "$T_VOL" --path /a --capacity 1G --inodes 1000
t_run 0 tessera quota set "$T_VOL" --path /a/b --inodes 100
t_run 0 tessera quota set "$T_VOL" --path /a/b/c --capacity 8M
t_run 0 tessera quota set "$T_VOL" --path /other --capacity 64M
# two names of one file in its home: charged once (and recounted once)
echo twin >"$M/a/b/c/twin"
ln "$M/a/b/c/twin" "$M/a/b/c/twin2"

# the tree as seen through a mount, one JSON line per path
cat >"$T_DIR/walk.py" <<'EOF'
import fcntl, hashlib, json, os, stat, struct, sys
root = sys.argv[1]
FS_IOC_GETFLAGS = 0x80086601
def segs(p, size):
    out, off = [], 0
    fd = os.open(p, os.O_RDONLY)
    try:
        while off < size:
            try:
                d = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            h = os.lseek(fd, d, os.SEEK_HOLE)
            out.append([d, h])
            off = h
        return out
    finally:
        os.close(fd)
def one(rel):
    p = os.path.join(root, rel) if rel else root
    st = os.lstat(p)
    e = {"path": os.fsencode(rel).hex(), "ino": st.st_ino,
         "mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid,
         "nlink": st.st_nlink, "size": st.st_size, "blocks": st.st_blocks,
         "rdev": st.st_rdev, "atime": st.st_atime_ns,
         "mtime": st.st_mtime_ns, "ctime": st.st_ctime_ns}
    if not stat.S_ISLNK(st.st_mode):
        e["xattrs"] = {n: os.getxattr(p, n, follow_symlinks=False).hex()
                       for n in sorted(os.listxattr(p, follow_symlinks=False))}
    if stat.S_ISLNK(st.st_mode):
        e["target"] = os.fsencode(os.readlink(p)).hex()
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        fd = os.open(p, os.O_RDONLY)
        try:
            e["flags"] = struct.unpack("l", fcntl.ioctl(
                fd, FS_IOC_GETFLAGS, b"\0" * 8))[0]
        finally:
            os.close(fd)
    if stat.S_ISREG(st.st_mode):
        e["segs"] = segs(p, st.st_size)
        with open(p, "rb") as f:
            e["sha"] = hashlib.sha256(f.read()).hexdigest()
    return e
out = [one("")]
for d, dirs, files in os.walk(root):
    dirs.sort()
    for n in sorted(dirs + files):
        out.append(one(os.path.relpath(os.path.join(d, n), root)))
out.append(one(".trash"))
for n in sorted(os.listdir(os.path.join(root, ".trash"))):
    out.append(one(os.path.join(".trash", n)))
for e in out:
    print(json.dumps(e, sort_keys=True))
EOF
walk() { python3 "$T_DIR/walk.py" "$1" >"$2" || t_fail "walk of $1 failed"; }

# a dump of the mounted volume with an unlinked file held open
echo held >"$M/held"
exec 7<"$M/held"
rm "$M/held"
rm "$M/.trash/"*-held # out of the trash too: now kept only by the open
t_run 0 tessera dump "$T_VOL" "$T_DIR/live.json"
python3 - "$T_DIR/live.json" <<'EOF' || t_fail "the held-open file is not a deleted file in the live dump"
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["deleted"]) == 1, d["deleted"]
assert not any(i["ino"] == d["deleted"][0]["ino"] for i in d["inodes"])
EOF
t_run 0 tessera load --quiet "sqlite3://$T_DIR/live.db" "$T_DIR/live.json"
exec 7<&-

walk "$M" "$T_DIR/walk0"
n=$(wc -l <"$T_DIR/walk0")
[ "$n" -ge 28 ] || t_fail "the walk found only $n paths"
# the walk sees what the comparison is about (else it proves nothing)
python3 - "$T_DIR/walk0" <<'EOF' || t_fail "the walk misses attributes"
import json, sys
w = [json.loads(l) for l in open(sys.argv[1])]
x = set(k for e in w for k in e.get("xattrs", {}))
assert {"system.posix_acl_access", "system.posix_acl_default",
        "user.bin", "user.text", "user.empty"} <= x, x
assert {16, 32} <= set(e.get("flags", 0) for e in w)
assert max(len(e.get("segs", [])) for e in w) >= 2
assert any(e["nlink"] == 3 for e in w)
assert any(e["mtime"] < 0 for e in w)
assert any(e["atime"] % 1000 == 321 for e in w)
assert any(e["rdev"] for e in w)
EOF
t_umount

# the quotas as the source has them, usage included (recounted by load)
t_run 0 tessera quota list "$T_VOL" --json
cp "$T_OUT" "$T_DIR/q0"
python3 - "$T_DIR/q0" <<'PY' || t_fail "quota list of the source: $(cat "$T_DIR/q0")"
import json, sys
q = {e["path"]: e for e in json.load(open(sys.argv[1]))}
assert sorted(q) == ["/a", "/a/b", "/a/b/c", "/other"], q
assert q["/a"]["used_inodes"] > q["/a/b"]["used_inodes"] > 0, q
assert q["/a/b"]["inodes_limit"] == 100 and q["/a"]["space_limit"] == 1 << 30
assert q["/other"]["used_inodes"] == 0, q  # link3's home is /a
assert q["/a/b/c"]["used_inodes"] == 1, q  # twin, twin2
PY

# the chain; each dump compared with the first
norm() { grep -v -e '^"dumped":' -e '^"checksum":' -e '^"replicate":' "$1"; }
t_run 0 tessera dump "$T_VOL" "$T_DIR/d0.json"
python3 - "$T_DIR/d0.json" <<'PY' || t_fail "the dump lacks the quotas"
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["quotas"]) == 4 and d["summary"]["quotas"] == 4, d["quotas"]
assert d["counters"]["quotas"] == 4
assert all(set(q) == {"ino", "space", "inodes"} for q in d["quotas"])
PY
grep -q '^"replicate":true' "$T_DIR/d0.json" || t_fail "the source is not replicated"
prev=$T_DIR/d0.json
i=1
for url in "$REDIS" "$PGURL" "$SQ2"; do
	t_run 0 tessera load "$url" "$prev"
	t_run 0 tessera dump "$url" "$T_DIR/d$i.json"
	diff <(norm "$T_DIR/d0.json") <(norm "$T_DIR/d$i.json") >"$T_DIR/diff" ||
		t_fail "dump $i of the volume loaded into ${url%%\?*} differs: $(head -20 "$T_DIR/diff")"
	grep -q '^"replicate":false' "$T_DIR/d$i.json" || t_fail "loaded volume replicated"
	t_run 0 tessera quota list "$url" --json
	diff "$T_DIR/q0" "$T_OUT" >"$T_DIR/diff" ||
		t_fail "quotas loaded into ${url%%\?*} differ: $(cat "$T_DIR/diff")"
	prev=$T_DIR/d$i.json
	i=$((i + 1))
done

# each loaded volume mounts and shows the same tree
for url in "$REDIS" "$PGURL" "$SQ2"; do
	T_META=$url
	t_mount -o noatime
	walk "$MNT" "$T_DIR/walk1"
	diff "$T_DIR/walk0" "$T_DIR/walk1" >"$T_DIR/diff" ||
		t_fail "the volume loaded into ${url%%\?*} differs: $(head -6 "$T_DIR/diff")"
	# the loaded tree is flagged: a file made below /a/b/c is charged
	echo new >"$MNT/a/b/c/new" || t_fail "cannot write under the quotas"
	t_umount
	t_run 0 tessera quota list "$url" --json
	python3 - "$T_DIR/q0" "$T_OUT" <<'PY' || t_fail "a new file on ${url%%\?*} is not charged: $(cat "$T_OUT")"
import json, sys
a = {e["path"]: e for e in json.load(open(sys.argv[1]))}
b = {e["path"]: e for e in json.load(open(sys.argv[2]))}
for p in ("/a", "/a/b", "/a/b/c"):
    assert b[p]["used_inodes"] == a[p]["used_inodes"] + 1, (p, a[p], b[p])
    assert b[p]["used_space"] == a[p]["used_space"] + 4096, (p, a[p], b[p])
assert b["/other"] == a["/other"]
PY
done
t_pass
