/*
 * store_s3.c - the S3 object store: s3://bucket[/prefix] (AWS,
 * virtual-hosted https://bucket.s3.REGION.amazonaws.com) and
 * http[s]://host[:port]/bucket[/prefix] (any S3 server, path-style).
 *
 * Requests.  Each operation builds one request (method, key, query, body),
 * then s3_run() tries it until it gets a final answer: every try is signed
 * afresh (SigV4, real payload hash, see s3_sign.c) and sent on a pooled
 * libcurl easy handle.  A try that ends in a transport error (refused,
 * reset, timed out, truncated body) or a transient status (5xx except 501,
 * 408, 429, 400 RequestTimeout) is retried after an exponential backoff
 * with jitter, at most `retries` times and never past the operation's
 * deadline (TESSERA_S3_TIMEOUT_MS from its start).  What is left after that
 * is a final answer: the operation maps it to an errno and logs it once.
 *
 * Connections.  Idle easy handles sit in a bounded stack (pool_lock); a
 * handle keeps its connection alive between requests, so a thread that
 * takes a handle usually reuses a warm connection.  DNS results and TLS
 * sessions are shared between handles through a curl share object with one
 * mutex per shared data kind.  No lock is held during network I/O.
 *
 * Keys.  Object keys are the store's prefix + the caller's key, sent
 * URI-encoded ('/' kept) in the path; listings ask for prefix + prefix and
 * strip the store's prefix from what comes back.
 *
 * Opening sends HEAD on the bucket (exists? ours?), creating it first
 * when asked; AWS's x-amz-bucket-region then names a region mismatch.
 * With OBJ_OPEN_OFFLINE a probe that got no answer (or only transient
 * ones) opens the store anyway, down; any other answer decides as usual.
 *
 * Reachability (struct obj_state).  Every final answer updates it: a
 * request whose last try was transient (no connection, time-out, 5xx,
 * 429) marks the store down, any other answer marks it up.  Each change
 * is logged once at WARN (the first failure's reason; how long the
 * outage lasted); while down, the per-request failure lines go to DEBUG,
 * since the layers above log what each failure cost them.  Changes made
 * while opening are silent: the opener reports.
 *
 * Reads trust the Content-Range, not our Range header: a server may ignore
 * the Range (200: we cut the body) or widen it (s3rver answers "bytes=0-0"
 * with the whole object), and "bytes 0-0/0" for an empty object comes
 * with a body that never arrives (s3rver): that is "no bytes", at once.
 *
 * Secrets come from the environment or a 0600 file (s3_creds.c), are kept
 * only in this struct, and never appear in a log line or a URL.
 *
 * Lock order: pool_lock, share_lock[] and state_lock are leaves (never
 * nested).
 * Everything else in struct s3_store is immutable after open: any thread.
 */
#include "util/common.h"
#include "object/object.h"
#include "object/s3_int.h"
#include "util/log.h"
#include "util/url.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S3_POOL_IDLE_MAX 32
#define S3_ERR_BODY_MAX (64 * 1024)
#define S3_DEF_RETRIES 4          /* retries after the first try */
#define S3_DEF_TIMEOUT_MS 30000   /* per operation, all tries included */
#define S3_DEF_CONNECT_MS 3000    /* per try */
#define S3_BACKOFF_BASE_MS 100
#define S3_BACKOFF_MAX_MS 2000
#define S3_LOW_SPEED_BPS 1024     /* slower than this ... */
#define S3_LOW_SPEED_S 10         /* ... for this long is a stall */

struct s3_store {
	struct obj_store base;
	char *endpoint;    /* "http://host:port": request URLs start here */
	char *host_hdr;    /* the Host header we send and sign */
	char *host;        /* host name alone, for messages */
	char *bucket;
	char *bucket_path; /* "/bucket" (path-style) or "" (virtual-hosted) */
	char *prefix;      /* "" or "some/dir/" */
	char *region;
	struct s3_creds creds; /* access_key NULL: anonymous requests */
	char *cainfo;      /* CA bundle for https, or NULL */
	bool aws;          /* s3:// */
	int retries;
	long timeout_ms;
	long connect_ms;
	CURLSH *share;
	pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	CURL *idle[S3_POOL_IDLE_MAX]; /* guarded by pool_lock */
	int nidle;                    /* guarded by pool_lock */
	bool offline_ok;	      /* OBJ_OPEN_OFFLINE */
	bool opened;		      /* open done: log state changes */
	/* reachability: written under state_lock, read with atomics */
	pthread_mutex_t state_lock;
	atomic_bool down;
	atomic_uint_least64_t outages;
	_Atomic int64_t down_since_ms;
	_Atomic int64_t answer_ms; /* when a request last got an answer */
	char why[256];		   /* guarded by state_lock */
};

/* One request and what its last try gave. */
struct s3_req {
	const char *method;           /* GET PUT HEAD DELETE */
	const char *key;              /* full key (with prefix); NULL: bucket */
	const struct s3_pair *query;
	size_t nquery;
	const char *body;             /* PUT body, or NULL */
	size_t body_len;
	char body_sha[65];            /* hex SHA-256 of the body */
	char range[64];               /* "" or "bytes=A-B" */
	struct buf *resp;             /* response body, reset on each try */
	/* Results of the last try. */
	CURLcode cc;
	long status;
	long os_errno;
	curl_off_t clen;              /* Content-Length, -1 unknown */
	int64_t range_start;          /* first byte per Content-Range, or -1 */
	bool range_empty;             /* Content-Range says: no bytes there */
	char bucket_region[32];       /* x-amz-bucket-region, or "" */
	int64_t mtime_ns;             /* Last-Modified, 0 unknown */
	int tries;
	char errbuf[CURL_ERROR_SIZE];
};

/* Upload source and download sink of one try. */
struct s3_xfer {
	const char *src;
	size_t src_len;
	size_t src_pos;
	struct buf *dst;
	struct s3_req *r;
	CURL *c;
	bool dropping; /* error body past S3_ERR_BODY_MAX */
	int err;       /* -ENOMEM while appending */
};

