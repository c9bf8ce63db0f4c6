/*
 * loop.c - the session loop: reads requests from /dev/fuse and runs them,
 * on as few threads as the load needs.
 *
 * Design note.
 *
 * libfuse's multi-threaded loop keeps every idle worker blocked in read(2)
 * on /dev/fuse.  The kernel wakes waiters in FIFO order, so with two or
 * more idle workers consecutive requests of a single caller land on
 * different threads: each request wakes a thread that slept longest,
 * often on the other CPU.  Measured on a 2-CPU VM, a request that does
 * nothing (getxattr of a virtual file) took 27-70 us that way against
 * 13-18 us with libfuse's single-threaded loop, where the thread that
 * answered is the one reading next.
 *
 * So here at most one thread is normally in read(2), the "reader".  It
 * runs the request it got itself; when it is done and no other thread
 * became the reader meanwhile, it reads again (the single-threaded fast
 * path: no hand-off).  A worker that finishes while another thread reads
 * parks (it does not read as well: two readers would bring the FIFO
 * rotation back).
 *
 * Concurrency comes from a watchdog (the thread that called fsop_run): it
 * ticks every WATCH_US, or when the request being run will have taken
 * WATCH_US, and when the last request was read more than WATCH_US ago
 * while no thread reads, it wakes a parked worker, or starts one (up to
 * max_threads), to become the reader.  A request that blocks (a lock
 * wait, an object store round trip, a full memory pool) thus delays the
 * requests behind it by at most ~WATCH_US.  A request that will likely
 * wait (a lock wait, fsync) calls fsop_loop_may_block first, which hands
 * the reading to another thread at once.  Reads do not: most are served
 * from memory, and handing off each large one cost a quarter of the cold
 * sequential read rate (file store).
 *
 * The watchdog ticks only while requests come; after IDLE_TICKS quiet
 * ticks it sleeps until a reader finds it asleep and wakes it (one futex
 * wake for the first request after a quiet period), or SLEEP_MS passes
 * (to notice a signal that ended the session).
 *
 * Exit: a reader that gets 0 or an error (unmount, signal) ends the loop;
 * the watchdog then cancels readers blocked in read(2) (cancellation is
 * enabled only around it, as libfuse does) and joins every worker.
 *
 * Locking: loop.lock guards every field below it; never held while a
 * request runs or a thread reads.
 */
#define FUSE_USE_VERSION 314
#include "util/common.h"
#include "fuse/fsop.h"
#include "fuse/fuse_int.h"
#include "util/log.h"
#include "util/metrics.h"
#include "vfs/vfs.h"

#include "util/buf.h"

#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#define WATCH_US 1000
#define IDLE_TICKS 100 /* 100 ms of quiet before the watchdog sleeps */
#define SLEEP_MS 200

struct worker {
	pthread_t tid;
	bool started;
	bool reading; /* in (or about to enter) read(2); cancellable */
};

struct loop {
	struct fuse_session *se;
	pthread_mutex_t lock;
	pthread_cond_t park_cond; /* parked workers */
	pthread_cond_t dog_cond;  /* the sleeping watchdog */
	/* guarded by lock: */
	struct worker *w;
	int max;	  /* capacity of w[] */
	int nthreads;	  /* started */
	int nreading;	  /* workers reading or about to */
	int nparked;	  /* waiting on park_cond */
	int nwake;	  /* parked workers asked to read */
	uint64_t taken;	  /* requests read so far */
	int64_t taken_ns; /* when the last one was read */
	bool dog_asleep;
	bool done;
	int error;
};

struct worker_arg {
	struct loop *l;
	int idx;
};

/* The loop the calling thread serves (NULL outside worker threads). */
static _Thread_local struct loop *my_loop;

int64_t fsop_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- per-opcode counts and time in the handlers (".stats") ---- */

#define OP_MAX 64

static _Atomic uint64_t op_count[OP_MAX], op_ns[OP_MAX];
static struct metric_hist op_hist[OP_MAX];

