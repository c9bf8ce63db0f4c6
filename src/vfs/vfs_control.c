/*
 * vfs_control.c - the control file ".control" at the root (warmup of the
 * disk cache, `tessera warmup`) and the disk-cache lines of ".stats".
 *
 * Design note.
 *
 * ".control" (inode VFS_INO_CONTROL, mode 0666, hidden from readdir) is a
 * request/response channel per open handle, opened read-write with
 * direct_io so that every read and write reaches us:
 *
 *   write  "warm INO\n" | "evict INO\n" | "check INO\n"
 *   read   "progress BLOCKS BYTES\n" ...
 *          "done ERR BLOCKS BYTES CACHED_BLOCKS CACHED_BYTES FAILED\n"
 *
 * A write starts a request (-EBUSY while one is under way on the handle;
 * -EINVAL when malformed).  Each read does the work of the next 64 MiB
 * chunk of the file (its slice list from metadata, then
 * chunk_cache_slices) and answers with one line: progress, or done after
 * the last chunk; a read with no request under way returns 0 bytes.  The
 * work thus happens in the threads of the FUSE session, one chunk per
 * request, and the client sees progress as it goes.  ERR is a positive
 * errno: ENOENT (no such inode), ENOSYS (no disk cache), EACCES (the
 * opener may not read the file: its credentials are kept from open).
 * Directories and other non-regular inodes have no data: done at once.
 *
 * Requests answered at once (the write does the work, the next read
 * returns the one answer line, "0 ..." or "-ERRNO message"):
 *
 *   clone SRC_INO DSTPARENT_INO FLAGS NAMELEN\nNAME
 *       meta_clone with the opener's credentials (`tessera clone`), after
 *       committing every open file, so buffered writes are part of the
 *       copy; answer "0 ino N inodes N chunks N slices N"
 *   checkpoint ...
 *       goes to vfs_conf.control (the mount's own requests), after every
 *       open file is committed and synced
 *   trash ... | quota ...
 *       `tessera trash restore|empty` (vfs_trash.c), `tessera quota
 *       set|delete|check` (vfs_quota.c) on a volume this host mounts
 *   info INO | summary INO DEPTH | rmr PARENT NAMELEN\nNAME
 *       `tessera info`, `summary`, `rmr` (vfs_tools.c).  An answer
 *       longer than a read is handed out across reads (read until 0
 *       bytes); rmr starts a job instead, and each read then runs it for
 *       about 100 ms and answers one progress line, or the final one
 *
 * Why requests to the mount rather than tools opening the metadata: the
 * mount is the one writer of its metadata (a replicated volume's lease is
 * the mount's, and every change must go through its wrapper) and holds
 * writes not committed yet.
 *
 * Locking: a handle's request state has its own mutex (a handle may see
 * concurrent reads); no vfs lock is held while warming.
 */
#include "util/common.h"
#include "cache/cache.h"
#include "chunk/chunk.h"
#include "meta/meta.h"
#include "util/buf.h"
#include "util/log.h"
#include "vfs/vfs_int.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#define CTL_GROUPS_MAX 64

struct vfs_ctl {
	pthread_mutex_t lock;
	/* the opener's credentials (groups copied) */
	struct meta_cred cred;
	uint32_t groups[CTL_GROUPS_MAX];
	bool has_cred;
	/* the request under way; guarded by lock */
	bool active;
	enum chunk_cache_op op;
	uint64_t ino;
	uint32_t next_chunk;
	uint32_t nchunks;
	int err;
	struct chunk_cache_report r;
	char *answer; /* an immediate request's answer, until read */
	size_t answer_len;
	size_t answer_off; /* handed out so far (long answers: many reads) */
	struct vfs_tool_job *job; /* rmr under way (vfs_tools.c) */
};

