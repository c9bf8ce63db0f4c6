/*
 * repl_lease.c - the lease object NAME/meta/lease: which process may write
 * (replicate) a volume, until when.
 *
 * Content: JSON {"version":1, "host":..., "pid":..., "nonce":"16 hex",
 * "expires_ms": wall-clock ms, and the rest of the holder's identity
 * (util/procid.h: "machine_id", "boot_id", "pid_ns", "pid_start")}.  A
 * holder is (host, pid, nonce).  The writer renews it every ttl/3
 * (repl_engine.c); a lease whose expiry has passed is free for anyone, so
 * a crashed writer blocks others for at most ttl.  Expiry uses wall clocks:
 * hosts are assumed to agree within a few seconds (NTP); a larger skew
 * shortens or stretches the lease by that much.
 *
 * A lease held by a process of this host that is gone (procid_check:
 * killed, crashed, a zombie not yet reaped, its pid reused since, or the
 * host rebooted) is free at once, so a crashed mount is restarted without
 * waiting for ttl and without --force.  A lease written before the
 * identity fields existed is judged by host name and pid alone.  Such a
 * holder wrote nothing after it died, so this is not a takeover
 * (*displaced stays false: no slice-id gap).
 *
 * Race window: object stores here have no conditional put.  acquire reads
 * the lease, then writes its own, then reads it back; two hosts acting in
 * the same GET+PUT round trip can both pass.  The one whose PUT came first
 * sees the other's lease at its next renewal (within ttl/3), logs at ERROR
 * and stops writing (its commits fail with -EROFS), so at most ttl/3 of
 * double writing can happen (into different generations, unless one
 * database file was copied to both hosts).  A renewal that finds the lease gone
 * also counts as lost: someone took it and released it since.
 *
 * Any thread; no state.
 */
#include "util/common.h"
#include "replicate/repl_int.h"
#include "util/log.h"

#include <jansson.h>
#include <sys/random.h>
#include <time.h>

#define LEASE_TTL_MS 30000

struct lease {
	struct procid proc;
	uint64_t nonce;
	int64_t expires_ms;
};

void repl_holder_init(struct repl_holder *h)
{
	memset(h, 0, sizeof(*h));
	procid_self(&h->proc);
	if (getrandom(&h->nonce, sizeof(h->nonce), 0) != sizeof(h->nonce))
		h->nonce = (uint64_t)repl_mono_ms() ^ (uint64_t)h->proc.pid;
}

static bool lease_is(const struct lease *l, const struct repl_holder *h)
{
	return strcmp(l->proc.host, h->proc.host) == 0 &&
	       l->proc.pid == h->proc.pid && l->nonce == h->nonce;
}

/*
 * A holder of this host whose process is gone; *why says how.  Our own
 * process, under another nonce, is alive (two wrappers in one process).
 */
static bool lease_holder_dead(const struct lease *l,
			      const struct repl_holder *h, const char **why)
{
	if (lease_is(l, h))
		return false;
	return procid_check(&l->proc, why) == PROCID_GONE;
}

/* Parse a lease object; -EBADMSG when it is not one. */
static int lease_parse(const struct buf *b, struct lease *l)
{
	json_t *j = json_loadb(b->data, b->len, 0, NULL);
	const char *host = NULL, *nonce = NULL;
	json_int_t pid = 0, exp = 0;
	int rc = -EBADMSG;

	memset(l, 0, sizeof(*l));
	if (!j)
		return rc;
	if (json_unpack(j, "{s:s, s:I, s:s, s:I}", "host", &host, "pid", &pid,
			"nonce", &nonce, "expires_ms", &exp) == 0 &&
	    strlen(nonce) == 16) {
		procid_from_json(j, &l->proc);
		l->nonce = strtoull(nonce, NULL, 16);
		l->expires_ms = (int64_t)exp;
		rc = 0;
	}
	json_decref(j);
	return rc;
}

/* Read the lease: 0, -ENOENT (none), -EBADMSG (unreadable), -errno. */
static int lease_read(struct obj_store *s, const char *key, struct lease *l)
{
	struct buf b = BUF_INIT;
	int rc = obj_get(s, key, 0, OBJ_TO_END, &b);

	if (rc == 0)
		rc = lease_parse(&b, l);
	buf_release(&b);
	return rc;
}

static int lease_write(struct obj_store *s, const char *key,
		       const struct repl_holder *h)
{
	uint32_t ttl = h->ttl_ms ? h->ttl_ms : LEASE_TTL_MS;
	char nonce[17];
	json_t *j;
	char *text;
	int rc;

	snprintf(nonce, sizeof(nonce), "%016llx", (unsigned long long)h->nonce);
	j = json_pack("{s:i, s:s, s:I}", "version", 1, "nonce", nonce,
		      "expires_ms", (json_int_t)(repl_now_ms() + ttl));
	if (j && procid_to_json(&h->proc, j) < 0) {
		json_decref(j);
		j = NULL;
	}
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return -ENOMEM;
	rc = repl_put_durable(s, key, text, strlen(text));
	free(text);
	return rc;
}

