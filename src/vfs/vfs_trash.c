/*
 * vfs_trash.c - the ".control" request "trash" (`tessera trash restore`
 * and `empty` on a volume this host mounts).
 *
 * Design note.  A replicated volume may only be changed by its lease
 * holder, the mount, so the command sends the change here instead of
 * opening the metadata.  Requests (after the word "trash"):
 *
 *   restore NAMELEN\nENTRY   answer "0 PATH" or "-ERRNO PATH" (PATH: the
 *                            original path, may be empty; meta_trash_restore)
 *   empty                    answer "0 removed N kept N" or "-ERRNO text"
 *
 * Both act with the credentials of the opener of ".control": a user other
 * than root restores and empties only files it owns.  Like any other
 * change made through the mount (a rename, an unlink), the result is not
 * synced: replication ships it as usual, and the background worker syncs
 * before it deletes the objects of emptied files.
 */
#include "util/common.h"
#include "meta/meta.h"
#include "util/buf.h"
#include "util/log.h"
#include "vfs/vfs_int.h"

#include <inttypes.h>

static int trash_restore(struct vfs *v, const struct meta_cred *c,
			 const char *req, size_t n, struct buf *reply)
{
	char entry[TESSERA_NAME_MAX + 1];
	char path[META_TRASH_PATH_MAX + TESSERA_NAME_MAX + 2];
	const char *nl = memchr(req, '\n', n);
	unsigned long long len;
	int used = 0, rc;

	if (!nl || sscanf(req, "%llu%n", &len, &used) != 1 ||
	    req + used != nl || len == 0 || len > TESSERA_NAME_MAX ||
	    (size_t)(req + n - (nl + 1)) != len)
		return -EINVAL;
	memcpy(entry, nl + 1, len);
	entry[len] = '\0';
	if (strlen(entry) != len)
		return -EINVAL;
	rc = meta_trash_restore(v->m, c, entry, path, sizeof(path));
	return buf_appendf(reply, "%d %s\n", rc, path);
}

static int trash_empty(struct vfs *v, const struct meta_cred *c,
		       struct buf *reply)
{
	uint64_t removed = 0, kept = 0;
	int rc = meta_trash_empty(v->m, c, &removed, &kept);

	if (rc < 0)
		return buf_appendf(reply, "%d %s (%" PRIu64 " removed)\n", rc,
				   strerror(-rc), removed);
	return buf_appendf(reply, "0 removed %" PRIu64 " kept %" PRIu64 "\n",
			   removed, kept);
}

int vfs_ctl_trash(struct vfs *v, const struct meta_cred *c, const char *req,
		  size_t n, struct buf *reply)
{
	size_t wl = 0;

	while (wl < n && req[wl] != ' ' && req[wl] != '\n')
		wl++;
	if (v->conf.read_only)
		return buf_appendf(reply, "-%d read-only mount\n", EROFS);
	if (wl == 7 && memcmp(req, "restore", 7) == 0 && wl < n)
		return trash_restore(v, c, req + wl + 1, n - wl - 1, reply);
	if (wl == 5 && memcmp(req, "empty", 5) == 0 &&
	    (n == 5 || (n == 6 && req[5] == '\n')))
		return trash_empty(v, c, reply);
	return -EINVAL;
}