static const char *const op_name[OP_MAX] = {
	[FUSE_LOOKUP] = "lookup",	   [FUSE_FORGET] = "forget",
	[FUSE_GETATTR] = "getattr",	   [FUSE_SETATTR] = "setattr",
	[FUSE_READLINK] = "readlink",	   [FUSE_SYMLINK] = "symlink",
	[FUSE_MKNOD] = "mknod",		   [FUSE_MKDIR] = "mkdir",
	[FUSE_UNLINK] = "unlink",	   [FUSE_RMDIR] = "rmdir",
	[FUSE_RENAME] = "rename",	   [FUSE_LINK] = "link",
	[FUSE_OPEN] = "open",		   [FUSE_READ] = "read",
	[FUSE_WRITE] = "write",		   [FUSE_STATFS] = "statfs",
	[FUSE_RELEASE] = "release",	   [FUSE_FSYNC] = "fsync",
	[FUSE_SETXATTR] = "setxattr",	   [FUSE_GETXATTR] = "getxattr",
	[FUSE_LISTXATTR] = "listxattr",	   [FUSE_REMOVEXATTR] = "removexattr",
	[FUSE_FLUSH] = "flush",		   [FUSE_INIT] = "init",
	[FUSE_OPENDIR] = "opendir",	   [FUSE_READDIR] = "readdir",
	[FUSE_RELEASEDIR] = "releasedir",  [FUSE_FSYNCDIR] = "fsyncdir",
	[FUSE_GETLK] = "getlk",		   [FUSE_SETLK] = "setlk",
	[FUSE_SETLKW] = "setlkw",	   [FUSE_ACCESS] = "access",
	[FUSE_CREATE] = "create",	   [FUSE_INTERRUPT] = "interrupt",
	[FUSE_BMAP] = "bmap",		   [FUSE_DESTROY] = "destroy",
	[FUSE_IOCTL] = "ioctl",		   [FUSE_POLL] = "poll",
	[FUSE_BATCH_FORGET] = "batch_forget",
	[FUSE_FALLOCATE] = "fallocate",	   [FUSE_READDIRPLUS] = "readdirplus",
	[FUSE_RENAME2] = "rename2",	   [FUSE_LSEEK] = "lseek",
	[FUSE_COPY_FILE_RANGE] = "copy_file_range",
	[FUSE_SYNCFS] = "syncfs",	   [FUSE_TMPFILE] = "tmpfile",
};

struct vfs *fsop_alog_vfs;
_Thread_local int fsop_reply_errno;

/* Append @n bytes of @s to @out as a quoted name (no newline, no quote). */
static size_t quoted(char *out, size_t cap, const char *s, size_t n)
{
	size_t k = 0;

	if (cap < 3)
		return 0;
	out[k++] = '"';
	for (size_t i = 0; i < n && s[i] && k + 2 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		out[k++] = c < 0x20 || c == '"' || c == '\\' || c == 0x7f
				   ? '?'
				   : (char)c;
	}
	out[k++] = '"';
	out[k] = '\0';
	return k;
}

/*
 * One access-log line: "HH:MM:SS.uuuuuu [uid:U,gid:G,pid:P] op (args):
 * OK|ENAME <seconds>".  The arguments: the inode, and the name of name
 * operations or the offset and size of reads and writes.
 */
