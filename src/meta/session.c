/*
 * session.c - sessions of a volume: registration, the heartbeat thread,
 * listing, and the cleaning of stale sessions (DESIGN section 4).
 *
 * Record: KV_SESSION sid(8) -> JSON {host, pid, machine_id, boot_id, pid_ns,
 * pid_start (util/procid.h), mountpoint, version, start, heartbeat,
 * heartbeat_ms, expiry_ms}.  Ids come from the counter
 * nextSession; 0 is "no session" (tools, tests) and is never cleaned.
 *
 * Life of a session:
 *   start     one txn takes an id and writes the record; stale sessions
 *             of others are cleaned (before the mount serves); then the
 *             heartbeat thread starts;
 *   beat      every heartbeat_ms: rewrite the record with the time now,
 *             then clean stale sessions of others;
 *   end       (meta_close) stop the thread, delete the inodes it sustained
 *             (all closed by then), release its locks, delete the record.
 *
 * Stale: silent for longer than the expiry the session itself recorded
 * (META_SESSION_EXPIRY heartbeats), judged with the cleaner's wall clock;
 * hosts are assumed to keep their clocks within seconds of each other.
 * Or dead: the record names a process of the cleaner's host (same host,
 * boot and pid namespace) that is gone (procid_check), so a mount
 * restarted after kill -9 frees the dead one's locks and unlinked inodes
 * at once instead of a minute later (an application's SQLite on the
 * volume failed with "locking protocol" meanwhile: the dead session still
 * held fcntl locks of its -shm file).  Only records with pid_start (this
 * version on) are judged so; a dead process does not write again, so a
 * record found dead stays dead while its heartbeat is unchanged.
 *
 * Cleaning a stale session S, by any other session:
 *   1. one txn deletes S's record if it is still stale (so two cleaners do
 *      not both count it, and a session that came back is spared);
 *   2. a sweep drops lock entries and deletes sustained inodes of every
 *      session that has no record: S, and any left behind by a cleaner that
 *      died between 1 and 2.  Each removal re-checks, inside its own txn,
 *      that the session record is absent, so a session registered after the
 *      sweep listed the sessions is never touched.
 * The sweep also runs at a session's start and every SWEEP_EVERY
 * beats.  A session that was cleaned while alive (paused for longer than
 * its expiry) finds its record gone at the next beat: it writes it again
 * under the same id and warns; its locks were released meanwhile.
 *
 * Threads: m->sid and m->sess are written by meta_session_start before the
 * thread starts and only read afterwards.  hb_lock guards hb_stop.
 */
#include "util/common.h"
#include <jansson.h>
#include <time.h>
#include <unistd.h>

#include "meta/meta_int.h"
#include "util/log.h"

#define SWEEP_EVERY 10
#define SESS_PAGE 256
#define DEFAULT_EXPIRY_MS (META_HEARTBEAT_MS * META_SESSION_EXPIRY)

/* ---- the record ---- */

static char *session_json(const struct meta_session *s)
{
	json_t *o = json_object();
	char *out;

	if (!o)
		return NULL;
	if (procid_to_json(&s->proc, o) < 0) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "mountpoint", json_string(s->mountpoint));
	json_object_set_new(o, "version", json_string(s->version));
	json_object_set_new(o, "start", json_integer(s->start_ns));
	json_object_set_new(o, "heartbeat", json_integer(s->heartbeat_ns));
	json_object_set_new(o, "heartbeat_ms", json_integer(s->heartbeat_ms));
	json_object_set_new(o, "expiry_ms", json_integer(s->expiry_ms));
	out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return out;
}

static void jstr_copy(json_t *o, const char *key, char *dst, size_t n)
{
	const char *s = json_string_value(json_object_get(o, key));

	snprintf(dst, n, "%s", s ? s : "");
}

static int64_t jint(json_t *o, const char *key, int64_t def)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

/* Decode a record; a corrupt one reads as a session long dead. */
static void session_parse(uint64_t sid, const void *v, size_t len,
			  struct meta_session *s)
{
	json_t *o = json_loadb(v, len, 0, NULL);