static void lease_when(const struct lease *l, char *out, size_t n)
{
	time_t t = (time_t)(l->expires_ms / 1000);
	struct tm tm;

	if (!localtime_r(&t, &tm) || !strftime(out, n, "%F %T", &tm))
		snprintf(out, n, "?");
}

int repl_lease_acquire(struct obj_store *store, const char *volname,
		       const struct repl_holder *h, bool force)
{
	return repl_lease_take(store, volname, h, force, NULL);
}

int repl_lease_take(struct obj_store *store, const char *volname,
		    const struct repl_holder *h, bool force, bool *displaced)
{
	char key[OBJ_KEY_MAX + 1], when[64];
	const char *why = "";
	struct lease l;
	bool other = false;
	int rc = repl_key_lease(key, sizeof(key), volname);

	if (displaced)
		*displaced = false;
	if (rc < 0)
		return rc;
	rc = lease_read(store, key, &l);
	if (rc == 0 && lease_holder_dead(&l, h, &why)) {
		log_warn("volume '%s': taking over the lease of dead mount pid "
			 "%ld (%s)",
			 volname, l.proc.pid, why);
	} else if (rc == 0 && !lease_is(&l, h) &&
		   l.expires_ms > repl_now_ms()) {
		lease_when(&l, when, sizeof(when));
		if (!force) {
			log_error("volume '%s' is in use by %s (pid %ld, lease "
				  "until %s): use --force to take it over",
				  volname, l.proc.host, l.proc.pid, when);
			return -EBUSY;
		}
		log_warn("taking the lease of volume '%s' from %s (pid %ld)",
			 volname, l.proc.host, l.proc.pid);
		other = true;
	} else if (rc == 0 && !lease_is(&l, h)) {
		other = true; /* expired: may still run somewhere */
	} else if (rc == -EBADMSG) {
		log_warn("lease '%s' is unreadable: replacing it", key);
	} else if (rc < 0 && rc != -ENOENT) {
		return log_fail(rc,
				"cannot read the lease of volume '%s' in "
				"'%s'",
				volname, obj_describe(store));
	}
	rc = lease_write(store, key, h);
	if (rc < 0)
		return log_fail(rc,
				"cannot write the lease of volume '%s' in "
				"'%s'",
				volname, obj_describe(store));
	/* Narrow the race: someone who wrote just after us wins. */
	rc = lease_read(store, key, &l);
	if (rc == 0 && !lease_is(&l, h)) {
		log_error("volume '%s' was taken by %s (pid %ld) at the same "
			  "time",
			  volname, l.proc.host, l.proc.pid);
		return -EBUSY;
	}
	if (displaced)
		*displaced = other;
	return 0;
}

/* Read the lease and check @h holds it: 0, -EBUSY (logged) or -errno. */
static int lease_mine(struct obj_store *store, const char *key,
		      const char *volname, const struct repl_holder *h)
{
	struct lease l;
	int rc = lease_read(store, key, &l);

	if (rc == -ENOENT || rc == -EBADMSG) {
		log_error("lease of volume '%s' was taken by another host "
			  "(lease %s): this mount stops writing",
			  volname, rc == -ENOENT ? "gone" : "unreadable");
		return -EBUSY;
	}
	if (rc < 0)
		return rc;
	if (!lease_is(&l, h)) {
		log_error("lease of volume '%s' was taken by %s (pid %ld): "
			  "this mount stops writing",
			  volname, l.proc.host, l.proc.pid);
		return -EBUSY;
	}
	return 0;
}

int repl_lease_check(struct obj_store *store, const char *volname,
		     const struct repl_holder *h)
{
	char key[OBJ_KEY_MAX + 1];
	int rc = repl_key_lease(key, sizeof(key), volname);

	if (rc < 0)
		return rc;
	return lease_mine(store, key, volname, h);
}

int repl_lease_renew(struct obj_store *store, const char *volname,
		     const struct repl_holder *h)
{
	char key[OBJ_KEY_MAX + 1];
	int rc = repl_key_lease(key, sizeof(key), volname);

	if (rc == 0)
		rc = lease_mine(store, key, volname, h);
	if (rc < 0)
		return rc;
	return lease_write(store, key, h);
}

int repl_lease_read(struct obj_store *store, const char *volname,
		    struct repl_holder *h, int64_t *expires_ms)
{
	char key[OBJ_KEY_MAX + 1];
	struct lease l;
	int rc = repl_key_lease(key, sizeof(key), volname);

	if (rc == 0)
		rc = lease_read(store, key, &l);
	if (rc < 0)
		return rc;
	memset(h, 0, sizeof(*h));
	h->proc = l.proc;
	h->nonce = l.nonce;
	*expires_ms = l.expires_ms;
	return 0;
}

int repl_lease_release(struct obj_store *store, const char *volname,
		       const struct repl_holder *h)
{
	char key[OBJ_KEY_MAX + 1];
	struct lease l;
	int rc = repl_key_lease(key, sizeof(key), volname);

	if (rc < 0)
		return rc;
	rc = lease_read(store, key, &l);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0 || !lease_is(&l, h))
		return rc < 0 ? rc : 0;
	rc = obj_del(store, key);
	if (rc < 0)
		log_warn("cannot release the lease of volume '%s': %s", volname,
			 strerror(-rc));
	return rc;
}
