/*
 * vfs_tools.c - the ".control" requests of `tessera info`, `summary` and
 * `rmr` (the dispatch and the handle state are in vfs_control.c).
 *
 * Answers are lines; the first is "0 ..." or "-ERRNO message".  Names
 * travel with their length first, so any byte but NUL may be in them.
 *
 *   info INO
 *       file:  "0 inode I type T mode M size S links N uid U gid G
 *               chunks C slices S objects O", then per chunk
 *              "chunk INDEX", per slice "slice ID POS SIZE OFF LEN" and
 *              per block object "object LEN KEY"; "end"
 *       dir:   "0 inode ... entries E files F dirs D bytes B", "end"
 *       Open files are committed first, so buffered writes show.  The
 *       answer may be long (a slice list of thousands): vfs_control_read
 *       hands it out across reads.
 *   summary INO DEPTH
 *       "0 N", then N lines "DEPTH ENTRIES FILES DIRS BYTES PATHLEN PATH"
 *       (meta_summary; the top has DEPTH 0 and an empty PATH)
 *   rmr PARENT NAMELEN\nNAME
 *       empties directory NAME of PARENT (meta_rmtree, keeping the top,
 *       which the command then removes with rmdir(2) so that the kernel
 *       drops its entry at once); the write starts a job, each read runs
 *       batches for about 100 ms and answers "progress FILES DIRS", the
 *       last one "0 files F dirs D" or "-ERRNO files F dirs D message"
 *
 * All run in the FUSE thread of the request, with the opener's
 * credentials; a job belongs to one handle (its lock held by the caller).
 */
#include "util/common.h"
#include "chunk/chunk.h"
#include "meta/meta.h"
#include "meta/meta_scan.h"
#include "util/buf.h"
#include "util/log.h"
#include "vfs/vfs_int.h"

#include <inttypes.h>
#include <sys/stat.h>

#define TOOL_STEP_NS 100000000LL

struct vfs_tool_job {
	struct meta_rmtree *r;
	struct meta_cred cred;
	uint32_t groups[64];
};

static const char *type_name(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "file";
	case S_IFDIR:
		return "dir";
	case S_IFLNK:
		return "symlink";
	case S_IFIFO:
		return "fifo";
	case S_IFSOCK:
		return "socket";
	case S_IFCHR:
		return "chardev";
	case S_IFBLK:
		return "blockdev";
	default:
		return "unknown";
	}
}

static int err_line(struct buf *reply, int rc)
{
	return buf_appendf(reply, "%d %s\n", rc, strerror(-rc));
}

/* ---- info ---- */

struct info_walk {
	struct vfs *v;
	struct buf *body;
	uint64_t chunks, slices, objects;
};

static int info_chunk(void *arg, const struct meta_chunk *c)
{
	struct info_walk *w = arg;
	uint32_t bs = w->v->block_size;
	char key[256];
	int rc;

	if (c->corrupt)
		return -EIO;
	w->chunks++;
	rc = buf_appendf(w->body, "chunk %" PRIu32 "\n", c->index);
	for (size_t i = 0; rc == 0 && i < c->n; i++) {
		const struct slice *s = &c->s[i];
		uint32_t nb = s->id ? chunk_slice_blocks(s->size, bs) : 0;

		w->slices++;
		rc = buf_appendf(w->body,
				 "slice %" PRIu64 " %" PRIu32 " %" PRIu32
				 " %" PRIu32 " %" PRIu32 "\n",
				 s->id, s->pos, s->size, s->off, s->len);
		for (uint32_t b = 0; rc == 0 && b < nb; b++) {
			uint32_t len = chunk_slice_block_len(s->size, bs, b);

			chunk_key(w->v->fmt.name, s->id, b, len, key,
				  sizeof(key));
			w->objects++;
			rc = buf_appendf(w->body, "object %" PRIu32 " %s\n",
					 len, key);
		}
	}
	return rc;
}

static int info_dir(void *arg, const struct meta_summary_ent *e)
{
	return buf_appendf(arg,
			   " entries %" PRIu64 " files %" PRIu64
			   " dirs %" PRIu64 " bytes %" PRIu64,
			   e->entries, e->files, e->dirs, e->bytes);
}

static int info_file(struct vfs *v, uint64_t ino, struct buf *head,
		     struct buf *body)
{
	struct info_walk w = {v, body, 0, 0, 0};
	struct meta_view *view;
	int rc;

	for (int attempt = 0;; attempt++) {
		rc = meta_view_begin(v->m, &view);
		if (rc < 0)
			return rc;
		rc = meta_view_chunks(view, ino, info_chunk, &w);
		if (meta_view_end(view) != -EAGAIN || rc < 0 || attempt >= 3)
			break;
		buf_reset(body);
		w.chunks = w.slices = w.objects = 0;
	}
	if (rc == 0)
		rc = buf_appendf(head,
				 " chunks %" PRIu64 " slices %" PRIu64
				 " objects %" PRIu64,
				 w.chunks, w.slices, w.objects);
	return rc;
}