	memset(s, 0, sizeof(*s));
	s->sid = sid;
	s->expiry_ms = DEFAULT_EXPIRY_MS;
	if (!json_is_object(o)) {
		log_warn("corrupt record of session %llu",
			 (unsigned long long)sid);
		json_decref(o);
		return;
	}
	procid_from_json(o, &s->proc);
	jstr_copy(o, "mountpoint", s->mountpoint, sizeof(s->mountpoint));
	jstr_copy(o, "version", s->version, sizeof(s->version));
	s->start_ns = jint(o, "start", 0);
	s->heartbeat_ns = jint(o, "heartbeat", 0);
	s->heartbeat_ms = (uint32_t)jint(o, "heartbeat_ms", 0);
	s->expiry_ms = (uint32_t)jint(o, "expiry_ms", DEFAULT_EXPIRY_MS);
	json_decref(o);
}

static bool session_silent(const struct meta_session *s, int64_t now_ns)
{
	return now_ns - s->heartbeat_ns > (int64_t)s->expiry_ms * 1000000LL;
}

/* A process of this host that is gone; records without pid_start: never. */
static bool session_dead(const struct meta_session *s)
{
	return s->proc.pid_start && procid_check(&s->proc, NULL) == PROCID_GONE;
}

int meta_session_exists(struct kv_txn *t, uint64_t sid)
{
	struct buf v = BUF_INIT;
	unsigned char k[8];
	int rc;

	key_ino(k, sid);
	rc = kv_get(t, KV_SESSION, k, sizeof(k), &v);
	buf_release(&v);
	if (rc == -ENOENT)
		return 0;
	return rc < 0 ? rc : 1;
}

static int session_put(struct kv_txn *t, const struct meta_session *s)
{
	unsigned char k[8];
	char *json = session_json(s);
	int rc;

	if (!json)
		return -ENOMEM;
	key_ino(k, s->sid);
	rc = kv_put(t, KV_SESSION, k, sizeof(k), json, strlen(json));
	free(json);
	return rc;
}

/* ---- start, beat, end ---- */

struct reg_arg {
	struct meta_session s;
};

static int register_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct reg_arg *a = arg;
	int64_t next;
	int rc;

	(void)m;
	rc = kv_incr(t, "nextSession", 1, &next);
	if (rc < 0)
		return rc;
	/* volumes formatted with nextSession 0: skip sid 0 in this txn (a
	 * -EAGAIN would roll the increment back and loop forever) */
	if (next == 1)
		rc = kv_incr(t, "nextSession", 1, &next);
	if (rc < 0)
		return rc;
	a->s.sid = (uint64_t)next - 1;
	return session_put(t, &a->s);
}

struct beat_arg {
	struct meta_session s;
	bool revived;
};

static int beat_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct beat_arg *a = arg;
	int rc;

	(void)m;
	rc = meta_session_exists(t, a->s.sid);
	if (rc < 0)
		return rc;
	a->revived = rc == 0;
	return session_put(t, &a->s);
}

static int session_beat(struct meta *m, bool *warned)
{
	struct beat_arg a;
	int rc;

	a.s = m->sess;
	a.s.heartbeat_ns = meta_now_ns();
	rc = meta_txn(m, true, beat_fn, &a);
	if (rc < 0) {
		if (!*warned)
			log_warn("cannot refresh session %llu of '%s': %s",
				 (unsigned long long)m->sid, m->desc,
				 strerror(-rc));
		*warned = true;
		return rc;
	}
	if (*warned)
		log_info("session %llu of '%s' refreshed again",
			 (unsigned long long)m->sid, m->desc);
	*warned = false;
	if (a.revived)
		log_warn("session %llu was cleaned up by another client as "
			 "stale (its locks were released); registered again",
			 (unsigned long long)m->sid);
	return 0;
}

static int clean_sessions(struct meta *m, bool force_sweep, size_t *cleaned);

