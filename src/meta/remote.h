/*
 * remote.h - the pieces every engine on a database server shares
 * (PostgreSQL, MariaDB/MySQL, Redis; etcd would be one more user): a
 * bounded connection pool with dial and liveness hooks that redials after
 * a server restart, adaptive scan paging, connection-error words mapped to
 * errno, the schema version check, and the password from the environment.
 *
 * What stays in each engine: its protocol, its transactions and conflict
 * detection (SQL isolation, WATCH), its error codes (SQLSTATE, server
 * numbers, reply words) and its schema.
 *
 * Pool: a connection embeds struct rm_conn first.  rm_get hands out an idle
 * connection (checked with ->alive, redialed when dead or dialed before the
 * last rm_broken) or a new one (->dial); it waits while max are out (a
 * thread holding several txns at once could wait forever).  Locks only
 * inside util/pool, never across I/O.
 */
#ifndef TESSERA_META_REMOTE_H
#define TESSERA_META_REMOTE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/pool.h"

struct rm_conn {
	struct pool_item item; /* first: the pool's link */
	unsigned gen;	       /* pool generation when dialed */
	bool up;	       /* dialed and not hung up */
};

struct rm_pool_ops {
	size_t conn_size; /* of the engine's struct, rm_conn first */
	/** Connect @c (zeroed past rm_conn on first use); logs; -errno. */
	int (*dial)(void *eng, struct rm_conn *c);
	/** Close @c's connection; the struct stays for a later dial. */
	void (*hangup)(struct rm_conn *c);
	/** An idle connection is still usable (nothing unread, not closed). */
	bool (*alive)(struct rm_conn *c);
};

struct rm_pool {
	struct pool pool;
	atomic_uint gen;
	const struct rm_pool_ops *ops;
	void *eng;
};

void rm_pool_init(struct rm_pool *p, int max, const struct rm_pool_ops *ops,
		  void *eng);
/** Close and free every idle connection (none may be in use). */
void rm_pool_destroy(struct rm_pool *p);
/**
 * A connection ready for use; *fresh (may be NULL) tells it was just
 * dialed.  Errors: those of ->dial, -ENOMEM.
 */
int rm_get(struct rm_pool *p, struct rm_conn **out, bool *fresh);
/** Redial @c now (its connection died under the caller). */
int rm_redial(struct rm_pool *p, struct rm_conn *c);
/** Give @c back; @reusable false (or @c not up) closes and forgets it. */
void rm_put(struct rm_pool *p, struct rm_conn *c, bool reusable);
/**
 * A connection broke: hang it up and make every idle connection dialed
 * before now redial on its next use (a server restart drops them all).
 */
void rm_broken(struct rm_pool *p, struct rm_conn *c);

/** An idle socket has nothing to read (readable: the server closed it). */
bool rm_fd_idle(int fd);

/* Scan pages: sized from the last page to about RM_PAGE_BYTES. */
#define RM_PAGE_MIN 16
#define RM_PAGE_FIRST 128
#define RM_PAGE_MAX 512
#define RM_PAGE_BYTES (4 * 1024 * 1024)
/** Rows for the next page, given the last one's @rows and @bytes. */
size_t rm_next_rows(size_t rows, size_t bytes);

/**
 * Map the words of a connection failure message to -errno:
 * -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH, else -EIO.  Engines check their
 * own authentication and missing-database words first.
 */
int rm_dial_errno(const char *msg);

/**
 * The schema version check of open: 0 when @have == @want, else logs one
 * line naming @desc and both versions and returns -EINVAL.
 */
int rm_check_version(const char *desc, long have, long want);

/**
 * The password to use: the URL's @url_pass when it has one, else
 * TESSERA_META_PASSWORD (NULL when neither).  Never printed: engine
 * messages use the redacted URL (kv_engine.desc).
 */
const char *rm_password(const char *url_pass);

#endif