static const struct obj_store_ops s3_ops;

/* ---- small helpers ---------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Jitter only: a per-thread xorshift, seeded from the clock and thread. */
static uint32_t jitter_rand(void)
{
	static _Thread_local uint32_t x;

	if (x == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		x = (uint32_t)ts.tv_nsec ^ (uint32_t)(uintptr_t)&x;
		x ^= 0x9e3779b9u;
		if (x == 0)
			x = 1;
	}
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return x;
}

/* Backoff before retry @i (0-based): [d/2, d], d = base * 2^i, capped. */
static long backoff_ms(int i)
{
	long d = S3_BACKOFF_BASE_MS;

	while (i-- > 0 && d < S3_BACKOFF_MAX_MS)
		d *= 2;
	if (d > S3_BACKOFF_MAX_MS)
		d = S3_BACKOFF_MAX_MS;
	return d / 2 + (long)(jitter_rand() % (uint32_t)(d / 2 + 1));
}

static long env_long(const char *name, long def, long lo, long hi)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !*v)
		return def;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || n < lo || n > hi) {
		log_warn("ignoring %s='%s': expected a number from %ld to %ld",
			 name, v, lo, hi);
		return def;
	}
	return n;
}

/* ---- the handle pool and the curl share ------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock_cb(CURL *c, curl_lock_data d, curl_lock_access a,
			  void *u)
{
	struct s3_store *s = u;

	UNUSED(c);
	UNUSED(a);
	if ((int)d >= 0 && d < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&s->share_lock[d]);
}

static void share_unlock_cb(CURL *c, curl_lock_data d, void *u)
{
	struct s3_store *s = u;

	UNUSED(c);
	if ((int)d >= 0 && d < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&s->share_lock[d]);
}

static int share_init(struct s3_store *s)
{
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&s->share_lock[i], NULL);
	s->share = curl_share_init();
	if (!s->share)
		return -ENOMEM;
	curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, share_lock_cb);
	curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, share_unlock_cb);
	curl_share_setopt(s->share, CURLSHOPT_USERDATA, s);
	curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(s->share, CURLSHOPT_SHARE,
			  CURL_LOCK_DATA_SSL_SESSION);
	return 0;
}

static CURL *pool_get(struct s3_store *s)
{
	CURL *c = NULL;

	pthread_mutex_lock(&s->pool_lock);
	if (s->nidle > 0)
		c = s->idle[--s->nidle];
	pthread_mutex_unlock(&s->pool_lock);
	if (c)
		curl_easy_reset(c); /* keeps its live connection */
	else
		c = curl_easy_init();
	return c;
}

static void pool_put(struct s3_store *s, CURL *c)
{
	pthread_mutex_lock(&s->pool_lock);
	if (s->nidle < S3_POOL_IDLE_MAX) {
		s->idle[s->nidle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&s->pool_lock);
	if (c)
		curl_easy_cleanup(c);
}

/* ---- one try ---------------------------------------------------------- */

static size_t xfer_read(char *p, size_t size, size_t nmemb, void *u)
{
	struct s3_xfer *x = u;
	size_t n = MIN(size * nmemb, x->src_len - x->src_pos);

	memcpy(p, x->src + x->src_pos, n);
	x->src_pos += n;
	return n;
}

/* curl rewinds the body when it resends on a reused, dead connection. */
static int xfer_seek(void *u, curl_off_t off, int origin)
{
	struct s3_xfer *x = u;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->src_len)
		return CURL_SEEKFUNC_FAIL;
	x->src_pos = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

static size_t xfer_write(char *p, size_t size, size_t nmemb, void *u)
{
	struct s3_xfer *x = u;
	size_t n = size * nmemb;
	long status = 0;

	if (x->dropping)
		return n;
	curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 300 && x->dst->len + n > S3_ERR_BODY_MAX) {
		x->dropping = true; /* an error document needs no more */
		return n;
	}
	if (buf_append(x->dst, p, n) < 0) {
		x->err = -ENOMEM;
		return 0; /* aborts the transfer */
	}
	return n;
}

/*
 * Keep the first byte of a Content-Range: servers may send another range
 * than asked.  "bytes 0-0/0" (s3rver, for an empty object) announces a
 * body that never comes: stop there, the answer is "no bytes".
 */
static size_t xfer_header(char *p, size_t size, size_t nitems, void *u)
{
	struct s3_xfer *x = u;
	size_t n = size * nitems;
	static const char name[] = "content-range:";
	static const char region[] = "x-amz-bucket-region:";
	char line[128];
	unsigned long long start, end, total;
	int k;

	if (n >= sizeof(line))
		return n;
	memcpy(line, p, n);
	line[n] = '\0';
	if (strncasecmp(line, region, sizeof(region) - 1) == 0) {
		sscanf(line + sizeof(region) - 1, " %31[a-z0-9-]",
		       x->r->bucket_region);
		return n;
	}
	if (strncasecmp(line, name, sizeof(name) - 1) != 0)
		return n;
	k = sscanf(line + sizeof(name) - 1, " bytes %llu-%llu/%llu", &start,
		   &end, &total);
	if (k >= 1 && start <= INT64_MAX)
		x->r->range_start = (int64_t)start;
	if (k == 3 && start >= total) {
		x->r->range_empty = true;
		return 0; /* aborts the transfer */
	}
	return n;
}

static int build_path(const struct s3_store *s, const char *key,
		      struct buf *path)
{
	int rc = buf_append(path, s->bucket_path, strlen(s->bucket_path));

	if (rc == 0 && key) {
		rc = buf_append(path, "/", 1);
		if (rc == 0)
			rc = s3_uri_encode(path, key, strlen(key), true);
	} else if (rc == 0 && path->len == 0) {
		rc = buf_append(path, "/", 1);
	}
	return rc;
}

