/*
 * engine_etcd.c - the kv.h engine on etcd v3 (3.4 or later), through its
 * JSON gateway (/v3/kv/range, /v3/kv/txn, /v3/kv/deleterange,
 * /v3/lease/grant, /v3/auth/authenticate) with libcurl and jansson.
 *
 * URL: etcd://[user:pass@]host:port[,host:port...][/prefix]; etcds:// for
 * https (the system's CA store).  Password also from TESSERA_META_PASSWORD.
 *
 * Layout: every key of the volume starts with K = prefix + "/" (prefix
 * "/tessera" when the URL has no path).  Record (g, key) is K + byte g +
 * key, so a group is a key range and etcd's byte order is kv.h's order.
 * Group byte 0 is the engine's own:
 *
 *   K \0 "schema"     "1": written by format (create)
 *   K \0 "seq"        put by every writing commit (see fallback below)
 *   K \0 "txn/" ID    "c" (committed) or "f" (fenced), on a lease
 *
 * Read-only txns: begin asks for the current revision R (one linearizable
 * range); every read is at revision R: a snapshot taken at begin.
 *
 * Read-write txns are optimistic.  The first read fixes R; every read is
 * at R.  Writes are buffered in the txn (get sees them, scan merges them).
 * commit sends one /v3/kv/txn whose compares check what was read:
 *   - each key read (get, or visited by a scan): mod_revision == the one
 *     seen (0 for a missing key: etcd compares a missing key as zeroes);
 *   - each span a scan covered: mod_revision < R + 1 over the span, so no
 *     key appeared or changed there since R (phantoms); a key deleted
 *     from the span is caught by its own compare above;
 *   - the txn marker K\0txn/ID does not exist (create_revision == 0).
 * Success ops: the puts and deletes, the marker ("c") and the seq key.
 * "succeeded": false is a conflict: -EAGAIN.  A txn that wrote nothing
 * commits without a request (its reads were one snapshot).
 *
 * Fallback: etcd refuses more than 128 compares (--max-txn-ops) in a txn.
 * A txn that read more keys compares only seq: mod_revision < R + 1, i.e.
 * no writing txn committed since R (coarse, but exact).
 *
 * Size limits: more than --max-txn-ops writes, or a request over
 * --max-request-bytes (1.5 MiB by default), is refused by etcd; commit
 * then logs one line naming the limit and returns -EFBIG.  A txn is never
 * split: it would not be atomic.
 *
 * Failover and unknown outcomes: requests go to the current member; a
 * connection error, a timeout, a 5xx or gRPC Unavailable moves to the next
 * listed member and retries (reads, lease grants, fences) with backoff
 * until ET_OUTAGE_MS, then -EIO.  A commit is never resent: when its
 * outcome is unknown (the member died or timed out after the request was
 * sent, or answered "leader changed") the engine fences its marker with a
 * second txn: "create K\0txn/ID = f unless it exists, else read it".  If
 * the fence created it, the first txn can never apply (its compare fails)
 * and commit returns -EAGAIN (meta/ runs the txn again); if the marker
 * holds "c", the txn applied: 0.  So a txn is never applied twice and
 * never reported failed when it applied.  Markers live on a lease
 * (ET_LEASE_TTL_S) regranted when a third of it has passed, so they
 * outlive any request by far and then vanish.
 *
 * Authentication: with a user, /v3/auth/authenticate gives a token sent
 * as Authorization; an expired token (Unauthenticated) is renewed and the
 * request resent (it was not applied).  A wrong password: -EACCES at open.
 *
 * Connections: remote.h's pool of curl handles (ET_POOL_MAX); curl keeps
 * the HTTP connections alive.  Locks: e->lock guards token and lease only,
 * never held across I/O.
 *
 * sync is NULL: etcd answers a txn after it is committed to a quorum's log.
 */
#include "util/common.h"
#include "meta/kv.h"
#include "meta/remote.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/url.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define ET_POOL_MAX 64
#define ET_CONNECT_MS 1000
#define ET_REQ_MS 5000
#define ET_OUTAGE_MS 15000
#define ET_OPEN_MS 3000
#define ET_LEASE_TTL_S 600
#define ET_MAX_CMP 128
#define ET_PORT 2379
#define ET_SCHEMA_VERSION 1
#define ET_DEF_PREFIX "/tessera"

/* Outcomes of one request, besides 0 (HTTP 200, JSON parsed) and -errno. */
#define ET_GRPC 1    /* a definite error answer: not applied */
#define ET_UNKNOWN 2 /* a once-only request whose outcome is unknown */

/* gRPC codes the gateway returns */
#define G_INVALID 3
#define G_NOTFOUND 5
#define G_DENIED 7
#define G_OUTOFRANGE 11
#define G_UNAVAILABLE 14
#define G_UNAUTH 16

struct et_conn {
	struct rm_conn rm; /* first: the pool's */
	CURL *h;
	struct buf resp;
};

struct et_engine {
	struct kv_engine base;
	char **ep; /* "http://host:port" */
	size_t nep;
	atomic_uint cur; /* member in use */
	char *user;
	char *pass;
	unsigned char *kp; /* key prefix K */
	size_t kplen;
	struct rm_pool pool;
	pthread_mutex_t lock;
	char *token;	  /* guarded by lock */
	int64_t lease;	  /* guarded by lock; 0: none */
	int64_t lease_ms; /* guarded by lock: when granted */
	uint64_t idbase;
	atomic_ullong idseq;
};

struct et_wr {
	int grp;
	bool del;
	size_t klen;
	size_t vlen;
	unsigned char *data; /* key, then value */
};

struct et_rd {
	unsigned char *key; /* full etcd key */
	size_t klen;
	int64_t mod;
};

struct et_span {
	unsigned char *lo;
	size_t lolen;
	unsigned char *hi;
	size_t hilen;
};

struct et_txn {
	struct kv_txn base;
	struct et_conn *conn;
	int64_t rev; /* snapshot; 0 before the first read of a rw txn */
	struct et_wr *w;
	size_t nw, capw;
	struct et_rd *r;
	size_t nr, capr;
	struct et_span *sp;
	size_t nsp, capsp;
};

static struct et_engine *et_eng(struct kv_engine *e)
{
	return (struct et_engine *)e;
}

