/*
 * vfs_accesslog.c - ".accesslog": one line per FUSE request while someone
 * reads it.
 *
 * Each open handle is a reader with its own queue (bounded: a reader that
 * falls 4 MiB behind loses lines, and is told how many bytes it lost).
 * fuse/ formats the lines (vfs_accesslog_add) only while a reader exists,
 * so an unread access log costs one atomic load per request.  A read waits
 * up to a second for lines, then returns "#\n" so that a FUSE worker is
 * never held longer and a reader that went away is released soon.
 */
#include "util/common.h"
#include "util/buf.h"
#include "vfs/vfs_int.h"

#include <fcntl.h>
#include <time.h>

#define ALOG_QUEUE_MAX (4 * MiB)
#define ALOG_WAIT_MS 1000

struct vfs_alog {
	struct vfs_alog *next;
	struct buf q;	/* lines; [head, q.len) unread */
	size_t head;
	uint64_t lost; /* bytes dropped since the last read */
};

bool vfs_accesslog_on(struct vfs *v)
{
	return atomic_load_explicit(&v->alog_n, memory_order_relaxed) > 0;
}

void vfs_accesslog_add(struct vfs *v, const char *line, size_t n)
{
	if (!vfs_accesslog_on(v))
		return;
	pthread_mutex_lock(&v->alog_lock);
	for (struct vfs_alog *r = v->alog; r; r = r->next) {
		if (r->head > 0 && r->head >= r->q.len / 2) {
			memmove(r->q.data, r->q.data + r->head,
				r->q.len - r->head);
			r->q.len -= r->head;
			r->head = 0;
		}
		if (r->q.len + n > ALOG_QUEUE_MAX ||
		    buf_append(&r->q, line, n) < 0)
			r->lost += n;
	}
	pthread_cond_broadcast(&v->alog_cond);
	pthread_mutex_unlock(&v->alog_lock);
}

int vfs_accesslog_open(struct vfs *v, int flags, uint64_t *fh)
{
	struct vfs_handle *h;
	struct vfs_alog *r;
	int rc;

	if ((flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	rc = vfs_handle_new(v, VFS_H_VIRT, VFS_INO_ACCESSLOG, flags, &h);
	if (rc < 0) {
		free(r);
		return rc;
	}
	h->alog = r;
	pthread_mutex_lock(&v->alog_lock);
	r->next = v->alog;
	v->alog = r;
	atomic_fetch_add(&v->alog_n, 1);
	pthread_mutex_unlock(&v->alog_lock);
	*fh = (uint64_t)(uintptr_t)h;
	return 0;
}

ssize_t vfs_accesslog_read(struct vfs *v, struct vfs_handle *h, void *out,
			   size_t len)
{
	struct vfs_alog *r = h->alog;
	struct timespec dl;
	size_t n = 0;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += ALOG_WAIT_MS / 1000;
	pthread_mutex_lock(&v->alog_lock);
	while (r->head == r->q.len && !r->lost)
		if (pthread_cond_timedwait(&v->alog_cond, &v->alog_lock,
					   &dl) == ETIMEDOUT)
			break;
	if (r->lost && len >= 64) {
		n = (size_t)snprintf(out, len, "# lost %llu bytes\n",
				     (unsigned long long)r->lost);
		r->lost = 0;
	}
	if (r->head < r->q.len) {
		size_t take = MIN(len - n, r->q.len - r->head);

		/* whole lines only, unless one line is longer than @len */
		while (take > 0 && take < r->q.len - r->head &&
		       r->q.data[r->head + take - 1] != '\n')
			take--;
		if (take == 0 && n == 0)
			take = MIN(len, r->q.len - r->head);
		memcpy((char *)out + n, r->q.data + r->head, take);
		r->head += take;
		n += take;
	}
	pthread_mutex_unlock(&v->alog_lock);
	if (n == 0 && len >= 2) {
		memcpy(out, "#\n", 2);
		n = 2;
	}
	return (ssize_t)n;
}

void vfs_accesslog_close(struct vfs *v, struct vfs_handle *h)
{
	struct vfs_alog *r = h->alog, **pp;

	if (!r)
		return;
	pthread_mutex_lock(&v->alog_lock);
	for (pp = &v->alog; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			atomic_fetch_sub(&v->alog_n, 1);
			break;
		}
	pthread_mutex_unlock(&v->alog_lock);
	buf_release(&r->q);
	free(r);
	h->alog = NULL;
}