static void amz_now(char out[17])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* Append "fmt..." as one header line to *l.  0 or -ENOMEM. */
static int hdr_add(struct curl_slist **l, const char *name, const char *val)
{
	struct buf line = BUF_INIT;
	struct curl_slist *t = NULL;

	if (buf_appendf(&line, "%s:%s%s", name, *val ? " " : "", val) == 0)
		t = curl_slist_append(*l, line.data);
	buf_release(&line);
	if (!t)
		return -ENOMEM;
	*l = t;
	return 0;
}

/* Headers to send: the signed ones, Authorization, and two extras. */
static int build_headers(const struct s3_store *s, const struct s3_req *r,
			 const char *path, const char *query,
			 struct curl_slist **out)
{
	struct s3_pair h[5];
	struct buf auth = BUF_INIT;
	struct curl_slist *l = NULL;
	char date[17], sig[65];
	size_t n = 0;
	int rc = 0;

	amz_now(date);
	h[n++] = (struct s3_pair){ "Host", s->host_hdr };
	h[n++] = (struct s3_pair){ "x-amz-content-sha256", r->body_sha };
	h[n++] = (struct s3_pair){ "x-amz-date", date };
	if (r->range[0])
		h[n++] = (struct s3_pair){ "Range", r->range };
	if (s->creds.token)
		h[n++] = (struct s3_pair){ "x-amz-security-token",
					   s->creds.token };
	if (s->creds.access_key) {
		struct s3_sign_in in = {
			.method = r->method, .canon_path = path,
			.canon_query = query, .hdrs = h, .nhdrs = n,
			.payload_hash = r->body_sha, .amz_date = date,
			.region = s->region, .access_key = s->creds.access_key,
			.secret_key = s->creds.secret_key,
		};

		rc = s3_sign(&in, &auth, sig);
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = hdr_add(&l, h[i].name, h[i].value);
	if (rc == 0 && s->creds.access_key)
		rc = hdr_add(&l, "Authorization", auth.data);
	/* No 100-continue round trip before a PUT body. */
	if (rc == 0)
		rc = hdr_add(&l, "Expect", "");
	if (rc == 0 && r->body)
		rc = hdr_add(&l, "Content-Type", "application/octet-stream");
	buf_release(&auth);
	if (rc < 0) {
		curl_slist_free_all(l);
		return rc;
	}
	*out = l;
	return 0;
}

static void set_method(CURL *c, const struct s3_req *r, struct s3_xfer *x)
{
	if (strcmp(r->method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "PUT") == 0) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)r->body_len);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, xfer_read);
		curl_easy_setopt(c, CURLOPT_READDATA, x);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, xfer_seek);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, x);
	} else if (strcmp(r->method, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
	}
}

static void set_transport(const struct s3_store *s, CURL *c, long budget_ms,
			  char *errbuf)
{
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_SHARE, s->share);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FILETIME, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, budget_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 MIN(s->connect_ms, budget_ms));
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, (long)S3_LOW_SPEED_BPS);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)S3_LOW_SPEED_S);
	if (s->cainfo)
		curl_easy_setopt(c, CURLOPT_CAINFO, s->cainfo);
}

/* One DEBUG line per try: what, answer, time, fresh or reused connection. */
static void log_try(const struct s3_store *s, const struct s3_req *r, CURL *c)
{
	long conns = 0;
	curl_off_t us = 0;

	curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &us);
	log_debug("s3 %s '%s' on '%s': %s %ld, %.1f ms, %s connection",
		  r->method, r->key ? r->key : "", s->base.desc,
		  r->cc ? curl_easy_strerror(r->cc) : "HTTP", r->status,
		  (double)us / 1000.0, conns ? "new" : "reused");
}

static void s3_try(struct s3_store *s, struct s3_req *r, long budget_ms)
{
	struct buf path = BUF_INIT, query = BUF_INIT, url = BUF_INIT;
	struct curl_slist *hl = NULL;
	struct s3_xfer x = { r->body, r->body_len, 0, r->resp, r, NULL, false,
			     0 };
	curl_off_t ft = -1;
	CURL *c;
	int rc;

	r->status = 0;
	r->os_errno = 0;
	r->clen = -1;
	r->mtime_ns = 0;
	r->range_start = -1;
	r->range_empty = false;
	r->bucket_region[0] = '\0';
	r->errbuf[0] = '\0';
	buf_reset(r->resp);
	rc = build_path(s, r->key, &path);
	if (rc == 0)
		rc = s3_canon_query(&query, r->query, r->nquery);
	if (rc == 0)
		rc = buf_appendf(&url, "%s%s%s%s", s->endpoint, path.data,
				 query.len ? "?" : "", query.data);
	if (rc == 0)
		rc = build_headers(s, r, path.data, query.data, &hl);
	c = rc == 0 ? pool_get(s) : NULL;
	if (!c) {
		r->cc = CURLE_OUT_OF_MEMORY;
		goto out;
	}
	x.c = c;
	set_transport(s, c, budget_ms, r->errbuf);
	curl_easy_setopt(c, CURLOPT_URL, url.data);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, xfer_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, xfer_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
	set_method(c, r, &x);
	r->cc = curl_easy_perform(c);
	if (x.err)
		r->cc = CURLE_OUT_OF_MEMORY;
	if (r->range_empty && r->cc == CURLE_WRITE_ERROR) {
		r->cc = CURLE_OK;
		buf_reset(r->resp);
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &r->os_errno);
	curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &r->clen);
	if (curl_easy_getinfo(c, CURLINFO_FILETIME_T, &ft) == CURLE_OK &&
	    ft >= 0)
		r->mtime_ns = (int64_t)ft * 1000000000;
	if (log_get_level() >= LOG_LVL_DEBUG)
		log_try(s, r, c);
	/* The handle must not keep pointers into this frame. */
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	pool_put(s, c);
out:
	curl_slist_free_all(hl);
	buf_release(&path);
	buf_release(&query);
	buf_release(&url);
}