static struct et_txn *et_txn(struct kv_txn *t)
{
	return (struct et_txn *)t;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* ---- base64 and JSON helpers ---- */

static json_t *b64(const void *p, size_t n)
{
	size_t cap = 4 * ((n + 2) / 3) + 1;
	char *s = malloc(cap);
	json_t *j;

	if (!s)
		return NULL;
	EVP_EncodeBlock((unsigned char *)s, p, (int)n);
	j = json_string(s);
	free(s);
	return j;
}

/* Decode base64 string @j into @out (reset first). */
static int unb64(const json_t *j, struct buf *out)
{
	const char *s = json_string_value(j);
	size_t n = s ? json_string_length(j) : 0;
	int len, pad = 0;

	buf_reset(out);
	if (!j) /* the gateway leaves out empty fields */
		return buf_grow(out, 1);
	if (!s || n % 4)
		return -EIO;
	if (n == 0)
		return buf_grow(out, 1);
	if (buf_grow(out, n / 4 * 3 + 1) < 0)
		return -ENOMEM;
	len = EVP_DecodeBlock((unsigned char *)out->data,
			      (const unsigned char *)s, (int)n);
	if (len < 0)
		return -EIO;
	pad = (s[n - 1] == '=') + (s[n - 2] == '=');
	out->len = (size_t)len - (size_t)pad;
	out->data[out->len] = '\0';
	return 0;
}

/* An int64 the gateway sends as a string (or a number); 0 when absent. */
static int64_t jint(const json_t *o, const char *name)
{
	const json_t *j = json_object_get(o, name);

	if (json_is_string(j))
		return strtoll(json_string_value(j), NULL, 10);
	if (json_is_integer(j))
		return (int64_t)json_integer_value(j);
	return 0;
}

static int jset(json_t *o, const char *name, json_t *v)
{
	return v && json_object_set_new(o, name, v) == 0 ? 0 : -ENOMEM;
}

static int jset_b64(json_t *o, const char *name, const void *p, size_t n)
{
	return jset(o, name, b64(p, n));
}

/* ---- keys ---- */

/* K + g + key into @out (room for kplen + 1 + KV_KEY_MAX + 1). */
static size_t full_key(const struct et_engine *e, int grp, const void *key,
		       size_t klen, unsigned char *out)
{
	memcpy(out, e->kp, e->kplen);
	out[e->kplen] = (unsigned char)grp;
	if (klen)
		memcpy(out + e->kplen + 1, key, klen);
	return e->kplen + 1 + klen;
}

/* K + "\0" + name. */
static size_t own_key(const struct et_engine *e, const char *name,
		      unsigned char *out)
{
	return full_key(e, 0, name, strlen(name), out);
}

#define KEYBUF(e) ((e)->kplen + KV_KEY_MAX + 2)

/* ---- HTTP ---- */

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	struct buf *b = arg;

	return buf_append(b, p, sz * n) == 0 ? sz * n : 0;
}

static void conn_hangup(struct rm_conn *rc)
{
	struct et_conn *c = (struct et_conn *)rc;

	if (c->h)
		curl_easy_cleanup(c->h);
	c->h = NULL;
	buf_release(&c->resp);
}

static bool conn_alive(struct rm_conn *rc)
{
	return ((struct et_conn *)rc)->h != NULL;
}

static int conn_dial(void *eng, struct rm_conn *rc)
{
	struct et_conn *c = (struct et_conn *)rc;

	UNUSED(eng);
	c->h = curl_easy_init();
	if (!c->h)
		return -ENOMEM;
	buf_init(&c->resp);
	curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS, (long)ET_CONNECT_MS);
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, (long)ET_REQ_MS);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->resp);
	curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
	return 0;
}

static const struct rm_pool_ops et_pool_ops = {
	.conn_size = sizeof(struct et_conn),
	.dial = conn_dial,
	.hangup = conn_hangup,
	.alive = conn_alive,
};

/* What one HTTP exchange gave. */
struct et_res {
	json_t *j;    /* parsed answer (200) or error body */
	int code;     /* gRPC code of an error answer */
	char msg[200]; /* its message, or the transport error */
};

/*
 * POST @body to member @ep.  0: a JSON answer (200: res->code 0; else
 * the gRPC code); -EAGAIN: transport failure or a 5xx without JSON (try
 * elsewhere); -ENOMEM.
 */
static int post_once(struct et_engine *e, struct et_conn *c, unsigned ep,
		     const char *path, const char *body, struct et_res *res)
{
	char url[600], auth[600];
	struct curl_slist *hdr = NULL, *h2;
	json_error_t jerr;
	CURLcode cc;
	long status = 0;

	snprintf(url, sizeof(url), "%s%s", e->ep[ep], path);
	h2 = curl_slist_append(hdr, "Content-Type: application/json");
	if (!h2)
		return -ENOMEM;
	hdr = h2;
	pthread_mutex_lock(&e->lock);
	if (e->token) {
		snprintf(auth, sizeof(auth), "Authorization: %s", e->token);
		h2 = curl_slist_append(hdr, auth);
		hdr = h2 ? h2 : hdr;
	}
	pthread_mutex_unlock(&e->lock);
	buf_reset(&c->resp);
	curl_easy_setopt(c->h, CURLOPT_URL, url);
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)strlen(body));
	cc = curl_easy_perform(c->h);
	curl_slist_free_all(hdr);
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, NULL);
	res->j = NULL;
	res->code = 0;
	if (cc != CURLE_OK) {
		snprintf(res->msg, sizeof(res->msg), "%s",
			 curl_easy_strerror(cc));
		res->code = cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
			    : cc == CURLE_COULDNT_RESOLVE_HOST ? -EHOSTUNREACH
			    : cc == CURLE_COULDNT_CONNECT	? -ECONNREFUSED
								: -EIO;
		return -EAGAIN;
	}
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
	res->j = json_loadb(c->resp.data ? c->resp.data : "", c->resp.len,
			    JSON_DISABLE_EOF_CHECK, &jerr);
	if (!res->j) {
		snprintf(res->msg, sizeof(res->msg), "HTTP %ld: %.120s", status,
			 c->resp.data ? c->resp.data : "");
		res->code = -EIO;
		return -EAGAIN;
	}
	if (status == 200)
		return 0;
	res->code = (int)jint(res->j, "code");
	snprintf(res->msg, sizeof(res->msg), "%s",
		 json_string_value(json_object_get(res->j, "error"))
			 ?: "unknown error");
	if (res->code <= 0)
		res->code = 2;
	return 0;
}

static int authenticate(struct et_engine *e, struct et_conn *c, int64_t until);

/* Errors worth trying on another member (or again after an election). */
static bool transient(const struct et_res *r)
{
	return r->code == G_UNAVAILABLE || r->code == 4 /* deadline */ ||
	       r->code == 2 /* unknown: e.g. a stopping member */ ||
	       strstr(r->msg, "too many requests") != NULL;
}

/*
 * Send @body to @path, failing over between the members until @until
 * (monotonic ms).  @once: the request must not be resent after it may
 * have reached a member (a commit): such failures give ET_UNKNOWN.
 * Returns 0 (res->j the answer; caller json_decrefs), ET_GRPC (a definite
 * error: res->code, res->msg; not applied), ET_UNKNOWN, or -errno
 * (-EIO and friends: no member answered in time; logged by the caller).
 */
static int et_post(struct et_engine *e, struct et_conn *c, const char *path,
		   const char *body, bool once, int64_t until,
		   struct et_res *res)
{
	unsigned tries = 0, reauth = 0;
	long backoff = 20;
	int rc;