int vfs_tool_info(struct vfs *v, const struct meta_cred *c, const char *req,
		  size_t n, struct buf *reply)
{
	struct buf head = BUF_INIT, body = BUF_INIT;
	unsigned long long ino;
	struct meta_attr a;
	char line[64], extra;
	int rc;

	if (n == 0 || n >= sizeof(line))
		return -EINVAL;
	memcpy(line, req, n);
	line[n] = '\0';
	if (sscanf(line, "%llu %c", &ino, &extra) != 1)
		return -EINVAL;
	rc = vfs_is_virtual(ino) ? -ENOENT : vfs_files_commit_all(v, false);
	if (rc == 0)
		rc = meta_getattr(v->m, ino, &a);
	if (rc == 0)
		rc = buf_appendf(
			&head,
			"0 inode %" PRIu64 " type %s mode 0%o size %" PRIu64
			" links %" PRIu32 " uid %" PRIu32 " gid %" PRIu32,
			a.ino, type_name(a.mode), a.mode, a.length, a.nlink,
			a.uid, a.gid);
	if (rc == 0 && S_ISDIR(a.mode))
		rc = meta_summary(v->m, c, ino, 0, info_dir, &head);
	else if (rc == 0)
		rc = info_file(v, ino, &head, &body);
	if (rc == 0)
		rc = buf_appendf(&head, "\n");
	if (rc == 0)
		rc = buf_append(&head, body.data, body.len);
	if (rc == 0)
		rc = buf_appendf(&head, "end\n");
	if (rc == 0)
		rc = buf_append(reply, head.data, head.len);
	else if (rc != -ENOMEM)
		rc = err_line(reply, rc);
	buf_release(&head);
	buf_release(&body);
	return rc;
}

/* ---- summary ---- */

struct sum_out {
	struct buf *body;
	uint64_t n;
};

static int sum_line(void *arg, const struct meta_summary_ent *e)
{
	struct sum_out *o = arg;

	o->n++;
	return buf_appendf(o->body,
			   "%" PRIu32 " %" PRIu64 " %" PRIu64 " %" PRIu64
			   " %" PRIu64 " %zu %s\n",
			   e->depth, e->entries, e->files, e->dirs, e->bytes,
			   strlen(e->path), e->path);
}

int vfs_tool_summary(struct vfs *v, const struct meta_cred *c, const char *req,
		     size_t n, struct buf *reply)
{
	struct buf body = BUF_INIT;
	struct sum_out o = {&body, 0};
	unsigned long long ino, depth;
	char line[64], extra;
	int rc;

	if (n == 0 || n >= sizeof(line))
		return -EINVAL;
	memcpy(line, req, n);
	line[n] = '\0';
	if (sscanf(line, "%llu %llu %c", &ino, &depth, &extra) != 2 ||
	    depth > UINT32_MAX)
		return -EINVAL;
	rc = vfs_is_virtual(ino) ? -ENOENT : vfs_files_commit_all(v, false);
	if (rc == 0)
		rc = meta_summary(v->m, c, ino, (uint32_t)depth, sum_line, &o);
	if (rc == 0)
		rc = buf_appendf(reply, "0 %" PRIu64 "\n", o.n);
	if (rc == 0)
		rc = buf_append(reply, body.data, body.len);
	else if (rc != -ENOMEM)
		rc = err_line(reply, rc);
	buf_release(&body);
	return rc;
}

/* ---- rmr ---- */

int vfs_tool_rmr(struct vfs *v, const struct meta_cred *c, const char *req,
		 size_t n, struct buf *reply, struct vfs_tool_job **job)
{
	unsigned long long parent, nlen;
	char name[TESSERA_NAME_MAX + 1];
	const char *nl = memchr(req, '\n', n);
	struct vfs_tool_job *j;
	int used = 0, rc;

	if (!nl || sscanf(req, "%llu %llu%n", &parent, &nlen, &used) != 2 ||
	    req + used != nl || nlen == 0 || nlen > TESSERA_NAME_MAX ||
	    (size_t)(req + n - (nl + 1)) != nlen)
		return -EINVAL;
	memcpy(name, nl + 1, nlen);
	name[nlen] = '\0';
	if (strlen(name) != nlen)
		return -EINVAL;
	if (v->conf.read_only)
		return buf_appendf(reply, "-%d read-only mount\n", EROFS);
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	if (c) {
		j->cred = *c;
		j->cred.ngroups = MIN(c->ngroups, 64);
		if (c->groups)
			memcpy(j->groups, c->groups,
			       j->cred.ngroups * sizeof(uint32_t));
		j->cred.groups = j->groups;
	}
	/* open files first: their pending writes must not land on removed
	 * inodes (and sustained ones keep what was written) */
	rc = vfs_files_commit_all(v, false);
	if (rc == 0)
		rc = meta_rmtree_begin(v->m, c ? &j->cred : NULL, parent, name,
				       META_RMTREE_KEEP_TOP, &j->r);
	if (rc < 0) {
		free(j);
		return err_line(reply, rc);
	}
	*job = j;
	return 0;
}

int vfs_tool_job_step(struct vfs *v, struct vfs_tool_job *j, struct buf *reply)
{
	struct meta_rmtree_stats st = {0, 0};
	int64_t until = vfs_now_ns() + TOOL_STEP_NS;
	int rc;

	do
		rc = meta_rmtree_step(j->r, &st);
	while (rc == 0 && vfs_now_ns() < until);
	if (rc == 0)
		return buf_appendf(reply, "progress %" PRIu64 " %" PRIu64 "\n",
				   st.files, st.dirs) < 0
			       ? -ENOMEM
			       : 0;
	if (rc > 0)
		rc = buf_appendf(reply,
				 "0 files %" PRIu64 " dirs %" PRIu64 "\n",
				 st.files, st.dirs);
	else
		rc = buf_appendf(reply,
				 "%d files %" PRIu64 " dirs %" PRIu64 " %s\n",
				 rc, st.files, st.dirs, strerror(-rc));
	UNUSED(v);
	return rc < 0 ? rc : 1;
}

void vfs_tool_job_free(struct vfs_tool_job *j)
{
	if (!j)
		return;
	meta_rmtree_free(j->r);
	free(j);
}