int vfs_control_open(struct vfs *v, const struct vfs_ctx *c, int flags,
		     uint64_t *fh)
{
	struct vfs_handle *h;
	struct vfs_ctl *ctl;
	int rc;

	if (flags & O_TRUNC)
		return -EACCES;
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return -ENOMEM;
	pthread_mutex_init(&ctl->lock, NULL);
	if (c) {
		ctl->cred = c->cred;
		ctl->cred.ngroups = MIN(c->cred.ngroups, CTL_GROUPS_MAX);
		if (c->cred.groups)
			memcpy(ctl->groups, c->cred.groups,
			       ctl->cred.ngroups * sizeof(uint32_t));
		ctl->cred.groups = ctl->groups;
		ctl->has_cred = true;
	}
	rc = vfs_handle_new(v, VFS_H_VIRT, VFS_INO_CONTROL, flags, &h);
	if (rc < 0) {
		vfs_control_free(ctl);
		return rc;
	}
	h->ctl = ctl;
	*fh = (uint64_t)(uintptr_t)h;
	return 0;
}

void vfs_control_free(struct vfs_ctl *ctl)
{
	if (!ctl)
		return;
	pthread_mutex_destroy(&ctl->lock);
	vfs_tool_job_free(ctl->job);
	free(ctl->answer);
	free(ctl);
}

/* Parse "OP INO\n".  0 or -EINVAL. */
static int parse_request(const char *buf, size_t len, enum chunk_cache_op *op,
			 uint64_t *ino)
{
	char line[128], word[16];
	unsigned long long n;
	char extra;

	if (len == 0 || len >= sizeof(line))
		return -EINVAL;
	memcpy(line, buf, len);
	line[len] = '\0';
	if (sscanf(line, "%15s %llu %c", word, &n, &extra) != 2)
		return -EINVAL;
	if (strcmp(word, "warm") == 0)
		*op = CHUNK_CACHE_WARM;
	else if (strcmp(word, "evict") == 0)
		*op = CHUNK_CACHE_EVICT;
	else if (strcmp(word, "check") == 0)
		*op = CHUNK_CACHE_CHECK;
	else
		return -EINVAL;
	*ino = n;
	return 0;
}

/* Start a request on @ctl (lock held). */
static void start_locked(struct vfs *v, struct vfs_ctl *ctl,
			 enum chunk_cache_op op, uint64_t ino)
{
	struct meta_attr a;
	int rc;

	memset(&ctl->r, 0, sizeof(ctl->r));
	ctl->active = true;
	ctl->op = op;
	ctl->ino = ino;
	ctl->next_chunk = ctl->nchunks = 0;
	ctl->err = 0;
	rc = vfs_is_virtual(ino) ? -ENOENT : meta_getattr(v->m, ino, &a);
	if (rc == 0 && ctl->has_cred)
		rc = meta_access(v->m, &ctl->cred, ino, META_MAY_READ);
	if (rc < 0) {
		ctl->err = -rc;
		return;
	}
	if (S_ISREG(a.mode))
		ctl->nchunks = (uint32_t)((a.length + TESSERA_CHUNK_SIZE - 1) /
					  TESSERA_CHUNK_SIZE);
}

/* ---- immediate requests ---- */

#define CTL_REQ_MAX 8192