static void access_log(const struct fuse_in_header *in, const char *body,
		       size_t blen, int64_t ns)
{
	char line[1024], args[600];
	const char *name = NULL, *name2 = NULL;
	size_t skip = 0, k;
	struct timespec ts;
	struct tm tm;
	int n, e = fsop_reply_errno;

	switch (in->opcode) {
	case FUSE_LOOKUP:
	case FUSE_UNLINK:
	case FUSE_RMDIR:
	case FUSE_GETXATTR:
	case FUSE_REMOVEXATTR:
		skip = in->opcode == FUSE_GETXATTR
			       ? sizeof(struct fuse_getxattr_in)
			       : 0;
		name = body + skip;
		break;
	case FUSE_MKDIR:
		name = body + sizeof(struct fuse_mkdir_in);
		break;
	case FUSE_MKNOD:
		name = body + sizeof(struct fuse_mknod_in);
		break;
	case FUSE_CREATE:
		name = body + sizeof(struct fuse_create_in);
		break;
	case FUSE_LINK:
		name = body + sizeof(struct fuse_link_in);
		break;
	case FUSE_SYMLINK:
		name = body;
		break;
	case FUSE_RENAME:
		name = body + sizeof(struct fuse_rename_in);
		break;
	case FUSE_RENAME2:
		name = body + sizeof(struct fuse_rename2_in);
		break;
	default:
		break;
	}
	k = (size_t)snprintf(args, sizeof(args), "%llu",
			     (unsigned long long)in->nodeid);
	if (name && name >= body && name < body + blen) {
		size_t left = (size_t)(body + blen - name), l = strnlen(name, left);

		args[k++] = ',';
		k += quoted(args + k, sizeof(args) - k, name, l);
		if ((in->opcode == FUSE_RENAME || in->opcode == FUSE_RENAME2 ||
		     in->opcode == FUSE_SYMLINK) && l + 1 < left)
			name2 = name + l + 1;
		if (name2 && k + 4 < sizeof(args)) {
			args[k++] = ',';
			k += quoted(args + k, sizeof(args) - k, name2,
				    (size_t)(body + blen - name2));
		}
	} else if ((in->opcode == FUSE_READ &&
		    blen >= sizeof(struct fuse_read_in)) ||
		   (in->opcode == FUSE_WRITE &&
		    blen >= sizeof(struct fuse_write_in))) {
		uint64_t off;
		uint32_t size;

		if (in->opcode == FUSE_READ) {
			struct fuse_read_in r;

			memcpy(&r, body, sizeof(r));
			off = r.offset;
			size = r.size;
		} else {
			struct fuse_write_in w;

			memcpy(&w, body, sizeof(w));
			off = w.offset;
			size = w.size;
		}
		snprintf(args + k, sizeof(args) - k, ",%u,%llu", size,
			 (unsigned long long)off);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
		     "%02d:%02d:%02d.%06ld [uid:%u,gid:%u,pid:%u] %s (%s): %s "
		     "<%.6f>\n",
		     tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000,
		     in->uid, in->gid, in->pid,
		     in->opcode < OP_MAX && op_name[in->opcode]
			     ? op_name[in->opcode]
			     : "other",
		     args,
		     e == 0 ? "OK" : strerrorname_np(e) ? strerrorname_np(e)
							: "error",
		     (double)ns / 1e9);
	if (n > 0)
		vfs_accesslog_add(fsop_alog_vfs, line,
				  MIN((size_t)n, sizeof(line) - 1));
}

void fsop_process(struct fuse_session *se, const struct fuse_buf *buf)
{
	struct fuse_in_header in;
	int64_t t0;

	if ((buf->flags & FUSE_BUF_IS_FD) || buf->size < sizeof(in)) {
		fuse_session_process_buf(se, buf);
		return;
	}
	memcpy(&in, buf->mem, sizeof(in));
	if (in.opcode == FUSE_TMPFILE) { /* see fuse_int.h */
		struct fuse_in_header *h = buf->mem;

		h->opcode = FUSE_CREATE;
	}
	fsop_reply_errno = 0;
	t0 = fsop_mono_ns();
	fuse_session_process_buf(se, buf);
	if (fsop_alog_vfs && vfs_accesslog_on(fsop_alog_vfs) &&
	    in.nodeid != 0 && in.opcode != FUSE_INTERRUPT &&
	    !vfs_is_virtual(in.nodeid))
		access_log(&in, (const char *)buf->mem + sizeof(in),
			   MIN(buf->size, in.len) - sizeof(in),
			   fsop_mono_ns() - t0);
	if (in.opcode < OP_MAX) {
		uint64_t ns = (uint64_t)(fsop_mono_ns() - t0);

		atomic_fetch_add_explicit(&op_count[in.opcode], 1,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&op_ns[in.opcode], ns,
					  memory_order_relaxed);
		metric_observe(&op_hist[in.opcode], ns);
	}
}

