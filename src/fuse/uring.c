/*
 * uring.c - FUSE over io_uring: requests through per-CPU rings instead of
 * read(2)/writev(2) on /dev/fuse (Linux 6.14+, fuse.enable_uring=Y).
 *
 * Design note.
 *
 * Why: on a VM every request that wakes a thread on another CPU pays an
 * inter-processor interrupt each way.  Measured on the 2-CPU bench VM, an
 * ioctl that the mount answers with ENOSYS took 37-43 us through
 * /dev/fuse, and 7 us when the caller and the mount's thread were pinned
 * to the same CPU.  With io_uring the kernel queues each request on the
 * ring of the CPU the caller runs on, and that ring's thread (pinned to
 * the CPU) answers it there.
 *
 * libfuse 3.14 (Debian 12) has no io_uring support, but it lets the
 * session's transport be replaced (fuse_session_custom_io): read and
 * writev hooks.  So the protocol part lives here, and libfuse still
 * decodes requests and encodes replies:
 *
 *   - The read hook passes /dev/fuse through; it notes FUSE_INIT and
 *     whether the kernel offers FUSE_OVER_IO_URING.  The writev hook adds
 *     FUSE_OVER_IO_URING to the INIT reply (libfuse 3.14 does not know the
 *     flag), then starts one thread per CPU, each with its own ring of
 *     UR_DEPTH entries (a 4 KiB header page, then a max_write payload).
 *   - A ring entry that completes holds a request in the split layout
 *     (fuse_in_header and the op's fixed struct in the header page, names
 *     and data in the payload).  The header page sits right before the
 *     payload, so moving the header and the op struct down to touch the
 *     payload (at most 168 bytes) gives the layout libfuse decodes,
 *     without copying the data.  The op struct's size is the request
 *     length minus the header and the payload.
 *   - A reply (the writev hook, from whichever thread replies) whose
 *     unique belongs to a ring entry is copied into that entry's payload,
 *     its header set, and COMMIT_AND_FETCH queued on the entry's ring,
 *     which hands the reply over and re-arms the entry.  Other writes
 *     (notifications, replies to requests that came by /dev/fuse) go to
 *     /dev/fuse.  FORGET and INTERRUPT always come by /dev/fuse, so the
 *     classic loop keeps running next to the rings.
 *
 * A ring thread runs its requests itself (that is the point: no hand-off).
 * A request that may block long (a lock wait, fsync, an object store round
 * trip) calls fsop_loop_may_block() first; on a ring thread that starts a
 * helper that takes the ring over while the blocked thread finishes its
 * request and then exits (see ur_may_block).  Without that, a lock waiter
 * would hold its ring, and the unlock of the holder, queued behind it on
 * the same CPU, would never run.
 *
 * Fallback: any failure before the rings are registered (no kernel
 * support, ring setup error) leaves the session on /dev/fuse; the kernel
 * switches to the rings only when every CPU's ring has an entry waiting.
 *
 * Locking: q->lock guards the SQ of q's ring (replies may come from any
 * thread) and q->owner; entry fields are owned by the thread serving the
 * entry's request.  p->lock guards start-up and the set of threads.
 */
#define FUSE_USE_VERSION 314
#include "util/common.h"
#include "fuse/fsop.h"
#include "fuse/fuse_int.h"
#include "util/log.h"

#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

/* uapi of FUSE over io_uring (linux/fuse.h 7.42; Debian 12's is older) */
#define UR_FUSE_OVER_IO_URING (1ULL << 41)
#define UR_CMD_REGISTER 1
#define UR_CMD_COMMIT_AND_FETCH 2

struct ur_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

struct ur_req_header {
	char in_out[128];
	char op_in[128];
	struct ur_ent_in_out ent;
};

struct ur_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

#define UR_DEPTH 4
#define UR_HDR_PAGE 4096
#define UR_FIXED_MAX 128