static int ctl_clone(struct vfs *v, const struct meta_cred *c, const char *req,
		     size_t n, struct buf *reply)
{
	unsigned long long src, dst, flags, nlen;
	struct meta_clone_stats st;
	struct meta_attr a;
	char name[TESSERA_NAME_MAX + 1];
	const char *nl = memchr(req, '\n', n);
	int used = 0, rc;

	if (!nl || sscanf(req, "%llu %llu %llu %llu%n", &src, &dst, &flags,
			  &nlen, &used) != 4 ||
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
		rc = meta_clone(v->m, c, src, dst, name, (int)flags, &a, &st);
	if (rc < 0)
		return buf_appendf(reply, "%d %s\n", rc, strerror(-rc));
	return buf_appendf(reply,
			   "0 ino %" PRIu64 " inodes %" PRIu64
			   " chunks %" PRIu64 " slices %" PRIu64 "\n",
			   a.ino, st.inodes, st.chunks, st.slices);
}

static int ctl_hook(struct vfs *v, const struct meta_cred *c, const char *cmd,
		    const char *req, size_t n, struct buf *reply)
{
	struct buf text = BUF_INIT;
	struct vfs_ctx ctx;
	int rc;

	if (!v->conf.control)
		return buf_appendf(reply, "-%d unknown request '%s'\n", ENOSYS,
				   cmd);
	memset(&ctx, 0, sizeof(ctx));
	if (c)
		ctx.cred = *c;
	rc = vfs_files_commit_all(v, true);
	if (rc == 0)
		rc = meta_sync(v->m);
	if (rc == 0)
		rc = v->conf.control(v->conf.control_arg, c ? &ctx : NULL, cmd,
				     req, n, &text);
	if (rc < 0)
		rc = buf_appendf(reply, "%d %s\n", rc,
				 text.len ? text.data : strerror(-rc));
	else
		rc = buf_appendf(reply, "0 %s\n", text.len ? text.data : "ok");
	buf_release(&text);
	return rc;
}

static bool is_word(const char *p, size_t wl, const char *w)
{
	return wl == strlen(w) && memcmp(p, w, wl) == 0;
}

/* clone or checkpoint: do it now, keep the answer for the next read. */
static ssize_t immediate(struct vfs *v, struct vfs_ctl *ctl, const char *buf,
			 size_t len, size_t wl)
{
	const struct meta_cred *c = ctl->has_cred ? &ctl->cred : NULL;
	struct vfs_tool_job *job = NULL;
	struct buf reply = BUF_INIT;
	char cmd[32];
	const char *rest = buf + (wl < len ? wl + 1 : wl);
	size_t rlen = len - (size_t)(rest - buf);
	int rc;

	if (wl == 0 || wl >= sizeof(cmd) || len > CTL_REQ_MAX)
		return -EINVAL;
	memcpy(cmd, buf, wl);
	cmd[wl] = '\0';
	if (strcmp(cmd, "clone") == 0)
		rc = ctl_clone(v, c, rest, rlen, &reply);
	else if (strcmp(cmd, "trash") == 0)
		rc = vfs_ctl_trash(v, c, rest, rlen, &reply);
	else if (strcmp(cmd, "quota") == 0)
		rc = vfs_ctl_quota(v, c, rest, rlen, &reply);
	else if (strcmp(cmd, "info") == 0)
		rc = vfs_tool_info(v, c, rest, rlen, &reply);
	else if (strcmp(cmd, "summary") == 0)
		rc = vfs_tool_summary(v, c, rest, rlen, &reply);
	else if (strcmp(cmd, "rmr") == 0)
		rc = ctl->job ? -EBUSY
			      : vfs_tool_rmr(v, c, rest, rlen, &reply, &job);
	else
		rc = ctl_hook(v, c, cmd, rest, rlen, &reply);
	if (rc < 0) {
		buf_release(&reply);
		return rc;
	}
	pthread_mutex_lock(&ctl->lock);
	free(ctl->answer);
	ctl->answer = NULL;
	ctl->answer_off = 0;
	if (reply.len)
		ctl->answer = buf_detach(&reply, &ctl->answer_len);
	buf_release(&reply);
	if (job)
		ctl->job = job;
	pthread_mutex_unlock(&ctl->lock);
	return (ssize_t)len;
}

ssize_t vfs_control_write(struct vfs *v, struct vfs_handle *h, const void *buf,
			  size_t len)
{
	struct vfs_ctl *ctl = h->ctl;
	const char *p = buf;
	enum chunk_cache_op op;
	uint64_t ino;
	size_t wl = 0;
	int rc;

	while (wl < len && p[wl] != ' ' && p[wl] != '\n')
		wl++;
	if (is_word(p, wl, "clone") || is_word(p, wl, "checkpoint") ||
	    is_word(p, wl, "info") || is_word(p, wl, "summary") ||
	    is_word(p, wl, "rmr") || is_word(p, wl, "trash") ||
	    is_word(p, wl, "quota"))
		return immediate(v, ctl, p, len, wl);
	rc = parse_request(buf, len, &op, &ino);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&ctl->lock);
	if (ctl->active)
		rc = -EBUSY;
	else
		start_locked(v, ctl, op, ino);
	pthread_mutex_unlock(&ctl->lock);
	return rc < 0 ? rc : (ssize_t)len;
}