	for (;;) {
		unsigned ep = atomic_load(&e->cur) % (unsigned)e->nep;

		rc = post_once(e, c, ep, path, body, res);
		if (rc == -ENOMEM)
			return rc;
		if (rc == 0 && res->code == 0)
			return 0;
		if (rc == 0 && res->code == G_UNAUTH && e->user &&
		    reauth++ < 3) {
			json_decref(res->j);
			rc = authenticate(e, c, until);
			if (rc < 0)
				return rc;
			continue;
		}
		if (rc == 0 && !transient(res))
			return ET_GRPC;
		json_decref(res->j);
		res->j = NULL;
		log_debug("etcd '%s': %s: member %s: %s", e->base.desc, path,
			  e->ep[ep], res->msg);
		/* a refused connection never reached the member */
		if (once && !(rc == -EAGAIN && res->code == -ECONNREFUSED))
			return ET_UNKNOWN;
		if (res->code == G_UNAVAILABLE || res->code == 2)
			res->code = -EIO;
		unsigned exp = ep;
		atomic_compare_exchange_strong(&e->cur, &exp, ep + 1);
		if (++tries % e->nep == 0) {
			if (now_ms() + backoff >= until)
				return res->code < 0 ? res->code : -EIO;
			sleep_ms(backoff);
			backoff = MIN(backoff * 2, 500);
		} else if (now_ms() >= until) {
			return res->code < 0 ? res->code : -EIO;
		}
	}
}

static int et_json_post(struct et_engine *e, struct et_conn *c,
			const char *path, json_t *req, bool once, int64_t until,
			struct et_res *res)
{
	char *body = json_dumps(req, JSON_COMPACT);
	int rc;

	if (!body)
		return -ENOMEM;
	rc = et_post(e, c, path, body, once, until, res);
	free(body);
	return rc;
}

static int authenticate(struct et_engine *e, struct et_conn *c, int64_t until)
{
	const char *pass = rm_password(e->pass);
	json_t *req = json_object();
	struct et_res res;
	char *old;
	int rc;

	if (!req || jset(req, "name", json_string(e->user)) < 0 ||
	    jset(req, "password", json_string(pass ? pass : "")) < 0) {
		json_decref(req);
		return -ENOMEM;
	}
	pthread_mutex_lock(&e->lock);
	old = e->token;
	e->token = NULL;
	pthread_mutex_unlock(&e->lock);
	free(old);
	rc = et_json_post(e, c, "/v3/auth/authenticate", req, false, until,
			  &res);
	json_decref(req);
	if (rc == ET_GRPC) {
		log_error("cannot authenticate to '%s': %s", e->base.desc,
			  res.msg);
		json_decref(res.j);
		return -EACCES;
	}
	if (rc < 0)
		return log_fail(rc, "cannot connect to '%s': %s",
				e->base.desc, res.msg);
	old = json_string_value(json_object_get(res.j, "token"))
		      ? strdup(json_string_value(
				json_object_get(res.j, "token")))
		      : NULL;
	json_decref(res.j);
	if (!old)
		return log_fail(-EIO, "etcd '%s': no token in the answer",
				e->base.desc);
	pthread_mutex_lock(&e->lock);
	free(e->token);
	e->token = old;
	pthread_mutex_unlock(&e->lock);
	return 0;
}

/* Log a definite error answer of @what and map it to -errno. */
static int grpc_rc(struct et_engine *e, const struct et_res *res,
		   const char *what)
{
	if (strstr(res->msg, "too many operations") ||
	    strstr(res->msg, "request is too large")) {
		log_error("etcd '%s': %s refused: %s (the transaction exceeds "
			  "the server's --max-txn-ops or --max-request-bytes)",
			  e->base.desc, what, res->msg);
		return -EFBIG;
	}
	if (strstr(res->msg, "has been compacted")) {
		log_debug("etcd '%s': %s: %s", e->base.desc, what, res->msg);
		return -EAGAIN;
	}
	log_error("etcd '%s': %s failed: %s", e->base.desc, what, res->msg);
	switch (res->code) {
	case G_DENIED:
	case G_UNAUTH:
		return -EACCES;
	default:
		return -EIO;
	}
}

/* Outage past the bound: one line. */
static int outage_rc(struct et_engine *e, int rc, const struct et_res *res,
		     const char *what)
{
	if (rc == -ENOMEM)
		return rc;
	log_error("etcd '%s': %s: no member answered: %s", e->base.desc, what,
		  res->msg);
	return -EIO;
}

/* ---- range reads ---- */

/*
 * Range [key, end) (end NULL: the key alone) at revision @rev (0: the
 * latest, linearizable), at most @limit (0: all).  0 and *out the answer.
 */
static int et_range(struct et_engine *e, struct et_conn *c, const void *key,
		    size_t klen, const void *end, size_t elen, int64_t rev,
		    size_t limit, bool keys_only, json_t **out)
{
	json_t *req = json_object();
	struct et_res res;
	int rc = req ? jset_b64(req, "key", key, klen) : -ENOMEM;

	if (rc == 0 && end)
		rc = jset_b64(req, "range_end", end, elen);
	if (rc == 0 && limit)
		rc = jset(req, "limit", json_integer((json_int_t)limit));
	if (rc == 0 && rev)
		rc = jset(req, "revision", json_integer(rev));
	if (rc == 0 && rev)
		rc = jset(req, "serializable", json_true());
	if (rc == 0 && keys_only)
		rc = jset(req, "keys_only", json_true());
	if (rc < 0) {
		json_decref(req);
		return rc;
	}
	rc = et_json_post(e, c, "/v3/kv/range", req, false,
			  now_ms() + ET_OUTAGE_MS, &res);
	if (rc == ET_GRPC && rev && strstr(res.msg, "future revision")) {
		/* a member behind the one that gave @rev: ask the leader */
		json_decref(res.j);
		json_object_del(req, "serializable");
		rc = et_json_post(e, c, "/v3/kv/range", req, false,
				  now_ms() + ET_OUTAGE_MS, &res);
	}
	json_decref(req);
	if (rc == ET_GRPC) {
		rc = grpc_rc(e, &res, "range");
		json_decref(res.j);
		return rc;
	}
	if (rc < 0)
		return outage_rc(e, rc, &res, "range");
	*out = res.j;
	return 0;
}

static int64_t header_rev(const json_t *j)
{
	return jint(json_object_get(j, "header"), "revision");
}

/* ---- the write and read sets ---- */

static struct et_wr *ws_find(struct et_txn *t, int grp, const void *key,
			     size_t klen)
{
	for (size_t i = t->nw; i-- > 0;) {
		struct et_wr *w = &t->w[i];

		if (w->grp == grp && w->klen == klen &&
		    memcmp(w->data, key, klen) == 0)
			return w;
	}
	return NULL;
}

static int ws_set(struct et_txn *t, int grp, const void *key, size_t klen,
		  const void *val, size_t vlen, bool del)
{
	struct et_wr *w = ws_find(t, grp, key, klen);
	unsigned char *data = malloc(klen + vlen + 1);

	if (!data)
		return -ENOMEM;
	memcpy(data, key, klen);
	if (vlen)
		memcpy(data + klen, val, vlen);
	if (!w) {
		if (t->nw == t->capw) {
			size_t cap = t->capw ? t->capw * 2 : 16;
			struct et_wr *v = realloc(t->w, cap * sizeof(*v));

			if (!v) {
				free(data);
				return -ENOMEM;
			}
			t->w = v;
			t->capw = cap;
		}
		w = &t->w[t->nw++];
	} else {
		free(w->data);
	}
	*w = (struct et_wr){grp, del, klen, vlen, data};
	return 0;
}