/* ---- retries and errors ----------------------------------------------- */

/* The <Code> of an S3 error document, or "" . */
static void err_code(const struct s3_req *r, char *code, size_t n)
{
	const char *v;
	size_t len = 0;

	code[0] = '\0';
	if (!r->resp->data)
		return;
	v = s3_xml_find(r->resp->data, r->resp->data + r->resp->len, "Code",
			&len, NULL);
	if (v && len < n) {
		memcpy(code, v, len);
		code[len] = '\0';
	}
}

static bool transient_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_SEND_FAIL_REWIND:
		return true;
	default:
		return false;
	}
}

static bool transient(const struct s3_req *r)
{
	char code[64];

	if (r->cc != CURLE_OK)
		return transient_curl(r->cc);
	if (r->status >= 500 && r->status != 501 && r->status != 505)
		return true;
	if (r->status == 429 || r->status == 408)
		return true;
	if (r->status == 400) {
		err_code(r, code, sizeof(code));
		return strcmp(code, "RequestTimeout") == 0;
	}
	return false;
}

static void s3_why(const struct s3_store *s, const struct s3_req *r, char *why,
		   size_t n);

/*
 * Update the reachability after the final answer of @r, which started at
 * @t0_ms (top comment).  A failure of a request that started before some
 * other request got an answer says nothing new (the server may have come
 * back while it was failing): only later ones mark the store down.
 */
static void note_state(struct s3_store *s, const struct s3_req *r,
		       int64_t t0_ms)
{
	bool down = transient(r);
	int64_t now = now_ms(), since = 0;
	char why[256];

	if (r->cc == CURLE_OUT_OF_MEMORY)
		return;
	if (!down)
		atomic_store(&s->answer_ms, now);
	else if (t0_ms < atomic_load(&s->answer_ms))
		return;
	if (atomic_load(&s->down) == down)
		return;
	if (down)
		s3_why(s, r, why, sizeof(why));
	pthread_mutex_lock(&s->state_lock);
	if (atomic_load(&s->down) == down) {
		pthread_mutex_unlock(&s->state_lock);
		return;
	}
	if (down) {
		snprintf(s->why, sizeof(s->why), "%s", why);
		atomic_store(&s->down_since_ms, now);
		atomic_fetch_add(&s->outages, 1);
	} else {
		since = atomic_load(&s->down_since_ms);
		s->why[0] = '\0';
	}
	atomic_store(&s->down, down);
	pthread_mutex_unlock(&s->state_lock);
	if (!s->opened)
		return;
	if (down)
		log_warn("object store '%s' is unreachable: %s; requests "
			 "fail with EIO until it answers",
			 s->base.desc, why);
	else
		log_warn("object store '%s' answers again (down for %.1f s)",
			 s->base.desc, (double)(now - since) / 1000.0);
}

static int s3_state(struct obj_store *os, struct obj_state *out)
{
	struct s3_store *s = (struct s3_store *)os;

	pthread_mutex_lock(&s->state_lock);
	out->down = atomic_load(&s->down);
	out->outages = atomic_load(&s->outages);
	out->down_ms =
		out->down ? now_ms() - atomic_load(&s->down_since_ms) : 0;
	snprintf(out->why, sizeof(out->why), "%s", s->why);
	pthread_mutex_unlock(&s->state_lock);
	return 0;
}

/*
 * Run @r until it has a final answer.  Returns 0 when an HTTP status came
 * back (any status: the caller maps it), -EIO when the transport failed on
 * every try, -ENOMEM.
 */
static int s3_run(struct s3_store *s, struct s3_req *r)
{
	int64_t deadline = now_ms() + s->timeout_ms;

	if (!r->body)
		memcpy(r->body_sha, S3_EMPTY_SHA256, 65);
	else if (!r->body_sha[0])
		s3_sha256_hex(r->body, r->body_len, r->body_sha);
	for (int i = 0;; i++) {
		int64_t left = deadline - now_ms();
		long wait;

		s3_try(s, r, (long)MAX(left, 1));
		r->tries = i + 1;
		if (r->cc == CURLE_OUT_OF_MEMORY)
			return -ENOMEM;
		if (!transient(r) || i >= s->retries)
			break;
		wait = backoff_ms(i);
		if (now_ms() + wait >= deadline)
			break;
		obj_count_retry();
		log_info("retrying %s '%s' on '%s' in %ld ms (try %d, %s %ld)",
			 r->method, r->key ? r->key : "", s->base.desc, wait,
			 i + 1, r->cc ? curl_easy_strerror(r->cc) : "HTTP",
			 r->status);
		sleep_ms(wait);
	}
	note_state(s, r, deadline - s->timeout_ms);
	return r->cc == CURLE_OK ? 0 : -EIO;
}

/* One phrase saying why @r failed, for the ERROR line. */
static void s3_why(const struct s3_store *s, const struct s3_req *r,
		   char *why, size_t n)
{
	char code[64];
	int k;

	if (r->cc == CURLE_COULDNT_RESOLVE_HOST) {
		k = snprintf(why, n, "cannot resolve host '%s'", s->host);
	} else if (r->cc == CURLE_COULDNT_CONNECT) {
		k = snprintf(why, n, "cannot connect: %s",
			     r->os_errno == ECONNREFUSED ? "connection refused"
			     : r->os_errno ? strerror((int)r->os_errno)
			     : r->errbuf[0] ? r->errbuf
					    : "connection failed");
	} else if (r->cc == CURLE_OPERATION_TIMEDOUT) {
		k = snprintf(why, n, "timed out");
	} else if (r->cc != CURLE_OK) {
		k = snprintf(why, n, "%s",
			     r->errbuf[0] ? r->errbuf
					  : curl_easy_strerror(r->cc));
	} else if (r->status == 403 &&
		   (err_code(r, code, sizeof(code)),
		    strcmp(code, "RequestTimeTooSkewed") == 0)) {
		k = snprintf(why, n, "the local clock is too far off the "
				     "server's");
	} else if (r->status == 403) {
		k = snprintf(why, n, "access denied (check TESSERA_ACCESS_KEY/"
				     "TESSERA_SECRET_KEY)");
	} else {
		err_code(r, code, sizeof(code));
		k = snprintf(why, n, "HTTP %ld%s%s", r->status,
			     code[0] ? " " : "", code);
	}
	if (r->tries > 1 && k > 0 && (size_t)k < n)
		snprintf(why + k, n - (size_t)k, " (after %d tries)", r->tries);
}

