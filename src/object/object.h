/*
 * object.h - the object store interface.
 *
 * A store maps keys (UTF-8, at most 1,024 bytes, no NUL, never starting with
 * '/', no "." or ".." components) to immutable byte strings.  Tessera writes
 * each key once; put of an existing key replaces it whole.  Stores are chosen
 * by URL scheme through an ops table; layers (checksum frame, compression,
 * encryption, fault injection) wrap a store and expose the same table.
 *
 * Every call may be made from any thread at once.  Only the obj_* wrappers
 * below touch ->ops.  All calls return 0 or a negative errno:
 *   -ENOENT   key (or bucket/directory) does not exist
 *   -EACCES   refused by the store (bad credentials, permissions)
 *   -EIO      store failed, or retries exhausted
 *   -EINVAL   bad key or arguments
 *   -ENOMEM   out of memory
 *   -ENOSYS   optional member missing
 */
#ifndef TESSERA_OBJECT_OBJECT_H
#define TESSERA_OBJECT_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/url.h"

#define OBJ_KEY_MAX 1024
/* Pass as len to obj_get to read up to the end of the object. */
#define OBJ_TO_END UINT64_MAX

struct obj_store;

struct obj_info {
	uint64_t size;
	int64_t mtime_ns;
};

/*
 * Reachability of a store, as its requests found it.  A store is "down"
 * from the first request that got no answer at all (refused, reset, timed
 * out) or only transient ones (5xx, 429, 408) once its retries ran out,
 * until a request gets any final answer again (2xx, 403, 404, ...).  The
 * store logs each change once at WARN (what, why, how long it lasted), not
 * each failed request.
 */
struct obj_state {
	bool down;
	uint64_t outages; /* times it went down since it was opened */
	int64_t down_ms;  /* how long the current outage lasts; 0 when up */
	char why[256];	  /* why it is down ("cannot connect: ..."), or "" */
};

struct obj_entry {
	char *key;        /* owned by the obj_list */
	uint64_t size;
	int64_t mtime_ns;
};

/* One page of a listing.  Release with obj_list_release(). */
struct obj_list {
	struct obj_entry *items;
	size_t n;
	size_t cap;
	bool truncated;   /* more keys after this page */
	char *next_token; /* pass back as token to continue; NULL when done */
};

struct obj_store_ops {
	const char *scheme;
	/** Store @len bytes under @key atomically: readers see all or nothing. */
	int (*put)(struct obj_store *s, const char *key, const void *data,
		   size_t len);
	/**
	 * Read @len bytes (OBJ_TO_END: the rest) from @off into @out, which is
	 * reset first.  Reading at or past the end gives 0 bytes, not an error.
	 */
	int (*get)(struct obj_store *s, const char *key, uint64_t off,
		   uint64_t len, struct buf *out);
	int (*head)(struct obj_store *s, const char *key, struct obj_info *out);
	/** Delete @key; deleting a missing key succeeds. */
	int (*del)(struct obj_store *s, const char *key);
	/**
	 * List keys starting with @prefix, in byte order, strictly after
	 * @start_after (may be NULL), continuing from @token (NULL for the
	 * first page), at most @limit (<= 1000) keys.  @out is reset first.
	 */
	int (*list)(struct obj_store *s, const char *prefix,
		    const char *start_after, const char *token, int limit,
		    struct obj_list *out);
	/** Make every put that returned before this call durable.  May be NULL. */
	int (*sync)(struct obj_store *s);
	/** Create the bucket/directory when missing (format time).  May be NULL. */
	int (*create)(struct obj_store *s);
	/** Whether the store answers (struct obj_state).  May be NULL. */
	int (*state)(struct obj_store *s, struct obj_state *out);
	/** Close and free.  */
	void (*close)(struct obj_store *s);
};

/* Base of every store; implementations embed it first. */
struct obj_store {
	const struct obj_store_ops *ops;
	char desc[512]; /* the URL with any password masked, for messages */
	/* obj_ref calls not yet matched by an obj_close; 0 in a new store
	 * (zeroed by its constructor) */
	_Atomic long extra_refs;
};

/**
 * Open the store for @url (file://, s3://, http://, https://).  Opening checks
 * the location is usable (the directory exists and is writable, the bucket
 * answers) unless @create is set, in which case it is created when missing.
 * Returns 0 and *out, or -errno with one clear ERROR log line naming the URL.
 */
int obj_open(const char *url, bool create, struct obj_store **out);

#define OBJ_OPEN_CREATE 0x1  /* create the bucket/directory when missing */
#define OBJ_OPEN_OFFLINE 0x2 /* open an unreachable store anyway */

/**
 * obj_open with @flags (OBJ_OPEN_*).  With OBJ_OPEN_OFFLINE, a store that
 * cannot be reached at open (no answer, time-out, or only 5xx answers
 * once the retries ran out) is opened anyway, without an ERROR line, and
 * starts "down" (obj_state: the caller says what that means for it); its
 * requests fail with -EIO until it answers.  A store that answers "no"
 * (403 refused, 404 no such bucket, wrong region, a bad URL) fails the
 * open as without the flag: a misconfigured store is never tolerated.
 * Only S3 stores can be down; a file:// directory is there or not.
 */
int obj_open_flags(const char *url, unsigned flags, struct obj_store **out);

int obj_put(struct obj_store *s, const char *key, const void *data, size_t len);
int obj_get(struct obj_store *s, const char *key, uint64_t off, uint64_t len,
	    struct buf *out);
int obj_head(struct obj_store *s, const char *key, struct obj_info *out);
int obj_del(struct obj_store *s, const char *key);
int obj_list(struct obj_store *s, const char *prefix, const char *start_after,
	     const char *token, int limit, struct obj_list *out);