/* Work on the next chunk of the request (lock held). */
static void step_locked(struct vfs *v, struct vfs_ctl *ctl)
{
	struct slice *s = NULL;
	size_t n = 0;
	int rc;

	rc = meta_read_chunk(v->m, ctl->ino, ctl->next_chunk, &s, &n);
	if (rc == 0 && n > 0)
		rc = chunk_cache_slices(v->cs, ctl->op, s, n, &ctl->r);
	free(s);
	if (rc < 0)
		ctl->err = -rc;
	ctl->next_chunk++;
}

/* The next line of the job under way (lock held); frees it when done. */
static int job_step_locked(struct vfs *v, struct vfs_ctl *ctl)
{
	struct buf reply = BUF_INIT;
	int rc = vfs_tool_job_step(v, ctl->job, &reply);

	if (rc > 0) {
		vfs_tool_job_free(ctl->job);
		ctl->job = NULL;
	}
	if (rc >= 0 && reply.len) {
		ctl->answer = buf_detach(&reply, &ctl->answer_len);
		ctl->answer_off = 0;
	}
	buf_release(&reply);
	return rc < 0 ? rc : 0;
}

ssize_t vfs_control_read(struct vfs *v, struct vfs_handle *h, void *buf,
			 size_t len)
{
	struct vfs_ctl *ctl = h->ctl;
	char line[160];
	int n = 0;

	pthread_mutex_lock(&ctl->lock);
	if (!ctl->answer && ctl->job) {
		int rc = job_step_locked(v, ctl);

		if (rc < 0) {
			pthread_mutex_unlock(&ctl->lock);
			return rc;
		}
	}
	if (ctl->answer) {
		size_t n_ans = MIN(len, ctl->answer_len - ctl->answer_off);

		memcpy(buf, ctl->answer + ctl->answer_off, n_ans);
		ctl->answer_off += n_ans;
		if (ctl->answer_off == ctl->answer_len) {
			free(ctl->answer);
			ctl->answer = NULL;
			ctl->answer_off = 0;
		}
		pthread_mutex_unlock(&ctl->lock);
		return (ssize_t)n_ans;
	}
	if (ctl->active && !ctl->err && ctl->next_chunk < ctl->nchunks)
		step_locked(v, ctl);
	if (!ctl->active)
		n = 0;
	else if (!ctl->err && ctl->next_chunk < ctl->nchunks)
		n = snprintf(line, sizeof(line),
			     "progress %" PRIu64 " %" PRIu64 "\n",
			     ctl->r.blocks, ctl->r.bytes);
	else {
		n = snprintf(line, sizeof(line),
			     "done %d %" PRIu64 " %" PRIu64 " %" PRIu64
			     " %" PRIu64 " %" PRIu64 "\n",
			     ctl->err, ctl->r.blocks, ctl->r.bytes,
			     ctl->r.cached_blocks, ctl->r.cached_bytes,
			     ctl->r.failed);
		ctl->active = false;
	}
	pthread_mutex_unlock(&ctl->lock);
	if ((size_t)n > len)
		return -EINVAL; /* lines are short: read with 256 bytes */
	memcpy(buf, line, (size_t)n);
	return n;
}

int vfs_cache_stats_text(struct vfs *v, struct buf *b)
{
	struct cache *c = chunk_disk_cache(v->cs);
	struct cache_stats st;

	if (!c)
		return 0;
	cache_get_stats(c, &st);
	return buf_appendf(
		b,
		"cache_hits %" PRIu64 "\ncache_hit_bytes %" PRIu64
		"\ncache_misses %" PRIu64 "\ncache_writes %" PRIu64
		"\ncache_write_bytes %" PRIu64 "\ncache_drops %" PRIu64
		"\ncache_evictions %" PRIu64 "\ncache_evicted_bytes %" PRIu64
		"\ncache_corrupt %" PRIu64 "\ncache_used_bytes %" PRIu64
		"\ncache_blocks %" PRIu64 "\ncache_staged %" PRIu64
		"\ncache_staged_bytes %" PRIu64 "\ncache_uploads %" PRIu64
		"\ncache_scanning %d\n",
		st.hits, st.hit_bytes, st.misses, st.writes, st.write_bytes,
		st.drops + chunk_cache_queue_drops(v->cs), st.evictions,
		st.evicted_bytes, st.corrupt, st.used_bytes, st.blocks,
		st.staged, st.staged_bytes, st.uploads, (int)st.scanning);
}