/* Map a final answer to an errno, logging it (what: "put 'KEY'"). */
static int s3_fail(const struct s3_store *s, const struct s3_req *r, int rc,
		   const char *what)
{
	char why[512], code[64];

	if (rc == -ENOMEM)
		return log_fail(rc, "cannot %s on '%s'", what, s->base.desc);
	if (rc == 0) {
		err_code(r, code, sizeof(code));
		if (r->status == 403)
			rc = -EACCES;
		else if (r->status == 404)
			rc = -ENOENT;
		else
			rc = -EIO;
		if (strcmp(code, "NoSuchBucket") == 0) {
			log_error("cannot %s on '%s': bucket does not exist",
				  what, s->base.desc);
			return -ENOENT;
		}
	} else {
		rc = -EIO;
	}
	s3_why(s, r, why, sizeof(why));
	if (transient(r)) /* the outage was logged once, by note_state */
		log_debug("cannot %s on '%s': %s", what, s->base.desc, why);
	else
		log_error("cannot %s on '%s': %s", what, s->base.desc, why);
	return rc;
}

/* ---- operations ------------------------------------------------------- */

static struct s3_store *to_s3(struct obj_store *s)
{
	return (struct s3_store *)s;
}

/* The bucket key of @key: prefix + key, checked.  Free with free(). */
static int full_key(const struct s3_store *s, const char *key, char **out)
{
	size_t pl = strlen(s->prefix), kl;
	char *k;

	if (obj_key_check(key) < 0)
		return -EINVAL;
	kl = strlen(key);
	if (pl + kl > OBJ_KEY_MAX)
		return log_fail(-EINVAL, "key '%s' is too long for '%s'", key,
				s->base.desc);
	k = malloc(pl + kl + 1);
	if (!k)
		return -ENOMEM;
	memcpy(k, s->prefix, pl);
	memcpy(k + pl, key, kl + 1);
	*out = k;
	return 0;
}

static int s3_put(struct obj_store *os, const char *key, const void *data,
		  size_t len)
{
	struct s3_store *s = to_s3(os);
	struct buf resp = BUF_INIT;
	struct s3_req r = { .method = "PUT", .resp = &resp };
	char *k = NULL, what[64 + OBJ_KEY_MAX];
	int rc;

	rc = full_key(s, key, &k);
	if (rc < 0)
		return rc;
	r.key = k;
	r.body = data ? data : "";
	r.body_len = len;
	rc = s3_run(s, &r);
	if (rc == 0 && r.status / 100 == 2)
		goto out;
	snprintf(what, sizeof(what), "put '%s'", key);
	rc = s3_fail(s, &r, rc, what);
out:
	free(k);
	buf_release(&resp);
	return rc;
}

static int s3_head(struct obj_store *os, const char *key,
		   struct obj_info *out)
{
	struct s3_store *s = to_s3(os);
	struct buf resp = BUF_INIT;
	struct s3_req r = { .method = "HEAD", .resp = &resp };
	char *k = NULL, what[64 + OBJ_KEY_MAX];
	int rc;

	rc = full_key(s, key, &k);
	if (rc < 0)
		return rc;
	r.key = k;
	rc = s3_run(s, &r);
	if (rc == 0 && r.status / 100 == 2) {
		if (out) {
			out->size = r.clen >= 0 ? (uint64_t)r.clen : 0;
			out->mtime_ns = r.mtime_ns;
		}
	} else if (rc == 0 && r.status == 404) {
		rc = -ENOENT; /* a HEAD answer has no body to say more */
	} else {
		snprintf(what, sizeof(what), "head '%s'", key);
		rc = s3_fail(s, &r, rc, what);
	}
	free(k);
	buf_release(&resp);
	return rc;
}

/* Set the Range of @r for [off, off+len); false when none is needed. */
static void set_range(struct s3_req *r, uint64_t off, uint64_t len)
{
	if (len == OBJ_TO_END || len > UINT64_MAX - off) {
		if (off > 0)
			snprintf(r->range, sizeof(r->range),
				 "bytes=%" PRIu64 "-", off);
	} else {
		snprintf(r->range, sizeof(r->range),
			 "bytes=%" PRIu64 "-%" PRIu64, off, off + len - 1);
	}
}

/*
 * Keep [off, off+len) of a body that starts at byte @start of the object:
 * a server may ignore the Range (200, start 0) or answer a wider one.
 * False when the body starts after @off (then it cannot be right).
 */
static bool trim_body(struct buf *b, uint64_t start, uint64_t off,
		      uint64_t len)
{
	uint64_t skip, n;

	if (start > off)
		return false;
	skip = off - start;
	if (skip >= b->len) {
		buf_reset(b);
		return true;
	}
	n = MIN(len, (uint64_t)b->len - skip);
	memmove(b->data, b->data + skip, (size_t)n);
	b->len = (size_t)n;
	b->data[n] = '\0';
	return true;
}