static void *hb_main(void *arg)
{
	struct meta *m = arg;
	bool warned = false, stop = false;
	unsigned beats = 0;
	struct timespec ts;

	/* meta_session_start wrote the record and cleaned: wait first */
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += m->sess.heartbeat_ms / 1000;
		ts.tv_nsec += (long)(m->sess.heartbeat_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&m->hb_lock);
		while (!m->hb_stop &&
		       pthread_cond_timedwait(&m->hb_cond, &m->hb_lock, &ts) !=
			       ETIMEDOUT)
			;
		stop = m->hb_stop;
		pthread_mutex_unlock(&m->hb_lock);
		if (stop)
			return NULL;
		beats++;
		/* metadata down: skip cleaning, try again next beat */
		if (session_beat(m, &warned) == 0)
			clean_sessions(m, beats % SWEEP_EVERY == 0, NULL);
	}
}

int meta_session_start(struct meta *m, const struct meta_session_conf *c)
{
	struct reg_arg a;
	pthread_condattr_t ca;
	size_t gone = 0;
	int rc;

	if (m->sid || m->hb_started)
		return -EINVAL;
	memset(&a, 0, sizeof(a));
	procid_self(&a.s.proc);
	snprintf(a.s.mountpoint, sizeof(a.s.mountpoint), "%s",
		 c && c->mountpoint ? c->mountpoint : "");
	snprintf(a.s.version, sizeof(a.s.version), "%s", TESSERA_VERSION);
	a.s.start_ns = a.s.heartbeat_ns = meta_now_ns();
	a.s.heartbeat_ms =
		c && c->heartbeat_ms ? c->heartbeat_ms : META_HEARTBEAT_MS;
	a.s.expiry_ms = a.s.heartbeat_ms * META_SESSION_EXPIRY;
	rc = meta_txn(m, true, register_fn, &a);
	if (rc < 0)
		return log_fail(rc, "cannot register a session in '%s'",
				m->desc);
	m->sess = a.s;
	m->sid = a.s.sid;
	/* a crashed mount of this host: free its locks before we serve,
	 * and count the usage its last second of deltas took along */
	rc = clean_sessions(m, true, &gone);
	if (rc < 0)
		log_warn("cannot clean the stale sessions of '%s' (%s): the "
			 "heartbeat tries again",
			 m->desc, strerror(-rc));
	else if (gone > 0)
		meta_usage_recount(m); /* logged; fsck --repair recounts */
	pthread_mutex_init(&m->hb_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->hb_cond, &ca);
	pthread_condattr_destroy(&ca);
	m->hb_stop = false;
	rc = -pthread_create(&m->hb_thread, NULL, hb_main, m);
	if (rc < 0) {
		log_fail(rc, "cannot start the heartbeat thread");
		meta_session_end(m); /* deletes the record again */
		return rc;
	}
	m->hb_started = true;
	log_info("session %llu of '%s' started (heartbeat %u ms)",
		 (unsigned long long)m->sid, m->desc, m->sess.heartbeat_ms);
	return 0;
}

uint64_t meta_session_id(const struct meta *m)
{
	return m->sid;
}

/* ---- sustained inodes of a session ---- */

struct sus_page {
	uint64_t sid;	      /* != 0: only this session's (prefix) */
	const uint64_t *live; /* else: sessions not in live[] */
	size_t nlive;
	unsigned char start[16];
	size_t seen;
	size_t n;
	uint64_t pair[SESS_PAGE][2]; /* sid, ino */
};

static bool in_sorted(const uint64_t *v, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v[mid] == x)
			return true;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int sus_one(void *arg, const void *key, size_t klen, const void *val,
		   size_t vlen)
{
	struct sus_page *p = arg;
	uint64_t sid, ino;

	(void)val;
	(void)vlen;
	if (klen != 16)
		return log_fail(-EIO, "corrupt sustained-inode record");
	sid = get_be64(key);
	ino = get_be64((const unsigned char *)key + 8);
	p->seen++;
	/* resume after this key */
	put_be64(p->start, sid);
	put_be64(p->start + 8, ino + 1);
	if (ino == UINT64_MAX)
		put_be64(p->start, sid + 1);
	if (p->sid || (sid != 0 && !in_sorted(p->live, p->nlive, sid))) {
		p->pair[p->n][0] = sid;
		p->pair[p->n][1] = ino;
		p->n++;
	}
	return 0;
}

static int sus_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct sus_page *p = arg;
	unsigned char pre[8];

	(void)m;
	p->n = p->seen = 0;
	key_ino(pre, p->sid);
	return kv_scan(t, KV_SUSTAINED, pre, p->sid ? sizeof(pre) : 0,
		       p->start, sizeof(p->start), SESS_PAGE, sus_one, p);
}

