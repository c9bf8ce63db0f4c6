/*
 * remote.c - the shared skeleton of the server engines (remote.h).
 */
#include "util/common.h"
#include "meta/remote.h"
#include "util/log.h"

#include <poll.h>

void rm_pool_init(struct rm_pool *p, int max, const struct rm_pool_ops *ops,
		  void *eng)
{
	pool_init(&p->pool, max);
	atomic_init(&p->gen, 0);
	p->ops = ops;
	p->eng = eng;
}

static void conn_free(struct rm_pool *p, struct rm_conn *c)
{
	if (c->up)
		p->ops->hangup(c);
	free(c);
}

static void free_none(struct pool_item *it)
{
	(void)it; /* the idle list is empty by then */
}

void rm_pool_destroy(struct rm_pool *p)
{
	/* pool_destroy's callback has no context: empty the idle list first */
	struct pool_item *it;

	while ((it = p->pool.idle) != NULL) {
		p->pool.idle = it->next;
		conn_free(p, (struct rm_conn *)it);
	}
	pool_destroy(&p->pool, free_none);
}

/* Forget a slot (NULL: one never allocated). */
static void drop(struct rm_pool *p, struct rm_conn *c)
{
	if (c)
		conn_free(p, c);
	pool_forget(&p->pool);
}

static int dial(struct rm_pool *p, struct rm_conn *c)
{
	int rc;

	c->gen = atomic_load(&p->gen);
	rc = p->ops->dial(p->eng, c);
	c->up = rc == 0;
	return rc;
}

int rm_get(struct rm_pool *p, struct rm_conn **out, bool *fresh)
{
	struct rm_conn *c = (struct rm_conn *)pool_take(&p->pool);
	bool dialed = false;
	int rc = 0;

	if (!c) {
		c = calloc(1, p->ops->conn_size);
		if (!c) {
			drop(p, NULL);
			return -ENOMEM;
		}
	}
	if (c->up && (c->gen != atomic_load(&p->gen) || !p->ops->alive(c))) {
		p->ops->hangup(c);
		c->up = false;
	}
	if (!c->up) {
		rc = dial(p, c);
		dialed = true;
	}
	if (rc < 0) {
		drop(p, c);
		return rc;
	}
	if (fresh)
		*fresh = dialed;
	*out = c;
	return 0;
}

int rm_redial(struct rm_pool *p, struct rm_conn *c)
{
	if (c->up)
		p->ops->hangup(c);
	c->up = false;
	return dial(p, c);
}

void rm_put(struct rm_pool *p, struct rm_conn *c, bool reusable)
{
	if (!reusable || !c->up) {
		drop(p, c);
		return;
	}
	pool_give(&p->pool, &c->item);
}

void rm_broken(struct rm_pool *p, struct rm_conn *c)
{
	if (c && c->up) {
		p->ops->hangup(c);
		c->up = false;
	}
	atomic_fetch_add(&p->gen, 1);
}

bool rm_fd_idle(int fd)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};

	return fd >= 0 && poll(&pf, 1, 0) == 0;
}

size_t rm_next_rows(size_t rows, size_t bytes)
{
	size_t n = RM_PAGE_BYTES / (bytes / (rows ? rows : 1) + 1);

	return MAX(MIN(n, (size_t)RM_PAGE_MAX), (size_t)RM_PAGE_MIN);
}

int rm_dial_errno(const char *msg)
{
	if (strstr(msg, "refused"))
		return -ECONNREFUSED;
	if (strstr(msg, "timeout expired") || strstr(msg, "timed out") ||
	    strstr(msg, "Timeout") || strstr(msg, "temporarily"))
		return -ETIMEDOUT;
	if (strstr(msg, "translate host name") ||
	    strstr(msg, "Name or service") || strstr(msg, "resolve") ||
	    strstr(msg, "Unknown server host") ||
	    strstr(msg, "Unknown host"))
		return -EHOSTUNREACH;
	return -EIO;
}

int rm_check_version(const char *desc, long have, long want)
{
	if (have == want)
		return 0;
	log_error("'%s' holds metadata schema version %ld; this tessera "
		  "reads version %ld",
		  desc, have, want);
	return -EINVAL;
}

const char *rm_password(const char *url_pass)
{
	const char *env;

	if (url_pass)
		return url_pass;
	env = getenv("TESSERA_META_PASSWORD");
	return env && *env ? env : NULL;
}