static int s3_get(struct obj_store *os, const char *key, uint64_t off,
		  uint64_t len, struct buf *out)
{
	struct s3_store *s = to_s3(os);
	struct s3_req r = { .method = "GET", .resp = out };
	char *k = NULL, what[64 + OBJ_KEY_MAX];
	int rc;

	buf_reset(out);
	if (len == 0) /* nothing to read, but the key must exist */
		return s3_head(os, key, NULL);
	rc = full_key(s, key, &k);
	if (rc < 0)
		return rc;
	r.key = k;
	set_range(&r, off, len);
	rc = s3_run(s, &r);
	if (rc == 0 && r.status == 206 && r.range_empty)
		goto out; /* nothing at or after off */
	if (rc == 0 && (r.status == 200 || r.status == 206)) {
		uint64_t start = r.status == 200	  ? 0
				 : r.range_start >= 0 ? (uint64_t)r.range_start
						      : off;

		if (trim_body(out, start, off, len))
			goto out;
		log_error("cannot get '%s' on '%s': the server answered "
			  "another range", key, s->base.desc);
		rc = -EIO;
		buf_reset(out);
		goto out;
	}
	if (rc == 0 && r.status == 416) {
		rc = 0; /* range starts past the end: no bytes */
	} else if (rc == 0 && r.status == 404) {
		char code[64];

		err_code(&r, code, sizeof(code));
		rc = -ENOENT;
		if (strcmp(code, "NoSuchBucket") == 0) {
			snprintf(what, sizeof(what), "get '%s'", key);
			rc = s3_fail(s, &r, 0, what);
		}
	} else {
		snprintf(what, sizeof(what), "get '%s'", key);
		rc = s3_fail(s, &r, rc, what);
	}
	buf_reset(out);
out:
	free(k);
	return rc;
}

static int s3_del(struct obj_store *os, const char *key)
{
	struct s3_store *s = to_s3(os);
	struct buf resp = BUF_INIT;
	struct s3_req r = { .method = "DELETE", .resp = &resp };
	char *k = NULL, what[64 + OBJ_KEY_MAX], code[64];
	int rc;

	rc = full_key(s, key, &k);
	if (rc < 0)
		return rc;
	r.key = k;
	rc = s3_run(s, &r);
	if (rc == 0 && r.status == 404)
		err_code(&r, code, sizeof(code));
	if (rc == 0 && (r.status / 100 == 2 ||
			(r.status == 404 && strcmp(code, "NoSuchBucket"))))
		goto out; /* a missing key is deleted already */
	snprintf(what, sizeof(what), "delete '%s'", key);
	rc = s3_fail(s, &r, rc, what);
out:
	free(k);
	buf_release(&resp);
	return rc;
}

/*
 * Our token is the server's continuation token, or, for a server that says
 * "truncated" without one, '!' and the last full key (continue after it).
 * Server tokens are opaque base64-like strings that never start with '!'.
 */
static int list_fallback_token(const struct s3_store *s, struct obj_list *l)
{
	struct buf t = BUF_INIT;

	if (!l->truncated || l->next_token)
		return 0;
	if (l->n == 0) {
		l->truncated = false; /* nothing to continue after */
		return 0;
	}
	if (buf_appendf(&t, "!%s%s", s->prefix, l->items[l->n - 1].key) < 0)
		return -ENOMEM;
	l->next_token = buf_detach(&t, NULL);
	return l->next_token ? 0 : -ENOMEM;
}

static int s3_list(struct obj_store *os, const char *prefix,
		   const char *start_after, const char *token, int limit,
		   struct obj_list *out)
{
	struct s3_store *s = to_s3(os);
	struct buf resp = BUF_INIT, pfx = BUF_INIT, sa = BUF_INIT;
	struct s3_pair q[5];
	struct s3_req r = { .method = "GET", .resp = &resp, .query = q };
	char maxk[16], what[64 + OBJ_KEY_MAX];
	int rc;

	obj_list_reset(out);
	snprintf(maxk, sizeof(maxk), "%d", limit > 0 ? limit : 1000);
	rc = buf_appendf(&pfx, "%s%s", s->prefix, prefix ? prefix : "");
	if (rc == 0 && start_after && *start_after)
		rc = buf_appendf(&sa, "%s%s", s->prefix, start_after);
	if (rc < 0)
		goto out;
	q[r.nquery++] = (struct s3_pair){ "list-type", "2" };
	q[r.nquery++] = (struct s3_pair){ "max-keys", maxk };
	q[r.nquery++] = (struct s3_pair){ "prefix", pfx.data };
	if (token && token[0] == '!')
		q[r.nquery++] = (struct s3_pair){ "start-after", token + 1 };
	else if (token)
		q[r.nquery++] = (struct s3_pair){ "continuation-token", token };
	else if (sa.len)
		q[r.nquery++] = (struct s3_pair){ "start-after", sa.data };
	rc = s3_run(s, &r);
	if (rc == 0 && r.status == 200) {
		rc = s3_parse_list(resp.data, resp.len, s->prefix, out);
		if (rc == 0)
			rc = list_fallback_token(s, out);
		if (rc == -EIO)
			log_error("cannot list '%s' on '%s': malformed answer",
				  prefix ? prefix : "", s->base.desc);
		goto out;
	}
	snprintf(what, sizeof(what), "list '%s'", prefix ? prefix : "");
	rc = s3_fail(s, &r, rc, what);
out:
	if (rc < 0)
		obj_list_reset(out);
	buf_release(&resp);
	buf_release(&pfx);
	buf_release(&sa);
	return rc;
}

/* ---- bucket checks and creation -------------------------------------- */

/* HEAD the bucket: does it exist, and does it answer to us? */
static int s3_probe(struct s3_store *s, struct s3_req *r, struct buf *resp)
{
	memset(r, 0, sizeof(*r));
	r->method = "HEAD";
	r->resp = resp;
	return s3_run(s, r);
}

