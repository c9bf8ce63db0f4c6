/*
 * vfs_ctl.c - the ".control" virtual file: requests from tools to the
 * mount (protocol in vfs.h).
 *
 * Why a file and not direct access to the metadata: the mount is the one
 * writer of its metadata (with replication it holds the volume's lease,
 * and every change must go through its wrapper), it holds writes that are
 * not committed yet, and it knows the caller's credentials for each
 * request.  A tool writes one request and reads the answer back from the
 * same handle, which keeps the answer (files_lock guards the swap against
 * a concurrent read of the same handle).
 *
 * Before acting, every open file is committed (clone copies what the
 * application wrote, even without a close); for requests passed to
 * vfs_conf.control the data is also synced, since those (checkpoints)
 * promise a durable point in time.
 */
#include "util/common.h"
#include "meta/meta.h"
#include "util/buf.h"
#include "util/log.h"
#include "vfs/vfs_int.h"

#include <inttypes.h>

#define CTL_MAX 8192

int vfs_control_text(struct vfs *v, char **out, size_t *len)
{
	static const char text[] = "ready\n";

	UNUSED(v);
	*out = strdup(text);
	if (!*out)
		return -ENOMEM;
	*len = sizeof(text) - 1;
	return 0;
}

/* Split "WORD rest": *word_len, *rest. */
static size_t first_word(const char *s, size_t n, const char **rest)
{
	size_t i = 0;

	while (i < n && s[i] != ' ' && s[i] != '\n')
		i++;
	*rest = s + (i < n ? i + 1 : i);
	return i;
}

static int ctl_clone(struct vfs *v, const struct vfs_ctx *c, const char *req,
		     size_t n, struct buf *reply)
{
	unsigned long long src, dst, flags, nlen;
	struct meta_clone_stats st;
	struct meta_attr a;
	char name[TESSERA_NAME_MAX + 1];
	const char *nl = memchr(req, '\n', n);
	int used = 0, rc;

	if (!nl ||
	    sscanf(req, "%llu %llu %llu %llu%n", &src, &dst, &flags, &nlen,
		   &used) != 4 ||
	    req + used != nl || nlen == 0 || nlen > TESSERA_NAME_MAX ||
	    (size_t)(req + n - (nl + 1)) != nlen)
		return -EINVAL;
	memcpy(name, nl + 1, nlen);
	name[nlen] = '\0';
	if (strlen(name) != nlen)
		return -EINVAL;
	if (v->conf.read_only)
		return buf_appendf(reply, "-%d read-only mount\n", EROFS);
	rc = vfs_files_commit_all(v, false);
	if (rc == 0)
		rc = meta_clone(v->m, c ? &c->cred : NULL, src, dst, name,
				(int)flags, &a, &st);
	if (rc < 0)
		return buf_appendf(reply, "%d %s\n", rc, strerror(-rc));
	return buf_appendf(reply,
			   "0 ino %" PRIu64 " inodes %" PRIu64
			   " chunks %" PRIu64 " slices %" PRIu64 "\n",
			   a.ino, st.inodes, st.chunks, st.slices);
}

static int ctl_hook(struct vfs *v, const struct vfs_ctx *c, const char *cmd,
		    const char *req, size_t n, struct buf *reply)
{
	struct buf text = BUF_INIT;
	int rc;

	if (!v->conf.control)
		return buf_appendf(reply, "-%d unknown request '%s'\n", ENOSYS,
				   cmd);
	rc = vfs_files_commit_all(v, true);
	if (rc == 0)
		rc = meta_sync(v->m);
	if (rc == 0)
		rc = v->conf.control(v->conf.control_arg, c, cmd, req, n,
				     &text);
	if (rc < 0)
		rc = buf_appendf(reply, "%d %s\n", rc,
				 text.len ? text.data : strerror(-rc));
	else
		rc = buf_appendf(reply, "0 %s\n", text.len ? text.data : "ok");
	buf_release(&text);
	return rc;
}

ssize_t vfs_control(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
		    uint64_t fh, const void *buf, size_t len)
{
	struct vfs_handle *h = vfs_handle_get(fh, VFS_H_VIRT);
	struct buf reply = BUF_INIT;
	char cmd[32], *req;
	const char *rest;
	size_t wl, old_len;
	char *old;
	int rc;

	if (!h || h->ino != ino)
		return -EBADF;
	if (ino != VFS_INO_CONTROL)
		return -EACCES;
	if (len == 0 || len > CTL_MAX)
		return -EINVAL;
	req = malloc(len + 1);
	if (!req)
		return -ENOMEM;
	memcpy(req, buf, len);
	req[len] = '\0';
	wl = first_word(req, len, &rest);
	if (wl == 0 || wl >= sizeof(cmd)) {
		free(req);
		return -EINVAL;
	}
	memcpy(cmd, req, wl);
	cmd[wl] = '\0';
	if (strcmp(cmd, "clone") == 0)
		rc = ctl_clone(v, c, rest, len - (size_t)(rest - req), &reply);
	else
		rc = ctl_hook(v, c, cmd, rest, len - (size_t)(rest - req),
			      &reply);
	free(req);
	if (rc < 0) {
		buf_release(&reply);
		return rc;
	}
	pthread_mutex_lock(&v->files_lock);
	old = h->vdata;
	old_len = h->vlen;
	h->vdata = buf_detach(&reply, &h->vlen);
	pthread_mutex_unlock(&v->files_lock);
	UNUSED(old_len);
	free(old);
	return (ssize_t)len;
}