struct ur_ent {
	struct ur_queue *q;
	char *mem; /* UR_HDR_PAGE + payload_max, from mmap */
	struct ur_req_header *hdr;
	char *payload;
	struct iovec iov[2];
	_Atomic uint64_t unique; /* request being served; 0: none */
	uint64_t commit_id;
};

struct ur_queue {
	struct ur_pool *p;
	int qid;
	struct io_uring ring;
	bool ring_ok;
	pthread_mutex_t lock;
	_Atomic int owner_gen;	       /* bumped when a helper takes over */
	_Atomic int64_t busy_since_ns; /* the owner's request began; 0 idle */
	int64_t retired_at;	       /* busy_since_ns the dog acted on */
	bool want_owner;	       /* p->lock: a thread should take it */
	bool setup_done;	       /* p->lock */
	struct ur_ent ent[UR_DEPTH];
};

struct ur_pool {
	struct fuse_session *se;
	int fd;
	int nq;
	size_t payload_max;
	struct ur_queue *q;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int nthreads; /* ring threads alive */
	int nparked;  /* ring threads without a ring */
	int nwake;    /* parked threads signalled */
	pthread_cond_t park_cond;
	int registered;
	int failed;
	bool stop;
	_Atomic bool on; /* the rings serve requests */
	pthread_t dog;
	bool dog_started;
	pthread_cond_t dog_cond;
	_Atomic bool dog_asleep;
	_Atomic int64_t last_start_ns;
	uint64_t init_unique;
	bool offered;
};

static struct ur_pool *g_pool;
/* The queue the calling thread owns, and the owner generation it owns it
 * in (NULL on other threads). */
static _Thread_local struct ur_queue *my_queue;
static _Thread_local int my_gen;

#define UR_WATCH_NS 1000000LL	  /* a request this long gets a helper */
#define UR_DOG_IDLE_NS 100000000LL /* no request for this long: sleep */

/* Whether the calling thread owns @q now (its replies may be batched). */
static bool owns(const struct ur_queue *q)
{
	return my_queue == q && my_gen == atomic_load(&q->owner_gen);
}

bool fsop_uring_available(void)
{
	char c = 'N';
	FILE *f = fopen("/sys/module/fuse/parameters/enable_uring", "r");

	if (!f)
		return false;
	if (fread(&c, 1, 1, f) != 1)
		c = 'N';
	fclose(f);
	return c == 'Y' || c == 'y' || c == '1';
}

static struct ur_ent *ent_of_unique(struct ur_pool *p, uint64_t unique)
{
	for (int i = 0; i < p->nq; i++)
		for (int j = 0; j < UR_DEPTH; j++)
			if (atomic_load(&p->q[i].ent[j].unique) == unique)
				return &p->q[i].ent[j];
	return NULL;
}

/* Queue a command for @e on its ring.  q->lock held. */
static int queue_cmd_locked(struct ur_ent *e, uint32_t op)
{
	struct ur_queue *q = e->q;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	struct ur_cmd_req *cmd;

	if (!sqe)
		return -EBUSY;
	memset(sqe, 0, 2 * sizeof(*sqe)); /* SQE128 */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = q->p->fd;
	sqe->cmd_op = op;
	if (op == UR_CMD_REGISTER) {
		sqe->addr = (uint64_t)(uintptr_t)e->iov;
		sqe->len = 2;
	}
	io_uring_sqe_set_data(sqe, e);
	cmd = (struct ur_cmd_req *)sqe->cmd;
	cmd->qid = (uint16_t)q->qid;
	cmd->commit_id = op == UR_CMD_REGISTER ? 0 : e->commit_id;
	return 0;
}