/* Why opening failed, as the one line the user sees. */
static int open_fail(const struct s3_store *s, const struct s3_req *r,
		     int rc)
{
	char why[512], code[64];

	if (rc == -ENOMEM)
		return log_fail(rc, "cannot open storage '%s'", s->base.desc);
	err_code(r, code, sizeof(code));
	if (rc == 0 && r->status == 403) {
		s3_why(s, r, why, sizeof(why));
		log_error("cannot open storage '%s': %s", s->base.desc, why);
		return -EACCES;
	}
	/* A HEAD answer has no body: 404 on the bucket says it all. */
	if (rc == 0 && r->status == 404 &&
	    (!code[0] || strcmp(code, "NoSuchBucket") == 0)) {
		log_error("cannot open storage '%s': bucket does not exist",
			  s->base.desc);
		return -ENOENT;
	}
	if (rc == 0 && r->bucket_region[0] &&
	    strcmp(r->bucket_region, s->region) != 0) {
		log_error("cannot open storage '%s': the bucket is in region "
			  "'%s', not '%s' (set AWS_REGION or ?region=)",
			  s->base.desc, r->bucket_region, s->region);
		return -EINVAL;
	}
	s3_why(s, r, why, sizeof(why));
	log_error("cannot open storage '%s': %s", s->base.desc, why);
	return -EIO;
}

static int s3_create_bucket(struct s3_store *s, struct s3_req *r,
			    struct buf *resp)
{
	struct buf body = BUF_INIT;
	char code[64];
	int rc = 0;

	memset(r, 0, sizeof(*r));
	r->method = "PUT";
	r->resp = resp;
	/* AWS wants the region named, except for its first one. */
	if (s->aws && strcmp(s->region, "us-east-1") != 0)
		rc = buf_appendf(&body,
				 "<CreateBucketConfiguration xmlns=\"http://s3."
				 "amazonaws.com/doc/2006-03-01/\"><Location"
				 "Constraint>%s</LocationConstraint></Create"
				 "BucketConfiguration>",
				 s->region);
	if (rc < 0)
		return rc;
	r->body = body.data ? body.data : "";
	r->body_len = body.len;
	rc = s3_run(s, r);
	buf_release(&body);
	r->body = NULL;
	if (rc < 0 || r->status / 100 == 2)
		return rc;
	err_code(r, code, sizeof(code));
	if (r->status == 409 && strcmp(code, "BucketAlreadyOwnedByYou") == 0)
		return 0;
	if (r->status == 409) {
		log_error("cannot create bucket '%s' for '%s': the name is "
			  "taken", s->bucket, s->base.desc);
		return -EEXIST;
	}
	return open_fail(s, r, rc);
}

/* Check the bucket answers; create it first when asked and missing. */
static int s3_check(struct s3_store *s, bool create)
{
	struct buf resp = BUF_INIT;
	struct s3_req r;
	int rc;

	rc = s3_probe(s, &r, &resp);
	if (rc == 0 && r.status == 404 && create) {
		rc = s3_create_bucket(s, &r, &resp);
		if (rc < 0)
			goto out;
		log_info("created bucket '%s' for '%s'", s->bucket,
			 s->base.desc);
		rc = s3_probe(s, &r, &resp);
	}
	if (rc == 0 && r.status / 100 == 2)
		goto out;
	if (s->offline_ok && rc != -ENOMEM && transient(&r)) {
		rc = 0; /* down; the opener reads obj_state and says so */
		goto out;
	}
	rc = open_fail(s, &r, rc);
out:
	buf_release(&resp);
	return rc;
}

static int s3_create(struct obj_store *os)
{
	return s3_check(to_s3(os), true);
}

static void s3_close(struct obj_store *os)
{
	struct s3_store *s = to_s3(os);

	for (int i = 0; i < s->nidle; i++)
		curl_easy_cleanup(s->idle[i]);
	if (s->share)
		curl_share_cleanup(s->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&s->share_lock[i]);
	pthread_mutex_destroy(&s->pool_lock);
	pthread_mutex_destroy(&s->state_lock);
	free(s->endpoint);
	free(s->host_hdr);
	free(s->host);
	free(s->bucket);
	free(s->bucket_path);
	free(s->prefix);
	free(s->region);
	s3_creds_release(&s->creds);
	free(s->cainfo);
	free(s);
}

static const struct obj_store_ops s3_ops = {
	.scheme = "s3",
	.put = s3_put,
	.get = s3_get,
	.head = s3_head,
	.del = s3_del,
	.list = s3_list,
	.sync = NULL, /* a PUT is durable when it returns */
	.create = s3_create,
	.state = s3_state,
	.close = s3_close,
};

/* ---- opening ---------------------------------------------------------- */

static bool bucket_ok(const char *b)
{
	size_t n = strlen(b);

	if (n < 1 || n > 255)
		return false;
	for (const char *p = b; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && *p != '-' && *p != '.' &&
		    *p != '_')
			return false;
	return true;
}

/* "a/b//" -> "a/b/"; "" and "/" -> "".  Takes ownership of @p. */
static char *norm_prefix(char *p)
{
	size_t n;
	char *q;

	if (!p)
		return NULL;
	q = p;
	while (*q == '/')
		q++;
	memmove(p, q, strlen(q) + 1);
	n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		p[--n] = '\0';
	if (n == 0)
		return p;
	q = realloc(p, n + 2);
	if (!q) {
		free(p);
		return NULL;
	}
	q[n] = '/';
	q[n + 1] = '\0';
	return q;
}

/* region=NAME is the only query a storage URL may carry. */
static int url_region(const struct url *u, const char **why, char **out)
{
	const char *v = getenv("TESSERA_REGION");

	if (u->query && strncmp(u->query, "region=", 7) == 0 &&
	    u->query[7] && !strchr(u->query, '&')) {
		v = u->query + 7;
	} else if (u->query) {
		*why = "unknown query (only ?region=NAME is accepted)";
		return -EINVAL;
	}
	if (!v || !*v)
		v = getenv("AWS_REGION");
	if (!v || !*v)
		v = "us-east-1";
	for (const char *p = v; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= '0' && *p <= '9') &&
		    *p != '-') {
			*why = "bad region name";
			return -EINVAL;
		}
	*out = strdup(v);
	return *out ? 0 : -ENOMEM;
}