/*
 * Delete the sustained inodes of session @sid (own, at its end), or of
 * every session outside @live that has no record (@sid 0).  *n counts.
 */
static int sustained_pass(struct meta *m, uint64_t sid, const uint64_t *live,
			  size_t nlive, size_t *n)
{
	struct sus_page *p = calloc(1, sizeof(*p));
	int rc;

	if (!p)
		return -ENOMEM;
	p->sid = sid;
	p->live = live;
	p->nlive = nlive;
	put_be64(p->start, sid);
	do {
		rc = meta_txn(m, false, sus_fn, p);
		for (size_t i = 0; rc == 0 && i < p->n; i++) {
			rc = meta_unsustain(m, p->pair[i][0], p->pair[i][1],
					    sid != 0);
			(*n)++;
		}
	} while (rc == 0 && p->seen == SESS_PAGE);
	free(p);
	return rc;
}

static int del_session_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	unsigned char k[8];

	(void)m;
	key_ino(k, *(uint64_t *)arg);
	return kv_del(t, KV_SESSION, k, sizeof(k));
}

void meta_session_end(struct meta *m)
{
	uint64_t sid = m->sid;
	size_t n = 0;
	int rc;

	if (!sid)
		return;
	if (m->hb_started) {
		pthread_mutex_lock(&m->hb_lock);
		m->hb_stop = true;
		pthread_cond_signal(&m->hb_cond);
		pthread_mutex_unlock(&m->hb_lock);
		pthread_join(m->hb_thread, NULL);
		m->hb_started = false;
	}
	pthread_cond_destroy(&m->hb_cond);
	pthread_mutex_destroy(&m->hb_lock);
	rc = sustained_pass(m, sid, NULL, 0, &n);
	if (rc == 0)
		rc = meta_locks_drop_session(m);
	if (rc == 0)
		rc = meta_txn(m, true, del_session_fn, &sid);
	if (rc < 0)
		log_warn("cannot end session %llu of '%s' cleanly (%s); "
			 "another client will clean it up",
			 (unsigned long long)sid, m->desc, strerror(-rc));
	m->sid = 0;
}

/* ---- listing and cleaning ---- */

struct list_arg {
	struct meta_session *v;
	size_t n;
	size_t cap;
	int err;
};

static int list_one(void *arg, const void *key, size_t klen, const void *val,
		    size_t vlen)
{
	struct list_arg *a = arg;

	if (klen != 8)
		return log_fail(-EIO, "corrupt session record");
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 8;
		struct meta_session *v = realloc(a->v, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		a->v = v;
		a->cap = nc;
	}
	session_parse(get_be64(key), val, vlen, &a->v[a->n++]);
	return 0;
}

static int list_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct list_arg *a = arg;

	(void)m;
	a->n = 0;
	return kv_scan(t, KV_SESSION, NULL, 0, NULL, 0, 0, list_one, a);
}

static int list_sessions(struct meta *m, struct meta_session **out,
			 size_t *n)
{
	struct list_arg a = {NULL, 0, 0, 0};
	int64_t now;
	int rc = meta_txn(m, false, list_fn, &a);

	if (rc < 0) {
		free(a.v);
		return rc;
	}
	now = meta_now_ns();
	for (size_t i = 0; i < a.n; i++) {
		a.v[i].dead = a.v[i].sid != m->sid && session_dead(&a.v[i]);
		a.v[i].stale = a.v[i].dead || session_silent(&a.v[i], now);
	}
	*out = a.v;
	*n = a.n;
	return 0;
}

struct count_arg {
	uint64_t sid;
	uint64_t n;
};

static int count_one(void *arg, const void *key, size_t klen, const void *val,
		     size_t vlen)
{
	(void)key;
	(void)klen;
	(void)val;
	(void)vlen;
	((struct count_arg *)arg)->n++;
	return 0;
}

static int count_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct count_arg *a = arg;
	unsigned char pre[8];

	(void)m;
	a->n = 0;
	key_ino(pre, a->sid);
	return kv_scan(t, KV_SUSTAINED, pre, sizeof(pre), NULL, 0, 0,
		       count_one, a);
}