int fsop_op_metrics_prom(struct buf *b)
{
	int rc = buf_appendf(
		b, "# HELP tessera_fuse_ops_total FUSE requests by operation.\n"
		   "# TYPE tessera_fuse_ops_total counter\n");

	for (int i = 0; i < OP_MAX && rc == 0; i++)
		if (op_name[i])
			rc = buf_appendf(
				b, "tessera_fuse_ops_total{op=\"%s\"} %llu\n",
				op_name[i],
				(unsigned long long)atomic_load(&op_count[i]));
	if (rc == 0)
		rc = buf_appendf(
			b, "# HELP tessera_fuse_op_duration_seconds Time in the "
			   "handler of a FUSE request, by operation.\n"
			   "# TYPE tessera_fuse_op_duration_seconds "
			   "histogram\n");
	for (int i = 0; i < OP_MAX && rc == 0; i++) {
		char lab[48];

		/* Only operations seen: 40 idle histograms are noise. */
		if (!op_name[i] || atomic_load(&op_hist[i].count) == 0)
			continue;
		snprintf(lab, sizeof(lab), "op=\"%s\"", op_name[i]);
		rc = metric_hist_prom(b, "tessera_fuse_op_duration_seconds",
				      lab, &op_hist[i]);
	}
	return rc;
}

int fsop_op_stats_text(struct buf *b)
{
	for (int i = 0; i < OP_MAX; i++) {
		uint64_t n = atomic_load(&op_count[i]);
		int rc;

		if (n == 0)
			continue;
		rc = buf_appendf(b, "fuse_op %s %llu %llu\n",
				 op_name[i] ? op_name[i] : "other",
				 (unsigned long long)n,
				 (unsigned long long)(atomic_load(&op_ns[i]) /
						      1000));
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Whether the worker should read now rather than park.  lock held. */
static bool should_read(struct loop *l)
{
	if (l->nwake > 0) {
		l->nwake--;
		return true;
	}
	return l->nreading == 0;
}

static void free_buf(void *arg)
{
	struct fuse_buf *b = arg;

	free(b->mem);
	b->mem = NULL;
}

static void *worker_main(void *arg)
{
	struct worker_arg wa = *(struct worker_arg *)arg;
	struct loop *l = wa.l;
	struct worker *me = &l->w[wa.idx];
	struct fuse_buf buf = {.mem = NULL};
	int res;

	/* cancellable only inside read(2), where no lock is held */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	free(arg);
	my_loop = l;
	pthread_cleanup_push(free_buf, &buf);
	pthread_mutex_lock(&l->lock);
	while (!l->done) {
		if (!me->reading) {
			if (!should_read(l) && buf.mem) {
				/*
				 * Parking: give the receive buffer back.  A
				 * WRITE fills it (max_write), and on a busy
				 * machine the loop starts many workers: kept
				 * buffers would hold a MiB of RSS each
				 * outside every bound (0144).
				 */
				void *m = buf.mem;

				buf.mem = NULL;
				pthread_mutex_unlock(&l->lock);
				free(m);
				pthread_mutex_lock(&l->lock);
				continue;
			}
			if (!should_read(l)) {
				l->nparked++;
				pthread_cond_wait(&l->park_cond, &l->lock);
				l->nparked--;
				continue;
			}
			me->reading = true;
			l->nreading++;
		}
		pthread_mutex_unlock(&l->lock);
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		res = fuse_session_receive_buf(l->se, &buf);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		pthread_mutex_lock(&l->lock);
		me->reading = false;
		l->nreading--;
		if (res == -EINTR)
			continue;
		if (res <= 0 || fuse_session_exited(l->se)) {
			if (res < 0 && l->error == 0)
				l->error = res;
			l->done = true;
			pthread_cond_broadcast(&l->park_cond);
			pthread_cond_signal(&l->dog_cond);
			break;
		}
		l->taken++;
		l->taken_ns = fsop_mono_ns();
		if (l->dog_asleep) {
			l->dog_asleep = false;
			pthread_cond_signal(&l->dog_cond);
		}
		pthread_mutex_unlock(&l->lock);
		fsop_process(l->se, &buf);
		pthread_mutex_lock(&l->lock);
	}
	pthread_mutex_unlock(&l->lock);
	pthread_cleanup_pop(1);
	return NULL;
}

/* Start worker number l->nthreads, reading at once.  lock held. */
static int start_worker(struct loop *l)
{
	struct worker_arg *wa = malloc(sizeof(*wa));
	sigset_t block, old;
	int idx = l->nthreads, rc;

	if (!wa)
		return -ENOMEM;
	wa->l = l;
	wa->idx = idx;
	l->w[idx].reading = true; /* counted now: no second wake for it */
	l->nreading++;
	/* signals end the session through the watchdog, not the workers */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	rc = pthread_create(&l->w[idx].tid, NULL, worker_main, wa);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		l->w[idx].reading = false;
		l->nreading--;
		free(wa);
		return log_fail(-rc, "cannot start a FUSE worker thread");
	}
	l->w[idx].started = true;
	l->nthreads++;
	return 0;
}

void fsop_deadline_after(struct timespec *ts, int64_t ns)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ns / 1000000000LL);
	ts->tv_nsec += (long)(ns % 1000000000LL);
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* One tick: add a reader if the current one is stuck.  lock held. */
static void watch(struct loop *l)
{
	if (l->nreading > 0 || l->nwake > 0 ||
	    fsop_mono_ns() - l->taken_ns < WATCH_US * 1000LL)
		return;
	if (l->nparked > 0) {
		l->nwake++;
		pthread_cond_signal(&l->park_cond);
	} else if (l->nthreads < l->max) {
		start_worker(l);
	}
}