/* s3://bucket/prefix: AWS, virtual-hosted, https. */
static int setup_aws(struct s3_store *s, const struct url *u,
		     const char **why)
{
	struct buf b = BUF_INIT;
	int rc;

	if (u->port) {
		*why = "s3:// URLs take no port "
		       "(use http[s]://host:port/bucket)";
		return -EINVAL;
	}
	s->aws = true;
	s->prefix = url_pct_decode(u->path, strlen(u->path));
	if (!s->prefix) {
		*why = "bad percent-escape in path";
		return -EINVAL;
	}
	s->prefix = norm_prefix(s->prefix);
	s->bucket = strdup(u->host);
	s->bucket_path = strdup("");
	if (!s->bucket || !s->prefix || !s->bucket_path)
		return -ENOMEM;
	if (!bucket_ok(s->bucket) || strchr(s->bucket, '_')) {
		*why = "bad bucket name";
		return -EINVAL;
	}
	rc = buf_appendf(&b, "%s.s3.%s.amazonaws.com", s->bucket, s->region);
	if (rc < 0)
		return rc;
	s->host_hdr = buf_detach(&b, NULL);
	s->host = strdup(s->host_hdr);
	rc = buf_appendf(&b, "https://%s", s->host_hdr);
	s->endpoint = rc == 0 ? buf_detach(&b, NULL) : NULL;
	if (!s->host_hdr || !s->host || !s->endpoint)
		return -ENOMEM;
	return 0;
}

/* http[s]://host[:port]/bucket[/prefix]: path-style, any S3 server. */
static int setup_path_style(struct s3_store *s, const struct url *u,
			    const char **why)
{
	const char *p = u->path + 1, *slash = strchr(p, '/');
	bool v6 = strchr(u->host, ':') != NULL;
	struct buf b = BUF_INIT;
	int rc;

	s->bucket = url_pct_decode(p, slash ? (size_t)(slash - p) : strlen(p));
	s->prefix = url_pct_decode(slash ? slash : "", slash ? strlen(slash) : 0);
	if (!s->bucket || !s->prefix) {
		*why = "bad percent-escape in path";
		return -EINVAL;
	}
	s->prefix = norm_prefix(s->prefix);
	s->host = strdup(u->host);
	if (!s->prefix || !s->host)
		return -ENOMEM;
	if (!bucket_ok(s->bucket)) {
		*why = "bad bucket name";
		return -EINVAL;
	}
	rc = buf_appendf(&b, "/%s", s->bucket);
	s->bucket_path = rc == 0 ? buf_detach(&b, NULL) : NULL;
	rc = buf_appendf(&b, "%s%s%s", v6 ? "[" : "", u->host, v6 ? "]" : "");
	if (rc == 0 && u->port)
		rc = buf_appendf(&b, ":%d", u->port);
	s->host_hdr = rc == 0 ? buf_detach(&b, NULL) : NULL;
	rc = s->host_hdr ? buf_appendf(&b, "%s://%s", u->scheme, s->host_hdr)
			 : -ENOMEM;
	s->endpoint = rc == 0 ? buf_detach(&b, NULL) : NULL;
	if (!s->bucket_path || !s->host_hdr || !s->endpoint)
		return -ENOMEM;
	return 0;
}

static int setup(struct s3_store *s, const char *url, const char **why)
{
	const char *ca = getenv("AWS_CA_BUNDLE");
	struct url u;
	int rc;

	rc = url_parse(url, &u, why);
	if (rc < 0)
		return rc;
	rc = url_region(&u, why, &s->region);
	if (rc == 0 && strcmp(u.scheme, "s3") == 0)
		rc = setup_aws(s, &u, why);
	else if (rc == 0)
		rc = setup_path_style(s, &u, why);
	/* A CA bundle matters for TLS only; plain http ignores it. */
	if (rc == 0 && ca && *ca && strcmp(u.scheme, "http") != 0) {
		s->cainfo = strdup(ca);
		if (!s->cainfo)
			rc = -ENOMEM;
	}
	url_release(&u);
	return rc;
}

static struct s3_store *s3_new(const char *url)
{
	struct s3_store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->base.ops = &s3_ops;
	url_redact(url, s->base.desc, sizeof(s->base.desc));
	pthread_mutex_init(&s->pool_lock, NULL);
	pthread_mutex_init(&s->state_lock, NULL);
	s->retries = (int)env_long("TESSERA_S3_RETRIES", S3_DEF_RETRIES, 0,
				   100);
	s->timeout_ms = env_long("TESSERA_S3_TIMEOUT_MS", S3_DEF_TIMEOUT_MS,
				 100, 24L * 3600 * 1000);
	s->connect_ms = env_long("TESSERA_S3_CONNECT_TIMEOUT_MS",
				 S3_DEF_CONNECT_MS, 100, 600000);
	if (share_init(s) < 0) {
		s3_close(&s->base);
		return NULL;
	}
	return s;
}

int obj_s3_open(const char *url, unsigned flags, struct obj_store **out)
{
	const char *why = "out of memory";
	struct s3_store *s;
	int rc;

	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK) {
		log_error("cannot open storage: libcurl failed to start");
		return -EIO;
	}
	s = s3_new(url);
	if (!s)
		return log_fail(-ENOMEM, "cannot open storage");
	rc = setup(s, url, &why);
	if (rc < 0) {
		log_error("invalid storage URL '%s': %s", s->base.desc, why);
		goto fail;
	}
	rc = s3_creds_load(&s->creds);
	if (rc < 0)
		goto fail;
	if (strlen(s->prefix) > OBJ_KEY_MAX / 2) {
		log_error("invalid storage URL '%s': prefix too long",
			  s->base.desc);
		rc = -EINVAL;
		goto fail;
	}
	s->offline_ok = flags & OBJ_OPEN_OFFLINE;
	rc = s3_check(s, flags & OBJ_OPEN_CREATE);
	if (rc < 0)
		goto fail;
	s->opened = true;
	*out = &s->base;
	return 0;
fail:
	s3_close(&s->base);
	return rc;
}