int meta_sessions(struct meta *m, struct meta_session **out, size_t *n)
{
	struct meta_session *v;
	size_t nv;
	int rc = list_sessions(m, &v, &nv);

	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < nv; i++) {
		struct count_arg c = {v[i].sid, 0};

		rc = meta_txn(m, false, count_fn, &c);
		v[i].sustained = c.n;
	}
	if (rc == 0)
		rc = meta_locks_count(m, v, nv);
	if (rc < 0) {
		free(v);
		return rc;
	}
	*out = v;
	*n = nv;
	return 0;
}

struct clean_arg {
	uint64_t sid;
	const struct meta_session *seen; /* as listed, judged outside */
	bool deleted;
	struct meta_session s;
};

/*
 * Delete session record @sid if it is still stale: silent, or the dead
 * process listed (its heartbeat unchanged since; judged before the txn,
 * which must not wait for a process).
 */
static int clean_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct clean_arg *a = arg;
	struct buf v = BUF_INIT;
	unsigned char k[8];
	int rc;

	(void)m;
	a->deleted = false;
	key_ino(k, a->sid);
	rc = kv_get(t, KV_SESSION, k, sizeof(k), &v);
	if (rc == 0) {
		session_parse(a->sid, v.data, v.len, &a->s);
		a->s.dead = a->seen->dead &&
			    a->s.heartbeat_ns == a->seen->heartbeat_ns &&
			    a->s.proc.pid == a->seen->proc.pid &&
			    a->s.proc.pid_start == a->seen->proc.pid_start;
		if (a->s.dead || session_silent(&a->s, meta_now_ns())) {
			rc = kv_del(t, KV_SESSION, k, sizeof(k));
			a->deleted = rc == 0;
		}
	}
	buf_release(&v);
	return rc == -ENOENT ? 0 : rc;
}

static int sweep(struct meta *m, const uint64_t *live, size_t nlive)
{
	size_t locks = 0, inodes = 0;
	int rc = meta_locks_sweep(m, live, nlive, &locks);

	if (rc == 0)
		rc = sustained_pass(m, 0, live, nlive, &inodes);
	if (locks || inodes)
		log_info("released %zu locks and %zu unlinked inodes of "
			 "dead sessions of '%s'",
			 locks, inodes, m->desc);
	return rc;
}

static int clean_sessions(struct meta *m, bool force_sweep, size_t *cleaned)
{
	struct meta_session *v;
	uint64_t *live;
	size_t nv, nlive = 0, gone = 0;
	int rc = list_sessions(m, &v, &nv);

	if (rc < 0)
		return rc;
	live = calloc(nv ? nv : 1, sizeof(*live));
	if (!live) {
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; rc == 0 && i < nv; i++) {
		struct clean_arg a = {v[i].sid, &v[i], false, {0}};

		if (v[i].sid == m->sid || !v[i].stale) {
			live[nlive++] = v[i].sid;
			continue;
		}
		rc = meta_txn(m, true, clean_fn, &a);
		if (rc == 0 && a.deleted && a.s.dead) {
			gone++;
			log_info("cleaned session %llu of dead mount pid %ld of "
				 "this host ('%s')",
				 (unsigned long long)a.sid, a.s.proc.pid,
				 a.s.mountpoint);
		} else if (rc == 0 && a.deleted) {
			gone++;
			log_info("cleaned stale session %llu (%s pid %ld '%s'), "
				 "silent for %lld s",
				 (unsigned long long)a.sid, a.s.proc.host,
				 a.s.proc.pid, a.s.mountpoint,
				 (long long)((meta_now_ns() - a.s.heartbeat_ns) /
					     1000000000LL));
		} else if (rc == 0) {
			live[nlive++] = v[i].sid; /* it came back */
		}
	}
	/* sids are listed in key order, which is numeric order */
	if (rc == 0 && (gone || force_sweep))
		rc = sweep(m, live, nlive);
	if (cleaned)
		*cleaned = gone;
	free(live);
	free(v);
	return rc;
}

int meta_clean_sessions(struct meta *m, size_t *cleaned)
{
	return clean_sessions(m, true, cleaned);
}