static int rs_add(struct et_txn *t, const void *key, size_t klen, int64_t mod)
{
	unsigned char *k;

	if (!t->base.rw)
		return 0;
	if (t->nr == t->capr) {
		size_t cap = t->capr ? t->capr * 2 : 16;
		struct et_rd *v = realloc(t->r, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->r = v;
		t->capr = cap;
	}
	k = malloc(klen ? klen : 1);
	if (!k)
		return -ENOMEM;
	memcpy(k, key, klen);
	t->r[t->nr++] = (struct et_rd){k, klen, mod};
	return 0;
}

static int span_add(struct et_txn *t, const void *lo, size_t lolen,
		    const void *hi, size_t hilen)
{
	struct et_span *s;

	if (!t->base.rw)
		return 0;
	if (t->nsp == t->capsp) {
		size_t cap = t->capsp ? t->capsp * 2 : 8;
		struct et_span *v = realloc(t->sp, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->sp = v;
		t->capsp = cap;
	}
	s = &t->sp[t->nsp];
	s->lo = malloc(lolen + 1);
	s->hi = malloc(hilen + 1);
	if (!s->lo || !s->hi) {
		free(s->lo);
		free(s->hi);
		return -ENOMEM;
	}
	memcpy(s->lo, lo, lolen);
	memcpy(s->hi, hi, hilen);
	s->lolen = lolen;
	s->hilen = hilen;
	t->nsp++;
	return 0;
}

static void txn_free(struct et_txn *t)
{
	for (size_t i = 0; i < t->nw; i++)
		free(t->w[i].data);
	for (size_t i = 0; i < t->nr; i++)
		free(t->r[i].key);
	for (size_t i = 0; i < t->nsp; i++) {
		free(t->sp[i].lo);
		free(t->sp[i].hi);
	}
	free(t->w);
	free(t->r);
	free(t->sp);
	free(t);
}

static void txn_end(struct et_txn *t)
{
	rm_put(&et_eng(t->base.eng)->pool, &t->conn->rm, true);
	txn_free(t);
}

/* ---- transactions ---- */

static int et_begin(struct kv_engine *base, bool rw, struct kv_txn **out)
{
	struct et_engine *e = et_eng(base);
	struct et_txn *t = calloc(1, sizeof(*t));
	unsigned char k[64 + 1024];
	struct rm_conn *rc_conn;
	json_t *j;
	int rc;

	if (!t)
		return -ENOMEM;
	rc = rm_get(&e->pool, &rc_conn, NULL);
	if (rc < 0) {
		free(t);
		return rc;
	}
	t->conn = (struct et_conn *)rc_conn;
	t->base.eng = base;
	t->base.rw = rw;
	if (!rw) {
		/* the snapshot: the revision now */
		size_t kl = own_key(e, "schema", k);

		rc = et_range(e, t->conn, k, kl, NULL, 0, 0, 0, true, &j);
		if (rc < 0) {
			txn_end(t);
			return rc;
		}
		t->rev = header_rev(j);
		json_decref(j);
	}
	*out = &t->base;
	return 0;
}

/* Take the snapshot revision from the first answer of a rw txn. */
static void take_rev(struct et_txn *t, const json_t *j)
{
	if (!t->rev)
		t->rev = header_rev(j);
}

static int et_get(struct kv_txn *bt, int grp, const void *key, size_t klen,
		  struct buf *val)
{
	struct et_txn *t = et_txn(bt);
	struct et_engine *e = et_eng(bt->eng);
	unsigned char *k;
	const json_t *kv;
	struct et_wr *w;
	json_t *j;
	size_t kl;
	int rc;

	buf_reset(val);
	if (klen > KV_KEY_MAX)
		return -EINVAL;
	w = bt->rw ? ws_find(t, grp, key, klen) : NULL;
	if (w) {
		if (w->del)
			return -ENOENT;
		return buf_append(val, w->data + w->klen, w->vlen);
	}
	k = malloc(KEYBUF(e));
	if (!k)
		return -ENOMEM;
	kl = full_key(e, grp, key, klen, k);
	rc = et_range(e, t->conn, k, kl, NULL, 0, t->rev, 0, false, &j);
	if (rc < 0) {
		free(k);
		return rc;
	}
	take_rev(t, j);
	kv = json_array_get(json_object_get(j, "kvs"), 0);
	rc = rs_add(t, k, kl, kv ? jint(kv, "mod_revision") : 0);
	if (rc == 0 && !kv)
		rc = -ENOENT;
	if (rc == 0) {
		rc = unb64(json_object_get(kv, "value"), val);
		if (rc == -EIO)
			log_error("etcd '%s': bad value in an answer",
				  e->base.desc);
	}
	json_decref(j);
	free(k);
	return rc;
}

static int et_put(struct kv_txn *bt, int grp, const void *key, size_t klen,
		  const void *val, size_t vlen)
{
	if (!bt->rw)
		return -EROFS;
	if (klen > KV_KEY_MAX || vlen > KV_VAL_MAX)
		return -EINVAL;
	return ws_set(et_txn(bt), grp, key, klen, val, vlen, false);
}

static int et_del(struct kv_txn *bt, int grp, const void *key, size_t klen)
{
	if (!bt->rw)
		return -EROFS;
	if (klen > KV_KEY_MAX)
		return -EINVAL;
	return ws_set(et_txn(bt), grp, key, klen, NULL, 0, true);
}

/* ---- scan ---- */

/* A buffered write in the scanned range, copied: callbacks may write. */
struct et_loc {
	bool del;
	size_t klen;
	size_t vlen;
	unsigned char *data;
};

struct et_scan {
	struct et_txn *t;
	struct et_engine *e;
	int grp;
	const unsigned char *prefix;
	size_t plen;
	unsigned char *lo; /* full key: next one to ask for */
	size_t lolen;
	size_t lo0len;	   /* length of the first one, in lo0 */
	unsigned char *lo0;
	unsigned char *hi; /* full key: end of the range */
	size_t hilen;
	unsigned char *last; /* full key: the last one visited */
	size_t lastlen;
	size_t limit;
	size_t done;
	size_t rows;
	kv_scan_fn fn;
	void *arg;
	struct et_loc *loc;
	size_t nloc;
	size_t li;
	struct buf k;
	struct buf v;
};

static int loc_cmp(const void *a, const void *b)
{
	const struct et_loc *x = a, *y = b;

	return kv_key_cmp(x->data, x->klen, y->data, y->klen);
}

static bool has_prefix(const void *k, size_t kl, const void *p, size_t pl)
{
	return kl >= pl && (pl == 0 || memcmp(k, p, pl) == 0);
}

/* Copy the buffered writes in [start, prefix end), sorted. */
static int scan_local(struct et_scan *s, const void *start, size_t slen)
{
	struct et_txn *t = s->t;

	if (!t->base.rw || !t->nw)
		return 0;
	s->loc = calloc(t->nw, sizeof(*s->loc));
	if (!s->loc)
		return -ENOMEM;
	for (size_t i = 0; i < t->nw; i++) {
		const struct et_wr *w = &t->w[i];
		struct et_loc *l;

		if (w->grp != s->grp ||
		    !has_prefix(w->data, w->klen, s->prefix, s->plen) ||
		    kv_key_cmp(w->data, w->klen, start, slen) < 0)
			continue;
		l = &s->loc[s->nloc];
		l->data = malloc(w->klen + w->vlen + 1);
		if (!l->data)
			return -ENOMEM;
		memcpy(l->data, w->data, w->klen + w->vlen);
		l->del = w->del;
		l->klen = w->klen;
		l->vlen = w->vlen;
		s->nloc++;
	}
	qsort(s->loc, s->nloc, sizeof(*s->loc), loc_cmp);
	return 0;
}

/* Remember @k (a group-relative key) as the last one visited. */
static void set_last(struct et_scan *s, const void *k, size_t kl)
{
	s->lastlen = full_key(s->e, s->grp, k, kl, s->last);
}

static int scan_emit(struct et_scan *s, const void *k, size_t kl, const void *v,
		     size_t vl)
{
	int rc = s->fn(s->arg, k, kl, v, vl);

	set_last(s, k, kl);
	if (rc)
		return rc;
	s->done++;
	return s->limit && s->done >= s->limit;
}

/* Visit the buffered puts before key @k (NULL: all left); see redis. */
static int scan_local_upto(struct et_scan *s, const void *k, size_t kl,
			   bool *same)
{
	int rc = 0;

	*same = false;
	while (s->li < s->nloc) {
		const struct et_loc *w = &s->loc[s->li];
		int c = k ? kv_key_cmp(w->data, w->klen, k, kl) : -1;

		if (c > 0)
			break;
		s->li++;
		*same = c == 0;
		if (!w->del)
			rc = scan_emit(s, w->data, w->klen, w->data + w->klen,
				       w->vlen);
		if (rc || *same)
			break;
	}
	return rc;
}

/*
 * Fetch and visit one page: 0 more pages, 1 stopped (limit or callback),
 * 2 no more on the server, <0 error.
 */
static int scan_page(struct et_scan *s)
{
	struct et_txn *t = s->t;
	struct et_engine *e = s->e;
	size_t page = s->rows, n, bytes = 0, pre = e->kplen + 1;
	json_t *j, *kvs;
	bool more;
	int rc;

	if (s->limit)
		page = MIN(page, s->limit - s->done + (s->nloc - s->li));
	rc = et_range(e, t->conn, s->lo, s->lolen, s->hi, s->hilen, t->rev,
		      page, false, &j);
	if (rc < 0)
		return rc;
	take_rev(t, j);
	kvs = json_object_get(j, "kvs");
	n = json_array_size(kvs);
	more = json_is_true(json_object_get(j, "more"));
	for (size_t i = 0; i < n && rc == 0; i++) {
		const json_t *kv = json_array_get(kvs, i);
		bool same;

		rc = unb64(json_object_get(kv, "key"), &s->k);
		if (rc == 0)
			rc = unb64(json_object_get(kv, "value"), &s->v);
		if (rc == 0 && s->k.len < pre)
			rc = -EIO;
		if (rc < 0) {
			if (rc == -EIO)
				log_error("etcd '%s': bad key or value in an "
					  "answer",
					  e->base.desc);
			break;
		}
		bytes += s->v.len;
		/* the next page starts after this key */
		memcpy(s->lo, s->k.data, s->k.len);
		s->lo[s->k.len] = 0;
		s->lolen = s->k.len + 1;
		rc = rs_add(t, s->k.data, s->k.len, jint(kv, "mod_revision"));
		if (rc < 0)
			break;
		rc = scan_local_upto(s, s->k.data + pre, s->k.len - pre,
				     &same);
		if (rc || same)
			continue;
		/* copies: the callback may reuse this txn's buffers */
		rc = scan_emit(s, s->k.data + pre, s->k.len - pre, s->v.data,
			       s->v.len);
	}
	json_decref(j);
	s->rows = rm_next_rows(n, bytes);
	if (rc == 0 && !more)
		rc = 2;
	return rc;
}

static int et_scan(struct kv_txn *bt, int grp, const void *prefix, size_t plen,
		   const void *start, size_t slen, size_t limit, kv_scan_fn fn,
		   void *arg)
{
	struct et_engine *e = et_eng(bt->eng);
	struct et_scan s = {.t = et_txn(bt),
			    .e = e,
			    .grp = grp,
			    .prefix = plen ? prefix : (const void *)"",
			    .plen = plen,
			    .limit = limit,
			    .rows = RM_PAGE_FIRST,
			    .fn = fn,
			    .arg = arg,
			    .k = BUF_INIT,
			    .v = BUF_INIT};
	unsigned char pend[KV_KEY_MAX];
	const void *from = s.prefix;
	size_t fromlen = plen, pendlen;
	bool same;
	int rc;

	if (plen > KV_KEY_MAX || slen > KV_KEY_MAX)
		return -EINVAL;
	if (start && kv_key_cmp(start, slen, s.prefix, plen) > 0) {
		from = start;
		fromlen = slen;
	}
	s.lo = malloc(KEYBUF(e));
	s.lo0 = malloc(KEYBUF(e));
	s.hi = malloc(KEYBUF(e));
	s.last = malloc(KEYBUF(e));
	rc = s.lo && s.lo0 && s.hi && s.last ? 0 : -ENOMEM;
	if (rc < 0)
		goto out;
	s.lolen = full_key(e, grp, from, fromlen, s.lo);
	memcpy(s.lo0, s.lo, s.lolen);
	s.lo0len = s.lolen;
	pendlen = kv_prefix_end(s.prefix, plen, pend);
	if (pendlen)
		s.hilen = full_key(e, grp, pend, pendlen, s.hi);
	else /* the whole group: up to the next group */
		s.hilen = kv_prefix_end(s.lo, e->kplen + 1, s.hi);
	rc = scan_local(&s, from, fromlen);
	while (rc == 0)
		rc = scan_page(&s);
	if (rc == 2)
		rc = scan_local_upto(&s, NULL, 0, &same);
	/* the span this scan depends on: to the end, or the last visited */
	if (rc == 0) {
		rc = span_add(s.t, s.lo0, s.lo0len, s.hi, s.hilen);
	} else if (rc == 1) {
		s.last[s.lastlen] = 0;
		rc = span_add(s.t, s.lo0, s.lo0len, s.last, s.lastlen + 1);
	}
out:
	for (size_t i = 0; i < s.nloc; i++)
		free(s.loc[i].data);
	free(s.loc);
	free(s.lo);
	free(s.lo0);
	free(s.hi);
	free(s.last);
	buf_release(&s.k);
	buf_release(&s.v);
	return rc;
}

/* ---- commit ---- */

static int rd_cmp(const void *a, const void *b)
{
	const struct et_rd *x = a, *y = b;
	int c = kv_key_cmp(x->key, x->klen, y->key, y->klen);

	return c ? c : (x->mod > y->mod) - (x->mod < y->mod);
}

/* Sort the reads and drop duplicates; the number left. */
static size_t rs_unique(struct et_txn *t)
{
	size_t n = 0;

	qsort(t->r, t->nr, sizeof(*t->r), rd_cmp);
	for (size_t i = 0; i < t->nr; i++) {
		if (n && t->r[n - 1].klen == t->r[i].klen &&
		    memcmp(t->r[n - 1].key, t->r[i].key, t->r[i].klen) == 0 &&
		    t->r[n - 1].mod == t->r[i].mod) {
			free(t->r[i].key);
			continue;
		}
		t->r[n++] = t->r[i];
	}
	t->nr = n;
	return n;
}

static json_t *cmp_new(const void *k, size_t kl, const void *end, size_t el,
		       const char *target, const char *result, int64_t v)
{
	json_t *c = json_object();
	int rc = c ? jset_b64(c, "key", k, kl) : -ENOMEM;

	if (rc == 0 && end)
		rc = jset_b64(c, "range_end", end, el);
	if (rc == 0)
		rc = jset(c, "target", json_string(target));
	if (rc == 0)
		rc = jset(c, "result", json_string(result));
	if (rc == 0)
		rc = jset(c, strcmp(target, "MOD") == 0 ? "mod_revision"
							 : "create_revision",
			  json_integer(v));
	if (rc < 0) {
		json_decref(c);
		return NULL;
	}
	return c;
}

static int arr_add(json_t *a, json_t *v)
{
	return v && json_array_append_new(a, v) == 0 ? 0 : -ENOMEM;
}

static int build_compares(struct et_engine *e, struct et_txn *t, json_t *cmp,
			  const unsigned char *mk, size_t mkl)
{
	unsigned char sk[64 + 1024];
	size_t skl = own_key(e, "seq", sk);
	int rc = arr_add(cmp, cmp_new(mk, mkl, NULL, 0, "CREATE", "EQUAL", 0));

	if (rc < 0)
		return rc;
	if (rs_unique(t) + t->nsp + 1 > ET_MAX_CMP)
		return arr_add(cmp, cmp_new(sk, skl, NULL, 0, "MOD", "LESS",
					    t->rev + 1));
	for (size_t i = 0; rc == 0 && i < t->nr; i++)
		rc = arr_add(cmp, cmp_new(t->r[i].key, t->r[i].klen, NULL, 0,
					  "MOD", "EQUAL", t->r[i].mod));
	for (size_t i = 0; rc == 0 && i < t->nsp; i++)
		rc = arr_add(cmp, cmp_new(t->sp[i].lo, t->sp[i].lolen,
					  t->sp[i].hi, t->sp[i].hilen, "MOD",
					  "LESS", t->rev + 1));
	return rc;
}

/* request_put {key, value, lease} or request_delete_range {key}. */
static json_t *op_new(const void *k, size_t kl, const void *v, size_t vl,
		      bool del, int64_t lease)
{
	json_t *o = json_object(), *r = json_object();
	int rc = o && r ? jset_b64(r, "key", k, kl) : -ENOMEM;

	if (rc == 0 && !del)
		rc = jset_b64(r, "value", v, vl);
	if (rc == 0 && lease)
		rc = jset(r, "lease", json_integer(lease));
	if (rc == 0 && json_object_set(o, del ? "request_delete_range"
					      : "request_put",
				       r) != 0)
		rc = -ENOMEM;
	json_decref(r);
	if (rc < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The lease for markers, granted or regranted when a third has passed. */
static int get_lease(struct et_engine *e, struct et_conn *c, int64_t *out)
{
	json_t *req;
	struct et_res res;
	int64_t now = now_ms(), id;
	int rc;

	pthread_mutex_lock(&e->lock);
	*out = e->lease;
	if (e->lease && now - e->lease_ms < ET_LEASE_TTL_S * 1000 / 3) {
		pthread_mutex_unlock(&e->lock);
		return 0;
	}
	pthread_mutex_unlock(&e->lock);
	req = json_pack("{s:I}", "TTL", (json_int_t)ET_LEASE_TTL_S);
	if (!req)
		return -ENOMEM;
	rc = et_json_post(e, c, "/v3/lease/grant", req, false,
			  now + ET_OUTAGE_MS, &res);
	json_decref(req);
	if (rc == ET_GRPC) {
		rc = grpc_rc(e, &res, "lease grant");
		json_decref(res.j);
		return rc;
	}
	if (rc < 0)
		return outage_rc(e, rc, &res, "lease grant");
	id = jint(res.j, "ID");
	json_decref(res.j);
	if (id <= 0)
		return log_fail(-EIO, "etcd '%s': lease grant gave no ID",
				e->base.desc);
	pthread_mutex_lock(&e->lock);
	e->lease = id;
	e->lease_ms = now;
	pthread_mutex_unlock(&e->lock);
	*out = id;
	return 0;
}

static void drop_lease(struct et_engine *e)
{
	pthread_mutex_lock(&e->lock);
	e->lease = 0;
	pthread_mutex_unlock(&e->lock);
}

/*
 * The commit's outcome is unknown: fence its marker @mk.  0 it applied,
 * -EAGAIN it never will, -EIO no answer in time.
 */
static int fence(struct et_engine *e, struct et_conn *c,
		 const unsigned char *mk, size_t mkl, int64_t lease)
{
	json_t *req = json_object(), *cmp = json_array(), *ok = json_array(),
	       *no = json_array(), *rg = json_object(), *rr = json_object();
	struct buf v = BUF_INIT;
	struct et_res res;
	const json_t *kv;
	int rc = req && cmp && ok && no && rg && rr ? 0 : -ENOMEM;

	if (rc == 0)
		rc = arr_add(cmp, cmp_new(mk, mkl, NULL, 0, "CREATE", "EQUAL",
					  0));
	if (rc == 0)
		rc = arr_add(ok, op_new(mk, mkl, "f", 1, false, lease));
	if (rc == 0)
		rc = jset_b64(rr, "key", mk, mkl);
	if (rc == 0 && json_object_set(rg, "request_range", rr) != 0)
		rc = -ENOMEM;
	if (rc == 0 && json_array_append(no, rg) != 0)
		rc = -ENOMEM;
	if (rc == 0 && (json_object_set(req, "compare", cmp) != 0 ||
			json_object_set(req, "success", ok) != 0 ||
			json_object_set(req, "failure", no) != 0))
		rc = -ENOMEM;
	if (rc == 0)
		rc = et_json_post(e, c, "/v3/kv/txn", req, false,
				  now_ms() + ET_OUTAGE_MS, &res);
	json_decref(req);
	json_decref(cmp);
	json_decref(ok);
	json_decref(no);
	json_decref(rg);
	json_decref(rr);
	if (rc == ET_GRPC) {
		rc = grpc_rc(e, &res, "commit check");
		json_decref(res.j);
		return rc == -EAGAIN ? -EIO : rc;
	}
	if (rc < 0)
		return outage_rc(e, rc, &res, "commit check");
	if (json_is_true(json_object_get(res.j, "succeeded"))) {
		json_decref(res.j);
		log_warn("etcd '%s': a commit got no answer; fenced, retrying",
			 e->base.desc);
		return -EAGAIN;
	}
	kv = json_array_get(
		json_object_get(
			json_object_get(json_array_get(json_object_get(
							       res.j,
							       "responses"),
						       0),
					"response_range"),
			"kvs"),
		0);
	rc = kv ? unb64(json_object_get(kv, "value"), &v) : -EIO;
	json_decref(res.j);
	if (rc == 0)
		rc = v.len == 1 && v.data[0] == 'c' ? 0 : -EAGAIN;
	else
		rc = log_fail(-EIO, "etcd '%s': bad commit marker",
			      e->base.desc);
	buf_release(&v);
	return rc;
}

static int build_ops(struct et_engine *e, struct et_txn *t, json_t *ops,
		     const unsigned char *mk, size_t mkl, int64_t lease)
{
	unsigned char *k = malloc(KEYBUF(e));
	unsigned char sk[64 + 1024];
	size_t skl = own_key(e, "seq", sk);
	int rc = k ? 0 : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < t->nw; i++) {
		const struct et_wr *w = &t->w[i];
		size_t kl = full_key(e, w->grp, w->data, w->klen, k);

		rc = arr_add(ops, op_new(k, kl, w->data + w->klen, w->vlen,
					 w->del, 0));
	}
	free(k);
	if (rc == 0)
		rc = arr_add(ops, op_new(mk, mkl, "c", 1, false, lease));
	if (rc == 0)
		rc = arr_add(ops, op_new(sk, skl, "", 0, false, 0));
	return rc;
}

/* Send the commit txn of @t; see the top comment. */
static int commit_send(struct et_engine *e, struct et_txn *t)
{
	json_t *req = json_object(), *cmp = json_array(), *ops = json_array();
	unsigned char mk[64 + 1024];
	char id[48];
	size_t mkl;
	struct et_res res;
	int64_t lease = 0;
	int rc = req && cmp && ops ? 0 : -ENOMEM;

	snprintf(id, sizeof(id), "txn/%016llx%016llx",
		 (unsigned long long)e->idbase,
		 (unsigned long long)atomic_fetch_add(&e->idseq, 1));
	mkl = own_key(e, id, mk);
	if (rc == 0)
		rc = get_lease(e, t->conn, &lease);
	if (rc == 0)
		rc = build_compares(e, t, cmp, mk, mkl);
	if (rc == 0)
		rc = build_ops(e, t, ops, mk, mkl, lease);
	if (rc == 0 && (json_object_set(req, "compare", cmp) != 0 ||
			json_object_set(req, "success", ops) != 0))
		rc = -ENOMEM;
	if (rc == 0)
		rc = et_json_post(e, t->conn, "/v3/kv/txn", req, true,
				  now_ms() + ET_OUTAGE_MS, &res);
	json_decref(req);
	json_decref(cmp);
	json_decref(ops);
	if (rc == ET_UNKNOWN)
		return fence(e, t->conn, mk, mkl, lease);
	if (rc == ET_GRPC) {
		if (res.code == G_NOTFOUND && strstr(res.msg, "lease")) {
			drop_lease(e); /* expired: regrant, run again */
			rc = -EAGAIN;
		} else {
			rc = grpc_rc(e, &res, "commit");
		}
		json_decref(res.j);
		return rc;
	}
	if (rc < 0)
		return rc == -ENOMEM ? rc : outage_rc(e, rc, &res, "commit");
	rc = json_is_true(json_object_get(res.j, "succeeded")) ? 0 : -EAGAIN;
	json_decref(res.j);
	return rc;
}

static int et_commit(struct kv_txn *bt)
{
	struct et_txn *t = et_txn(bt);
	int rc = 0;

	if (bt->rw && t->nw)
		rc = commit_send(et_eng(bt->eng), t);
	txn_end(t);
	return rc;
}

static void et_rollback(struct kv_txn *bt)
{
	txn_end(et_txn(bt));
}

/* ---- engine ---- */

static int et_wipe(struct kv_engine *base)
{
	struct et_engine *e = et_eng(base);
	unsigned char lo[64 + 1024], hi[64 + 1024];
	size_t lol = full_key(e, 1, NULL, 0, lo);
	size_t hil = kv_prefix_end(e->kp, e->kplen, hi);
	struct rm_conn *rc_conn;
	json_t *req = json_object();
	struct et_res res;
	int rc = req ? jset_b64(req, "key", lo, lol) : -ENOMEM;

	if (rc == 0)
		rc = jset_b64(req, "range_end", hi, hil);
	if (rc == 0)
		rc = rm_get(&e->pool, &rc_conn, NULL);
	if (rc < 0) {
		json_decref(req);
		return rc;
	}
	rc = et_json_post(e, (struct et_conn *)rc_conn, "/v3/kv/deleterange",
			  req, false, now_ms() + ET_OUTAGE_MS, &res);
	rm_put(&e->pool, rc_conn, true);
	json_decref(req);
	if (rc == ET_GRPC) {
		rc = grpc_rc(e, &res, "wipe");
		json_decref(res.j);
		return rc;
	}
	if (rc < 0)
		return outage_rc(e, rc, &res, "wipe");
	json_decref(res.j);
	return 0;
}

static void et_free(struct et_engine *e)
{
	rm_pool_destroy(&e->pool);
	for (size_t i = 0; i < e->nep; i++)
		free(e->ep[i]);
	free(e->ep);
	free(e->user);
	free(e->pass);
	free(e->kp);
	free(e->token);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

static void et_close(struct kv_engine *base)
{
	et_free(et_eng(base));
}

static const struct kv_engine_ops et_ops = {
	.scheme = "etcd",
	.begin = et_begin,
	.get = et_get,
	.put = et_put,
	.del = et_del,
	.scan = et_scan,
	.commit = et_commit,
	.rollback = et_rollback,
	.sync = NULL, /* a txn is answered once a quorum has it */
	.wipe = et_wipe,
	.close = et_close,
};

/* One member's base URL: scheme://host:port (IPv6 in brackets). */
static int add_member(struct et_engine *e, const char *scheme,
		      const char *host, size_t n, int port)
{
	const char *rb = memrchr(host, ']', n);
	bool v6 = !rb && memchr(host, ':', n) && port;
	bool has_port = rb ? memchr(rb, ':', n - (size_t)(rb - host)) != NULL
			   : memchr(host, ':', n) != NULL && !port;
	char **v = realloc(e->ep, (e->nep + 1) * sizeof(*v));
	int r;

	if (!v)
		return -ENOMEM;
	e->ep = v;
	if (has_port)
		r = asprintf(&v[e->nep], "%s://%.*s", scheme, (int)n, host);
	else
		r = asprintf(&v[e->nep], "%s://%s%.*s%s:%d", scheme,
			     v6 ? "[" : "", (int)n, host, v6 ? "]" : "",
			     port ? port : ET_PORT);
	if (r < 0)
		return -ENOMEM;
	e->nep++;
	return 0;
}

/* The members of the URL: u->host is one host or a "h1:p1,h2:p2" list. */
static int parse_members(struct et_engine *e, const struct url *u, bool tls)
{
	const char *scheme = tls ? "https" : "http";
	const char *p = u->host;
	int rc = 0;

	if (!strchr(p, ','))
		return add_member(e, scheme, p, strlen(p), u->port);
	while (rc == 0 && *p) {
		size_t n = strcspn(p, ",");

		rc = add_member(e, scheme, p, n, 0);
		p += n + (p[n] == ',');
	}
	return rc;
}

static int et_from_url(struct et_engine *e, const char *url)
{
	const char *why = "invalid";
	struct url u = {.path = NULL};
	int rc = url_parse(url, &u, &why);
	const char *path;
	char *pfx = NULL;
	size_t n;

	if (rc == 0 && strcmp(u.scheme, "etcd") != 0 &&
	    strcmp(u.scheme, "etcds") != 0) {
		why = "not an etcd:// URL";
		rc = -EINVAL;
	}
	if (rc == 0 && u.query) {
		why = "etcd:// takes no query parameters";
		rc = -EINVAL;
	}
	if (rc == 0 && u.pass && !u.user) {
		why = "a password needs a user";
		rc = -EINVAL;
	}
	if (rc == 0) {
		path = u.path[0] && strcmp(u.path, "/") ? u.path
							: ET_DEF_PREFIX;
		n = strlen(path);
		while (n > 1 && path[n - 1] == '/')
			n--;
		pfx = url_pct_decode(path, n);
		rc = pfx ? 0 : -EINVAL;
		if (rc < 0)
			why = "bad percent-escape in the prefix";
	}
	if (rc == 0 && strlen(pfx) > 512) {
		why = "prefix longer than 512 bytes";
		rc = -EINVAL;
	}
	if (rc == 0)
		rc = parse_members(e, &u, strcmp(u.scheme, "etcds") == 0);
	if (rc == -EINVAL && why[0] == 'i')
		why = "bad member list";
	if (rc < 0) {
		url_release(&u);
		free(pfx);
		if (rc == -ENOMEM)
			return rc;
		log_error("invalid metadata URL '%s': %s", e->base.desc, why);
		return -EINVAL;
	}
	e->kplen = strlen(pfx) + 1;
	e->kp = malloc(e->kplen);
	if (e->kp) {
		memcpy(e->kp, pfx, e->kplen - 1);
		e->kp[e->kplen - 1] = '/';
	}
	free(pfx);
	e->user = u.user;
	e->pass = u.pass;
	u.user = u.pass = NULL;
	url_release(&u);
	return e->kp ? 0 : -ENOMEM;
}

/* Check (or with @create, write) the schema key. */
static int check_schema(struct et_engine *e, struct et_conn *c, bool create)
{
	unsigned char k[64 + 1024];
	size_t kl = own_key(e, "schema", k);
	json_t *j = NULL, *req;
	const json_t *kv;
	struct buf v = BUF_INIT;
	struct et_res res;
	long have = -1;
	int rc;

	rc = et_range(e, c, k, kl, NULL, 0, 0, 0, false, &j);
	if (rc < 0)
		return rc;
	kv = json_array_get(json_object_get(j, "kvs"), 0);
	if (kv && unb64(json_object_get(kv, "value"), &v) == 0)
		have = strtol(v.data ? v.data : "", NULL, 10);
	json_decref(j);
	buf_release(&v);
	if (!kv && !create)
		return log_fail(-ENOENT,
				"no tessera metadata in '%s' (not formatted)",
				e->base.desc);
	if (!kv) {
		req = json_object();
		rc = req ? jset_b64(req, "key", k, kl) : -ENOMEM;
		if (rc == 0)
			rc = jset_b64(req, "value", "1", 1);
		if (rc == 0)
			rc = et_json_post(e, c, "/v3/kv/put", req, false,
					  now_ms() + ET_OUTAGE_MS, &res);
		json_decref(req);
		if (rc == ET_GRPC) {
			rc = grpc_rc(e, &res, "create schema");
			json_decref(res.j);
			return rc;
		}
		if (rc < 0)
			return outage_rc(e, rc, &res, "create schema");
		json_decref(res.j);
		return 0;
	}
	return rm_check_version(e->base.desc, have, ET_SCHEMA_VERSION);
}

/* The first contact: every member once, a short bound, one clear line. */
static int first_contact(struct et_engine *e, struct et_conn *c)
{
	unsigned char k[64 + 1024];
	size_t kl = own_key(e, "schema", k);
	json_t *req = json_object();
	struct et_res res;
	int rc = req ? jset_b64(req, "key", k, kl) : -ENOMEM;

	if (rc == 0)
		rc = jset(req, "keys_only", json_true());
	if (rc == 0)
		rc = et_json_post(e, c, "/v3/kv/range", req, false,
				  now_ms() + ET_OPEN_MS, &res);
	json_decref(req);
	if (rc == 0 || rc == ET_GRPC) {
		if (rc == ET_GRPC && res.code != G_UNAUTH &&
		    res.code != G_DENIED) {
			rc = grpc_rc(e, &res, "first request");
		} else if (rc == ET_GRPC) {
			log_error("cannot connect to '%s': %s", e->base.desc,
				  res.msg);
			rc = -EACCES;
		}
		json_decref(res.j);
		return rc;
	}
	if (rc == -ENOMEM)
		return rc;
	log_error("cannot connect to '%s': %s", e->base.desc, res.msg);
	return rc == -EIO ? -ECONNREFUSED : rc;
}

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int kv_etcd_open(const char *url, bool create, struct kv_engine **out)
{
	struct et_engine *e = calloc(1, sizeof(*e));
	struct rm_conn *conn = NULL;
	int rc;

	if (!e)
		return -ENOMEM;
	pthread_once(&lib_once, lib_init);
	e->base.ops = &et_ops;
	url_redact(url, e->base.desc, sizeof(e->base.desc));
	pthread_mutex_init(&e->lock, NULL);
	rm_pool_init(&e->pool, ET_POOL_MAX, &et_pool_ops, e);
	if (getrandom(&e->idbase, sizeof(e->idbase), 0) != sizeof(e->idbase))
		e->idbase = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
	rc = et_from_url(e, url);
	if (rc == 0)
		rc = rm_get(&e->pool, &conn, NULL);
	if (rc == 0 && e->user)
		rc = authenticate(e, (struct et_conn *)conn,
				  now_ms() + ET_OPEN_MS);
	if (rc == 0)
		rc = first_contact(e, (struct et_conn *)conn);
	if (rc == 0)
		rc = check_schema(e, (struct et_conn *)conn, create);
	if (conn)
		rm_put(&e->pool, conn, true);
	if (rc < 0) {
		et_free(e);
		return rc;
	}
	*out = &e->base;
	return 0;
}