int obj_sync(struct obj_store *s);
/**
 * Fill @out with the store's reachability (struct obj_state).  A store
 * without the member (file://) is always up: @out zeroed, 0.  Any thread.
 */
int obj_state(struct obj_store *s, struct obj_state *out);
/** The store's URL, password masked; lives as long as the store. */
const char *obj_describe(const struct obj_store *s);
/**
 * Share @s with one more owner, who releases it with obj_close: the store
 * is closed by the last obj_close.  Returns @s.  Any thread.
 */
struct obj_store *obj_ref(struct obj_store *s);
/** Release one owner's hold; obj_close(NULL) is a no-op. */
void obj_close(struct obj_store *s);

/**
 * This process's object-store counters: requests by method and result,
 * latency, bytes up and down, PUTs in flight, retries.  @prom: Prometheus
 * text with HELP and TYPE; else ".stats" lines ("object_GET ok notfound
 * error latency_us", "object_bytes_up N", ...).  0 or -ENOMEM.
 */
int obj_metrics_text(struct buf *b, bool prom);
/** A store counts one retry of a request (any thread). */
void obj_count_retry(void);

/** Validate a key (see top comment).  0 or -EINVAL. */
int obj_key_check(const char *key);

void obj_list_init(struct obj_list *l);
void obj_list_reset(struct obj_list *l);
void obj_list_release(struct obj_list *l);
/** Append an entry (copies @key).  0 or -ENOMEM. */
int obj_list_add(struct obj_list *l, const char *key, uint64_t size,
		 int64_t mtime_ns);

/*
 * The store registry (object.c): one entry per object-store scheme, with
 * the URL rule url_parse() checks and the constructor obj_open_flags()
 * calls.  Adding a store means adding one row there.
 */
struct obj_scheme {
	const char *name;       /* lower-case scheme, e.g. "s3" */
	struct url_rule url;    /* what a URL of this scheme requires */
	int (*open)(const char *url, unsigned flags, struct obj_store **out);
};

/** The registry entry of @scheme (case-insensitive), NULL when none. */
const struct obj_scheme *obj_scheme_find(const char *scheme);

/** True when @s starts "SCHEME://" with SCHEME a registered store. */
bool obj_is_store_url(const char *s);

/* Constructors of the concrete stores (used by obj_open). */
int obj_file_open(const char *url, bool create, struct obj_store **out);

/**
 * Open an S3 store: s3://bucket[/prefix] (AWS, virtual-hosted, region from
 * ?region=, TESSERA_REGION, AWS_REGION, else us-east-1) or
 * http[s]://host[:port]/bucket[/prefix] (any S3 server, path-style).
 * Credentials: TESSERA_ACCESS_KEY/TESSERA_SECRET_KEY, else the 0600 file
 * named by TESSERA_S3_CREDENTIALS_FILE (lines access_key=, secret_key=),
 * else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else anonymous.  Tuning:
 * TESSERA_S3_RETRIES (retries after the first try, default 4),
 * TESSERA_S3_TIMEOUT_MS (bound of one operation with its retries, default
 * 30000), TESSERA_S3_CONNECT_TIMEOUT_MS (default 3000); AWS_CA_BUNDLE for
 * https.  Opening lists the bucket once; -EACCES refused, -ENOENT no such
 * bucket (unless OBJ_OPEN_CREATE, which creates it), -EIO unreachable
 * (unless OBJ_OPEN_OFFLINE: then 0 and a store that starts down), -EINVAL
 * bad URL or credentials file.  One ERROR line names the URL.  Startup;
 * the store is then usable from any thread.
 */
int obj_s3_open(const char *url, unsigned flags, struct obj_store **out);

/*
 * Fault injection (tests only).  A fault layer wraps a store and, per call
 * of the operations it is set for, adds latency, fails with -EIO, or cuts
 * a GET body short (returning success with fewer bytes: what a broken store
 * or proxy does, which the layers above must catch).  obj_open wraps every
 * store it opens when TESSERA_FAULT holds a spec.
 */
struct obj_fault_stats {
	uint64_t calls;   /* operations seen (of the selected kinds) */
	uint64_t errors;  /* failed with an injected -EIO */
	uint64_t truncs;  /* GET bodies cut short */
	uint64_t delays;  /* calls slowed down */
};

/**
 * Wrap @inner in a fault layer configured by @spec, comma-separated
 * name=value pairs:
 *   err=P        probability (0..1) that a call fails with -EIO (for put
 *                and del, half of them fail after the inner call succeeded)
 *   trunc=P      probability that a non-empty GET result is cut short
 *   delay_ms=N   latency added to a call ...
 *   delay=P      ... with this probability (default 1)
 *   seed=N       RNG seed (default 1): the same seed and call sequence give
 *                the same faults
 *   ops=LIST     operations affected, joined by '+': put+get+head+del+list
 *                (default all)
 *   keys=PREFIX  only calls whose key (list: prefix) starts with PREFIX
 *   after=N      the first N affected calls pass untouched (so that, say,
 *                the second page of a listing fails)
 *   page=N       affected list calls return at most N keys a page
 *                (1..1000; 0: no cap), as a store may
 * On success *out owns @inner (closing it closes both); on failure (-EINVAL
 * bad spec, logged; -ENOMEM) @inner is untouched.  Any thread.
 */
int obj_fault_wrap(struct obj_store *inner, const char *spec,
		   struct obj_store **out);

/** Counters of a fault layer; -EINVAL when @s is not one.  Any thread. */
int obj_fault_stats(const struct obj_store *s, struct obj_fault_stats *out);

#endif