/*
 * Next tick: when the request being run could become stuck (WATCH_US
 * after it was read), else WATCH_US from now.  lock held.
 */
static int64_t next_tick_ns(struct loop *l)
{
	int64_t now = fsop_mono_ns(), due = l->taken_ns + WATCH_US * 1000LL;

	if (l->nreading == 0 && l->nwake == 0 && due > now)
		return due - now + 1000;
	return WATCH_US * 1000LL;
}

static void watchdog(struct loop *l)
{
	uint64_t seen = l->taken;
	int quiet = 0;

	while (!l->done && !fuse_session_exited(l->se)) {
		struct timespec ts;

		if (quiet >= IDLE_TICKS && l->nreading > 0) {
			l->dog_asleep = true;
			fsop_deadline_after(&ts, SLEEP_MS * 1000000LL);
			pthread_cond_timedwait(&l->dog_cond, &l->lock, &ts);
			l->dog_asleep = false;
			quiet = 0;
			seen = l->taken;
			continue;
		}
		fsop_deadline_after(&ts, next_tick_ns(l));
		pthread_cond_timedwait(&l->dog_cond, &l->lock, &ts);
		watch(l);
		quiet = l->taken == seen ? quiet + 1 : 0;
		seen = l->taken;
	}
}

void fsop_loop_may_block(void)
{
	struct loop *l = my_loop;

	if (!l) {
		fsop_uring_may_block();
		return;
	}
	pthread_mutex_lock(&l->lock);
	if (!l->done && l->nreading == 0 && l->nwake == 0) {
		if (l->nparked > 0) {
			l->nwake++;
			pthread_cond_signal(&l->park_cond);
		} else if (l->nthreads < l->max) {
			start_worker(l);
		}
	}
	pthread_mutex_unlock(&l->lock);
}

int fsop_loop_run(struct fuse_session *se, int max_threads)
{
	struct loop l;
	pthread_condattr_t ca;
	int rc;

	memset(&l, 0, sizeof(l));
	l.se = se;
	l.max = max_threads > 0 ? max_threads : 1;
	l.w = calloc((size_t)l.max, sizeof(*l.w));
	if (!l.w)
		return -ENOMEM;
	pthread_mutex_init(&l.lock, NULL);
	pthread_cond_init(&l.park_cond, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l.dog_cond, &ca);
	pthread_condattr_destroy(&ca);

	pthread_mutex_lock(&l.lock);
	l.taken_ns = fsop_mono_ns();
	rc = start_worker(&l);
	if (rc == 0)
		watchdog(&l);
	l.done = true;
	pthread_cond_broadcast(&l.park_cond);
	for (int i = 0; i < l.nthreads; i++)
		if (l.w[i].reading)
			pthread_cancel(l.w[i].tid);
	pthread_mutex_unlock(&l.lock);
	for (int i = 0; i < l.nthreads; i++)
		pthread_join(l.w[i].tid, NULL);
	if (rc == 0)
		rc = l.error;
	pthread_cond_destroy(&l.dog_cond);
	pthread_cond_destroy(&l.park_cond);
	pthread_mutex_destroy(&l.lock);
	free(l.w);
	fuse_session_reset(se);
	return rc;
}