/* Hand the reply in @iov to the ring entry @e. */
static ssize_t ring_reply(struct ur_ent *e, const struct iovec *iov,
			  int count)
{
	struct ur_queue *q = e->q;
	const struct fuse_out_header *out = iov[0].iov_base;
	size_t len = 0, total = 0;
	int rc;

	for (int i = 0; i < count; i++)
		total += iov[i].iov_len;
	for (int i = 1; i < count; i++) {
		if (len + iov[i].iov_len > q->p->payload_max)
			return -EINVAL;
		memmove(e->payload + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	memcpy(e->hdr->in_out, out, sizeof(*out));
	memset(&e->hdr->ent, 0, sizeof(e->hdr->ent));
	e->hdr->ent.payload_sz = (uint32_t)len;
	e->hdr->ent.commit_id = e->commit_id;
	atomic_store(&e->unique, 0);
	pthread_mutex_lock(&q->lock);
	rc = queue_cmd_locked(e, UR_CMD_COMMIT_AND_FETCH);
	/* The owner submits its own replies in a batch after the CQEs. */
	if (rc == 0 && !owns(q))
		rc = io_uring_submit(&q->ring);
	pthread_mutex_unlock(&q->lock);
	if (rc < 0) {
		log_error("cannot answer a FUSE request on ring %d: %s",
			  q->qid, strerror(-rc));
		return rc;
	}
	return (ssize_t)total;
}

/* ---- the rings ---- */

/*
 * Turn the request in @e into libfuse's layout and run it.  The header
 * page ends where the payload starts: move fuse_in_header and the op
 * struct down against the payload.
 */
static void run_request(struct ur_pool *p, struct ur_ent *e)
{
	struct fuse_in_header in;
	uint32_t psz = e->hdr->ent.payload_sz;
	size_t fixed;
	char *start;
	struct fuse_buf buf;

	memcpy(&in, e->hdr->in_out, sizeof(in));
	e->commit_id = e->hdr->ent.commit_id;
	if (in.len < sizeof(in) + psz ||
	    in.len - sizeof(in) - psz > UR_FIXED_MAX) {
		/* not the layout we know: answer EIO rather than guess */
		struct fuse_out_header out = {.len = sizeof(out),
					      .error = -EIO,
					      .unique = in.unique};
		struct iovec iov = {.iov_base = &out, .iov_len = sizeof(out)};

		log_error("FUSE ring request %u of %u bytes with a %u byte "
			  "payload: answered EIO",
			  in.opcode, in.len, psz);
		atomic_store(&e->unique, in.unique);
		ring_reply(e, &iov, 1);
		return;
	}
	fixed = in.len - sizeof(in) - psz;
	start = e->payload - fixed - sizeof(in);
	memmove(e->payload - fixed, e->hdr->op_in, fixed);
	memcpy(start, &in, sizeof(in));
	atomic_store(&e->unique, in.unique);
	memset(&buf, 0, sizeof(buf));
	buf.mem = start;
	buf.size = in.len;
	fsop_process(p->se, &buf);
}

static void *ring_main(void *arg);

/*
 * Start a ring thread for @q, or wake a parked one to take it (p->lock
 * held).  Threads never exit before the session ends: the kernel runs a
 * ring command's completion in the thread that submitted it, and fails
 * it (ECANCELED) once that thread is gone.
 */
static int want_owner_locked(struct ur_queue *q)
{
	struct ur_pool *p = q->p;
	pthread_t tid;
	pthread_attr_t a;
	sigset_t block, old;
	int rc;

	q->want_owner = true;
	if (p->nparked > p->nwake) {
		p->nwake++;
		pthread_cond_signal(&p->park_cond);
		return 0;
	}
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	sigfillset(&block);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	rc = pthread_create(&tid, &a, ring_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
	if (rc != 0)
		return -rc;
	p->nthreads++;
	return 0;
}

/*
 * Give ring @q to another thread: its owner finishes the request it runs
 * and parks.  p->lock held.
 */
static void retire_owner_locked(struct ur_pool *p, struct ur_queue *q)
{
	pthread_mutex_lock(&q->lock);
	atomic_fetch_add(&q->owner_gen, 1);
	/* replies the old owner batched must go out now */
	io_uring_submit(&q->ring);
	pthread_mutex_unlock(&q->lock);
	if (!p->stop && want_owner_locked(q) < 0)
		log_error("cannot start a FUSE ring thread");
}

void fsop_uring_may_block(void)
{
	struct ur_queue *q = my_queue;
	struct ur_pool *p = g_pool;

	if (!q || !p || !owns(q))
		return;
	pthread_mutex_lock(&p->lock);
	if (owns(q))
		retire_owner_locked(p, q);
	pthread_mutex_unlock(&p->lock);
}

/*
 * The watchdog: a request that has run UR_WATCH_NS without calling
 * fsop_uring_may_block gets its ring handed to a new thread, so the
 * requests queued behind it on that CPU go on.  It ticks every ms while
 * requests come and sleeps after UR_DOG_IDLE_NS without one (the next
 * request wakes it).
 */
static void *dog_main(void *arg)
{
	struct ur_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		int64_t now = fsop_mono_ns();
		struct timespec ts;

		for (int i = 0; i < p->nq; i++) {
			struct ur_queue *q = &p->q[i];
			int64_t b = atomic_load(&q->busy_since_ns);

			if (b && now - b > UR_WATCH_NS && q->retired_at != b) {
				q->retired_at = b;
				retire_owner_locked(p, q);
			}
		}
		if (now - atomic_load(&p->last_start_ns) > UR_DOG_IDLE_NS) {
			atomic_store(&p->dog_asleep, true);
			fsop_deadline_after(&ts, 1000000000LL);
		} else {
			fsop_deadline_after(&ts, UR_WATCH_NS);
		}
		pthread_cond_timedwait(&p->dog_cond, &p->lock, &ts);
		atomic_store(&p->dog_asleep, false);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static int setup_queue(struct ur_pool *p, struct ur_queue *q)
{
	struct io_uring_params prm;
	int rc;

	memset(&prm, 0, sizeof(prm));
	prm.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE;
	prm.cq_entries = 4 * UR_DEPTH;
	rc = io_uring_queue_init_params(2 * UR_DEPTH, &q->ring, &prm);
	if (rc < 0)
		return rc;
	q->ring_ok = true;
	for (int j = 0; j < UR_DEPTH; j++) {
		struct ur_ent *e = &q->ent[j];
		size_t sz = UR_HDR_PAGE + p->payload_max;

		e->q = q;
		e->mem = mmap(NULL, sz, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (e->mem == MAP_FAILED) {
			e->mem = NULL;
			return -ENOMEM;
		}
		e->hdr = (struct ur_req_header *)(e->mem + UR_HDR_PAGE -
						  sizeof(struct ur_req_header));
		e->payload = e->mem + UR_HDR_PAGE;
		e->iov[0].iov_base = e->hdr;
		e->iov[0].iov_len = sizeof(struct ur_req_header);
		e->iov[1].iov_base = e->payload;
		e->iov[1].iov_len = p->payload_max;
		rc = queue_cmd_locked(e, UR_CMD_REGISTER);
		if (rc < 0)
			return rc;
	}
	rc = io_uring_submit(&q->ring);
	return rc < 0 ? rc : 0;
}

/* Serve ring @q as its owner until another thread takes it over. */
static void serve(struct ur_pool *p, struct ur_queue *q)
{
	my_queue = q;
	while (owns(q)) {
		struct io_uring_cqe *cqe;
		struct ur_ent *e;
		int rc, res;

		rc = io_uring_wait_cqe(&q->ring, &cqe);
		if (rc == -EINTR)
			continue;
		if (rc < 0 || p->stop)
			break;
		/* one CQE at a time, marked seen before it runs: a helper
		 * that takes over meanwhile must not see it again */
		while (owns(q) && io_uring_peek_cqe(&q->ring, &cqe) == 0) {
			e = io_uring_cqe_get_data(cqe);
			res = cqe->res;
			io_uring_cqe_seen(&q->ring, cqe);
			if (!e)
				continue; /* the NOP of fsop_uring_stop */
			if (res == -EAGAIN || res == -EINTR) {
				pthread_mutex_lock(&q->lock);
				queue_cmd_locked(e, UR_CMD_REGISTER);
				pthread_mutex_unlock(&q->lock);
				continue;
			}
			if (res < 0) {
				if (res != -ENOTCONN)
					log_warn("FUSE ring %d: %s", q->qid,
						 strerror(-res));
				continue;
			}
			int64_t now = fsop_mono_ns();

			atomic_store(&q->busy_since_ns, now);
			atomic_store(&p->last_start_ns, now);
			if (atomic_load(&p->dog_asleep)) {
				pthread_mutex_lock(&p->lock);
				pthread_cond_signal(&p->dog_cond);
				pthread_mutex_unlock(&p->lock);
			}
			run_request(p, e);
			if (owns(q))
				atomic_store(&q->busy_since_ns, 0);
		}
		pthread_mutex_lock(&q->lock);
		io_uring_submit(&q->ring);
		pthread_mutex_unlock(&q->lock);
	}
	my_queue = NULL;
}

/* Set up ring @q (its first owner does).  0 or -errno. */
static int first_owner_setup(struct ur_pool *p, struct ur_queue *q)
{
	int rc;

	pthread_mutex_lock(&q->lock);
	rc = q->ring_ok ? 0 : setup_queue(p, q);
	pthread_mutex_unlock(&q->lock);
	if (rc < 0)
		log_warn("FUSE over io_uring: ring %d: %s", q->qid,
			 strerror(-rc));
	return rc;
}

static void *ring_main(void *arg)
{
	struct ur_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct ur_queue *q = NULL;
		cpu_set_t set;

		for (int i = 0; i < p->nq && !q; i++)
			if (p->q[i].want_owner)
				q = &p->q[i];
		if (!q) {
			p->nparked++;
			pthread_cond_wait(&p->park_cond, &p->lock);
			p->nparked--;
			if (p->nwake > 0)
				p->nwake--;
			continue;
		}
		q->want_owner = false;
		my_gen = atomic_load(&q->owner_gen);
		pthread_mutex_unlock(&p->lock);
		CPU_ZERO(&set);
		CPU_SET(q->qid, &set);
		sched_setaffinity(0, sizeof(set), &set);
		if (!q->setup_done) {
			int rc = first_owner_setup(p, q);

			pthread_mutex_lock(&p->lock);
			q->setup_done = true;
			if (rc < 0)
				p->failed++;
			p->registered++;
			pthread_cond_broadcast(&p->cond);
			pthread_mutex_unlock(&p->lock);
			if (rc < 0) {
				pthread_mutex_lock(&p->lock);
				continue;
			}
		}
		serve(p, q);
		pthread_mutex_lock(&p->lock);
	}
	p->nthreads--;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* After the INIT reply: start the rings. */
static void start_rings(struct ur_pool *p)
{
	pthread_mutex_lock(&p->lock);
	atomic_store(&p->last_start_ns, fsop_mono_ns());
	if (pthread_create(&p->dog, NULL, dog_main, p) == 0)
		p->dog_started = true;
	for (int i = 0; i < p->nq; i++)
		if (want_owner_locked(&p->q[i]) < 0)
			p->failed++, p->registered++;
	pthread_mutex_unlock(&p->lock);
}

/* ---- the session's transport ---- */

static ssize_t ur_read(int fd, void *buf, size_t len, void *ud)
{
	struct ur_pool *p = g_pool;
	ssize_t r = read(fd, buf, len);

	UNUSED(ud);
	if (p && r >= (ssize_t)(sizeof(struct fuse_in_header) +
				sizeof(struct fuse_init_in))) {
		const struct fuse_in_header *in = buf;
		const struct fuse_init_in *ii = (const void *)(in + 1);

		if (in->opcode == FUSE_INIT) {
			p->init_unique = in->unique;
			p->offered =
				(ii->flags & FUSE_INIT_EXT) &&
				((uint64_t)ii->flags2 << 32 &
				 UR_FUSE_OVER_IO_URING);
		}
	}
	return r;
}

static ssize_t ur_writev(int fd, struct iovec *iov, int count, void *ud)
{
	struct ur_pool *p = g_pool;
	struct fuse_out_header *out = iov[0].iov_base;
	bool init = false;
	ssize_t r;

	UNUSED(ud);
	if (p && out->unique != 0 && atomic_load(&p->on)) {
		struct ur_ent *e = ent_of_unique(p, out->unique);

		if (e)
			return ring_reply(e, iov, count);
	}
	if (p && out->unique == p->init_unique && out->error == 0 &&
	    p->offered && count >= 2 &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, flags2) +
				      sizeof(uint32_t)) {
		struct fuse_init_out *io = iov[1].iov_base;

		io->flags |= FUSE_INIT_EXT;
		io->flags2 |= (uint32_t)(UR_FUSE_OVER_IO_URING >> 32);
		p->payload_max = MAX((size_t)io->max_write,
				     (size_t)io->max_pages * 4096);
		p->payload_max = MAX(p->payload_max, (size_t)8192);
		init = true;
	}
	r = writev(fd, iov, count);
	if (r < 0)
		return -errno;
	if (init) {
		atomic_store(&p->on, true);
		start_rings(p);
	}
	return r;
}

int fsop_uring_attach(struct fuse_session *se)
{
	static const struct fuse_custom_io io = {
		.read = ur_read,
		.writev = ur_writev,
	};
	struct ur_pool *p;
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	pthread_condattr_t ca;
	int rc;

	if (ncpu < 1 || ncpu > 1024)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->q = calloc((size_t)ncpu, sizeof(*p->q));
	if (!p->q) {
		free(p);
		return -ENOMEM;
	}
	p->se = se;
	p->fd = fuse_session_fd(se);
	p->nq = (int)ncpu;
	p->init_unique = UINT64_MAX;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_cond_init(&p->dog_cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&p->park_cond, NULL);
	for (int i = 0; i < p->nq; i++) {
		p->q[i].p = p;
		p->q[i].qid = i;
		pthread_mutex_init(&p->q[i].lock, NULL);
	}
	rc = fuse_session_custom_io(se, &io, p->fd);
	if (rc < 0) {
		free(p->q);
		free(p);
		return rc;
	}
	g_pool = p;
	return 0;
}

bool fsop_uring_serving(void)
{
	struct ur_pool *p = g_pool;
	bool on;

	if (!p)
		return false;
	pthread_mutex_lock(&p->lock);
	on = atomic_load(&p->on) && p->registered == p->nq && p->failed == 0;
	pthread_mutex_unlock(&p->lock);
	return on;
}

void fsop_uring_stop(void)
{

	struct ur_pool *p = g_pool;
	struct timespec ts;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	/* wake the ring threads: a NOP on each ring */
	for (int i = 0; i < p->nq; i++) {
		struct ur_queue *q = &p->q[i];

		pthread_mutex_lock(&q->lock);
		if (q->ring_ok) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

			if (sqe) {
				io_uring_prep_nop(sqe);
				io_uring_sqe_set_data(sqe, NULL);
				io_uring_submit(&q->ring);
			}
		}
		pthread_mutex_unlock(&q->lock);
	}
	fsop_deadline_after(&ts, 5000000000LL);
	pthread_cond_signal(&p->dog_cond);
	pthread_cond_broadcast(&p->park_cond);
	while (p->nthreads > 0)
		if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) != 0)
			break;
	pthread_mutex_unlock(&p->lock);
	if (p->dog_started)
		pthread_join(p->dog, NULL);
}
