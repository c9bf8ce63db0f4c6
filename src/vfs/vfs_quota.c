/*
 * vfs_quota.c - the ".control" request "quota" (`tessera quota set`,
 * `delete` and `check --repair` on a volume this host mounts).
 *
 * Design note.  A replicated volume may only be changed by its lease
 * holder, the mount, so the command resolves the directory itself (it may
 * read the metadata) and sends the change here by inode number.  Requests
 * (after the word "quota"):
 *
 *   set INO WHICH SPACE INODES   answer "0 SPACE_LIMIT INODE_LIMIT
 *                                USED_SPACE USED_INODES" (meta_quota_set;
 *                                WHICH: META_QUOTA_* bits)
 *   delete INO                   answer "0 ok" (meta_quota_delete)
 *   check INO REPAIR             answer "0 USED_SPACE USED_INODES
 *                                REAL_SPACE REAL_INODES FIXED ADOPTED"
 *                                (meta_quota_check; REPAIR 0 or 1)
 *
 * Failures answer "-ERRNO message".  Quotas bind every user, so only root
 * (or an internal caller) may change them: -EPERM otherwise.
 */
#include "util/common.h"
#include "meta/meta.h"
#include "util/buf.h"
#include "vfs/vfs_int.h"

#include <inttypes.h>

static int answer_err(struct buf *reply, int rc)
{
	return buf_appendf(reply, "%d %s\n", rc, strerror(-rc));
}

static int quota_set_req(struct vfs *v, const char *req, struct buf *reply)
{
	unsigned long long ino, space, inodes;
	unsigned which;
	struct meta_quota q;
	int rc;

	if (sscanf(req, "%llu %u %llu %llu", &ino, &which, &space, &inodes) !=
	    4)
		return -EINVAL;
	rc = meta_quota_set(v->m, ino, which, space, inodes, &q);
	if (rc < 0)
		return answer_err(reply, rc);
	return buf_appendf(
		reply, "0 %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 "\n",
		q.space_limit, q.inodes_limit, q.used_space, q.used_inodes);
}

static int quota_check_req(struct vfs *v, const char *req, struct buf *reply)
{
	struct meta_quota_check c;
	unsigned long long ino;
	unsigned repair;
	int rc;

	if (sscanf(req, "%llu %u", &ino, &repair) != 2 || repair > 1)
		return -EINVAL;
	rc = meta_quota_check(v->m, ino, repair, &c);
	if (rc < 0)
		return answer_err(reply, rc);
	return buf_appendf(reply,
			   "0 %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
			   " %d %" PRId64 "\n",
			   c.q.used_space, c.q.used_inodes, c.real_space,
			   c.real_inodes, c.fixed ? 1 : 0, c.adopted);
}

int vfs_ctl_quota(struct vfs *v, const struct meta_cred *c, const char *req,
		  size_t n, struct buf *reply)
{
	char line[128];
	unsigned long long ino;
	size_t wl = 0;
	int rc;

	if (n >= sizeof(line))
		return -EINVAL;
	memcpy(line, req, n);
	line[n] = '\0';
	while (wl < n && line[wl] != ' ')
		wl++;
	if (v->conf.read_only)
		return buf_appendf(reply, "-%d read-only mount\n", EROFS);
	if (c && c->uid != 0)
		return answer_err(reply, -EPERM);
	if (wl == 3 && memcmp(line, "set", 3) == 0)
		return quota_set_req(v, line + 3, reply);
	if (wl == 5 && memcmp(line, "check", 5) == 0)
		return quota_check_req(v, line + 5, reply);
	if (wl == 6 && memcmp(line, "delete", 6) == 0) {
		if (sscanf(line + 6, "%llu", &ino) != 1)
			return -EINVAL;
		rc = meta_quota_delete(v->m, ino);
		return rc < 0 ? answer_err(reply, rc)
			      : buf_appendf(reply, "0 ok\n");
	}
	return -EINVAL;
}
