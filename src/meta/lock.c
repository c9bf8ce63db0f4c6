/*
 * lock.c - flock(2) and fcntl(2) locks in metadata, shared by every session
 * of a volume, so that they exclude each other across mounts.
 *
 * Records (meta_int.h): one per inode and kind.  KV_FLOCK ino -> entries
 * {sid, owner, type}; KV_PLOCK ino -> ranges {sid, owner, pid, type, start,
 * end}.  A lock call is one read-write txn on that one record: read it,
 * look for a conflict, write it back (deleted when empty).  Transactions
 * are serializable, so two mounts racing for one range cannot both win,
 * and lock calls on different inodes never conflict.
 *
 * Invariants of an inode's fcntl ranges (as in the kernel): ranges of one
 * owner never overlap, and adjacent ranges of one owner with the same type
 * are merged, so getlk answers and unlock splits behave like Linux.  Ends
 * are inclusive; UINT64_MAX means "to the end, however long".  An owner is
 * the pair (session id, kernel lock owner).
 *
 * A conflict is answered by the txn function with a positive code, so
 * meta_txn commits (what the attempt wrote, e.g. the dropped half of a
 * flock conversion) instead of retrying; the wrapper turns it into
 * -EAGAIN.  Entries of dead sessions are removed by meta_locks_sweep,
 * which session.c runs after deleting stale session records; each removal
 * re-checks inside its txn that the session record is really gone.
 */
#include "util/common.h"
#include "meta/meta_int.h"
#include "util/log.h"

#include <fcntl.h>

#define FLK_LEN 17
#define PLK_LEN 37
#define LK_RD 1
#define LK_WR 2
#define SWEEP_PAGE 256
#define LOCK_CONFLICT 1

struct plk {
	uint64_t sid;
	uint64_t owner;
	uint32_t pid;
	int type; /* F_RDLCK or F_WRLCK */
	uint64_t start;
	uint64_t end;
};

/* A growable array of ranges. */
struct plks {
	struct plk *v;
	size_t n;
	size_t cap;
};

static void plks_release(struct plks *a)
{
	free(a->v);
	a->v = NULL;
	a->n = a->cap = 0;
}

static int plks_push(struct plks *a, const struct plk *p)
{
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 8;
		struct plk *v = realloc(a->v, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		a->v = v;
		a->cap = nc;
	}
	a->v[a->n++] = *p;
	return 0;
}

static int type_decode(unsigned char c)
{
	return c == LK_WR ? F_WRLCK : c == LK_RD ? F_RDLCK : -1;
}

static unsigned char type_encode(int type)
{
	return type == F_WRLCK ? LK_WR : LK_RD;
}

static bool conflicts(int t1, int t2)
{
	return t1 == F_WRLCK || t2 == F_WRLCK;
}

static bool overlaps(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return s1 <= e2 && s2 <= e1;
}

/* Do [s1,e1] and [s2,e2] overlap or touch? */
static bool touches(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	if (overlaps(s1, e1, s2, e2))
		return true;
	return (e1 != UINT64_MAX && e1 + 1 == s2) ||
	       (e2 != UINT64_MAX && e2 + 1 == s1);
}

/* ---- fcntl records ---- */

static int plks_load(struct kv_txn *t, uint64_t ino, struct plks *a)
{
	struct buf v = BUF_INIT;
	unsigned char k[8];
	int rc;

	key_ino(k, ino);
	rc = kv_get(t, KV_PLOCK, k, sizeof(k), &v);
	if (rc == -ENOENT) {
		rc = 0;
		goto out;
	}
	if (rc < 0)
		goto out;
	if (v.len % PLK_LEN) {
		rc = log_fail(-EIO, "corrupt lock record of inode %llu",
			      (unsigned long long)ino);
		goto out;
	}
	for (size_t off = 0; rc == 0 && off < v.len; off += PLK_LEN) {
		const unsigned char *e = (const unsigned char *)v.data + off;
		struct plk p;

		p.sid = get_be64(e);
		p.owner = get_be64(e + 8);
		p.pid = get_be32(e + 16);
		p.type = type_decode(e[20]);
		p.start = get_be64(e + 21);
		p.end = get_be64(e + 29);
		if (p.type < 0 || p.start > p.end)
			rc = log_fail(-EIO, "corrupt lock record of inode %llu",
				      (unsigned long long)ino);
		else
			rc = plks_push(a, &p);
	}
out:
	buf_release(&v);
	return rc;
}

static int plks_store(struct kv_txn *t, uint64_t ino, const struct plks *a)
{
	unsigned char k[8], *v;
	int rc;

	key_ino(k, ino);
	if (a->n == 0)
		return kv_del(t, KV_PLOCK, k, sizeof(k));
	v = malloc(a->n * PLK_LEN);
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < a->n; i++) {
		unsigned char *e = v + i * PLK_LEN;
		const struct plk *p = &a->v[i];

		put_be64(e, p->sid);
		put_be64(e + 8, p->owner);
		put_be32(e + 16, p->pid);
		e[20] = type_encode(p->type);
		put_be64(e + 21, p->start);
		put_be64(e + 29, p->end);
	}
	rc = kv_put(t, KV_PLOCK, k, sizeof(k), v, a->n * PLK_LEN);
	free(v);
	return rc;
}

/* The first range of another owner that @lk conflicts with, or NULL. */
static const struct plk *plk_conflict(const struct plks *a, uint64_t sid,
				      uint64_t owner, int type, uint64_t start,
				      uint64_t end)
{
	for (size_t i = 0; i < a->n; i++) {
		const struct plk *p = &a->v[i];

		if ((p->sid != sid || p->owner != owner) &&
		    overlaps(p->start, p->end, start, end) &&
		    conflicts(p->type, type))
			return p;
	}
	return NULL;
}

/*
 * Set (sid, owner)'s state on [start, end] to @type (F_UNLCK removes),
 * splitting and merging its ranges, into a new array *out.
 */
static int plk_apply(const struct plks *a, const struct plk *nw_in,
		     struct plks *out)
{
	struct plk nw = *nw_in, part;
	int rc = 0;

	for (size_t i = 0; i < a->n && rc == 0; i++) {
		const struct plk *o = &a->v[i];

		if (o->sid != nw.sid || o->owner != nw.owner ||
		    !touches(o->start, o->end, nw.start, nw.end)) {
			rc = plks_push(out, o);
			continue;
		}
		if (o->type == nw_in->type) {
			/* merge into the new range */
			nw.start = MIN(nw.start, o->start);
			nw.end = MAX(nw.end, o->end);
			continue;
		}
		if (!overlaps(o->start, o->end, nw_in->start, nw_in->end)) {
			rc = plks_push(out, o); /* just adjacent */
			continue;
		}
		if (o->start < nw_in->start) {
			part = *o;
			part.end = nw_in->start - 1;
			rc = plks_push(out, &part);
		}
		if (rc == 0 && o->end > nw_in->end) {
			part = *o;
			part.start = nw_in->end + 1;
			rc = plks_push(out, &part);
		}
	}
	if (rc == 0 && nw_in->type != F_UNLCK)
		rc = plks_push(out, &nw);
	return rc;
}

static bool same_plks(const struct plks *a, const struct plks *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct plk *x = &a->v[i], *y = &b->v[i];

		if (x->sid != y->sid || x->owner != y->owner ||
		    x->type != y->type || x->start != y->start ||
		    x->end != y->end || x->pid != y->pid)
			return false;
	}
	return true;
}

static int check_plock(const struct meta_plock *lk, bool unlock_ok)
{
	if (lk->start > lk->end)
		return -EINVAL;
	if (lk->type != F_RDLCK && lk->type != F_WRLCK &&
	    !(unlock_ok && lk->type == F_UNLCK))
		return -EINVAL;
	return 0;
}

struct plock_arg {
	uint64_t ino;
	uint64_t owner;
	struct meta_plock lk;
};

static int getlk_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct plock_arg *a = arg;
	struct plks cur = {0};
	const struct plk *p;
	int rc = plks_load(t, a->ino, &cur);

	if (rc < 0)
		goto out;
	p = plk_conflict(&cur, m->sid, a->owner, a->lk.type, a->lk.start,
			 a->lk.end);
	if (p) {
		a->lk.type = p->type;
		a->lk.start = p->start;
		a->lk.end = p->end;
		a->lk.pid = p->pid;
		a->lk.sid = p->sid;
	} else {
		a->lk.type = F_UNLCK;
	}
out:
	plks_release(&cur);
	return rc;
}

int meta_getlk(struct meta *m, uint64_t ino, uint64_t owner,
	       struct meta_plock *lk)
{
	struct plock_arg a = {ino, owner, *lk};
	int rc = check_plock(lk, false);

	if (rc == 0)
		rc = meta_txn(m, false, getlk_fn, &a);
	if (rc == 0)
		*lk = a.lk;
	return rc;
}

static int setlk_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct plock_arg *a = arg;
	struct plks cur = {0}, next = {0};
	struct plk nw = {m->sid,      a->owner,	    a->lk.pid,
			 a->lk.type,  a->lk.start,  a->lk.end};
	int rc = plks_load(t, a->ino, &cur);

	if (rc == 0 && nw.type != F_UNLCK &&
	    plk_conflict(&cur, nw.sid, nw.owner, nw.type, nw.start, nw.end))
		rc = LOCK_CONFLICT;
	if (rc == 0)
		rc = plk_apply(&cur, &nw, &next);
	if (rc == 0 && !same_plks(&cur, &next))
		rc = plks_store(t, a->ino, &next);
	plks_release(&cur);
	plks_release(&next);
	return rc;
}

int meta_setlk(struct meta *m, uint64_t ino, uint64_t owner,
	       const struct meta_plock *lk)
{
	struct plock_arg a = {ino, owner, *lk};
	int rc = check_plock(lk, true);

	if (rc == 0)
		rc = meta_txn(m, true, setlk_fn, &a);
	return rc == LOCK_CONFLICT ? -EAGAIN : rc;
}

/* ---- flock records ---- */

struct flk {
	uint64_t sid;
	uint64_t owner;
	int type;
};

/* Raw record @v of entries @esz bytes each, sid first in every entry. */
static int rec_load(struct kv_txn *t, int grp, uint64_t ino, size_t esz,
		    struct buf *v)
{
	unsigned char k[8];
	int rc;

	key_ino(k, ino);
	rc = kv_get(t, grp, k, sizeof(k), v);
	if (rc == -ENOENT) {
		buf_reset(v);
		return 0;
	}
	if (rc == 0 && v->len % esz)
		rc = log_fail(-EIO, "corrupt lock record of inode %llu",
			      (unsigned long long)ino);
	return rc;
}

static int rec_store(struct kv_txn *t, int grp, uint64_t ino,
		     const struct buf *v)
{
	unsigned char k[8];

	key_ino(k, ino);
	if (v->len == 0)
		return kv_del(t, grp, k, sizeof(k));
	return kv_put(t, grp, k, sizeof(k), v->data, v->len);
}

static void flk_get(const struct buf *v, size_t i, struct flk *f)
{
	const unsigned char *e = (const unsigned char *)v->data + i * FLK_LEN;

	f->sid = get_be64(e);
	f->owner = get_be64(e + 8);
	f->type = type_decode(e[16]);
}

/* Remove entry @i of @esz bytes from @v. */
static void rec_remove(struct buf *v, size_t i, size_t esz)
{
	memmove(v->data + i * esz, v->data + (i + 1) * esz,
		v->len - (i + 1) * esz);
	v->len -= esz;
}

struct flock_arg {
	uint64_t ino;
	uint64_t owner;
	int type;
	bool other; /* out: a conflicting lock of another session */
};

static int flock_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct flock_arg *a = arg;
	struct buf v = BUF_INIT;
	unsigned char e[FLK_LEN];
	bool changed = false, busy = false;

	a->other = false;
	struct flk f;
	size_t n;
	int rc = rec_load(t, KV_FLOCK, a->ino, FLK_LEN, &v);

	n = v.len / FLK_LEN;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		flk_get(&v, i, &f);
		if (f.sid != m->sid || f.owner != a->owner) {
			if (conflicts(f.type, a->type)) {
				busy = true;
				a->other = a->other || f.sid != m->sid;
			}
			continue;
		}
		if (f.type == a->type)
			goto out; /* already held */
		/* a conversion drops the old lock first, as Linux does */
		rec_remove(&v, i--, FLK_LEN);
		n--;
		changed = true;
	}
	if (rc < 0)
		goto out;
	if (a->type != F_UNLCK && busy) {
		rc = LOCK_CONFLICT;
	} else if (a->type != F_UNLCK) {
		put_be64(e, m->sid);
		put_be64(e + 8, a->owner);
		e[16] = type_encode(a->type);
		rc = buf_append(&v, e, sizeof(e));
		changed = true;
	}
	if (rc >= 0 && changed) {
		int r = rec_store(t, KV_FLOCK, a->ino, &v);

		rc = r < 0 ? r : rc;
	}
out:
	buf_release(&v);
	return rc;
}

int meta_flock(struct meta *m, uint64_t ino, uint64_t owner, int type,
	       bool *own)
{
	struct flock_arg a = {ino, owner, type, false};
	int rc;

	if (type != F_RDLCK && type != F_WRLCK && type != F_UNLCK)
		return -EINVAL;
	rc = meta_txn(m, true, flock_fn, &a);
	if (own)
		*own = rc == LOCK_CONFLICT && !a.other;
	return rc == LOCK_CONFLICT ? -EAGAIN : rc;
}

/* ---- dropping entries ---- */

/* Which entries a drop removes. */
enum lock_filter_kind {
	LF_OWNER,   /* the entries of (sid, owner) */
	LF_SESSION, /* every entry of session sid */
	LF_DEAD,    /* entries of sessions not in live[] and without record */
};

struct lock_filter {
	enum lock_filter_kind kind;
	uint64_t sid;
	uint64_t owner;
	const uint64_t *live; /* LF_DEAD: sorted */
	size_t nlive;
};

static bool sid_live(const struct lock_filter *f, uint64_t sid)
{
	size_t lo = 0, hi = f->nlive;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (f->live[mid] == sid)
			return true;
		if (f->live[mid] < sid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Does entry (@sid, @owner) match, judging by the filter alone? */
static bool filter_match(const struct lock_filter *f, uint64_t sid,
			 uint64_t owner)
{
	switch (f->kind) {
	case LF_OWNER:
		return sid == f->sid && owner == f->owner;
	case LF_SESSION:
		return sid == f->sid;
	case LF_DEAD:
		break;
	}
	return sid != 0 && !sid_live(f, sid);
}

struct drop_arg {
	int grp;
	uint64_t ino;
	const struct lock_filter *f;
	size_t dropped;
};

static int drop_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct drop_arg *a = arg;
	size_t esz = a->grp == KV_FLOCK ? FLK_LEN : PLK_LEN;
	struct buf v = BUF_INIT;
	int rc = rec_load(t, a->grp, a->ino, esz, &v);

	(void)m;
	a->dropped = 0;
	for (size_t i = 0; rc == 0 && i < v.len / esz; i++) {
		const unsigned char *e = (unsigned char *)v.data + i * esz;
		uint64_t sid = get_be64(e), owner = get_be64(e + 8);

		if (!filter_match(a->f, sid, owner))
			continue;
		if (a->f->kind == LF_DEAD) {
			/* it may have registered since the caller looked */
			int r = meta_session_exists(t, sid);

			if (r < 0)
				rc = r;
			if (r != 0)
				continue;
		}
		rec_remove(&v, i--, esz);
		a->dropped++;
	}
	if (rc >= 0 && a->dropped)
		rc = rec_store(t, a->grp, a->ino, &v);
	buf_release(&v);
	return rc < 0 ? rc : 0;
}

static int drop_entries(struct meta *m, int grp, uint64_t ino,
			const struct lock_filter *f, size_t *n)
{
	struct drop_arg a = {grp, ino, f, 0};
	int rc = meta_txn(m, true, drop_fn, &a);

	if (rc == 0 && n)
		*n += a.dropped;
	return rc;
}

int meta_unlock_owner(struct meta *m, uint64_t ino, uint64_t owner,
		      bool posix, bool flock)
{
	struct lock_filter f = {LF_OWNER, m->sid, owner, NULL, 0};
	int rc = 0;

	if (posix)
		rc = drop_entries(m, KV_PLOCK, ino, &f, NULL);
	if (flock && rc == 0)
		rc = drop_entries(m, KV_FLOCK, ino, &f, NULL);
	return rc;
}

/* ---- whole-group passes: sweep, session drop, counting ---- */

struct scan_page {
	size_t esz;
	const struct lock_filter *f; /* collect inos with matching entries */
	struct meta_session *s;	     /* or count entries per session */
	size_t ns;
	uint64_t next; /* ino to resume from */
	size_t seen;
	uint64_t ino[SWEEP_PAGE];
	size_t n;
};

static int page_one(void *arg, const void *key, size_t klen, const void *val,
		    size_t vlen)
{
	struct scan_page *p = arg;
	const unsigned char *v = val;
	bool hit = false;

	if (klen != 8 || vlen % p->esz)
		return log_fail(-EIO, "corrupt lock record");
	p->next = get_be64(key) + 1;
	p->seen++;
	for (size_t off = 0; off < vlen; off += p->esz) {
		uint64_t sid = get_be64(v + off), owner = get_be64(v + off + 8);

		if (p->f)
			hit = hit || filter_match(p->f, sid, owner);
		for (size_t i = 0; i < p->ns; i++)
			p->s[i].locks += p->s[i].sid == sid;
	}
	if (hit)
		p->ino[p->n++] = get_be64(key);
	return 0;
}

static int page_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct scan_page *p = arg;
	int grp = p->esz == FLK_LEN ? KV_FLOCK : KV_PLOCK;
	unsigned char start[8];

	(void)m;
	p->n = 0;
	p->seen = 0;
	for (size_t i = 0; i < p->ns; i++)
		p->s[i].locks = 0;
	key_ino(start, p->next);
	return kv_scan(t, grp, NULL, 0, start, sizeof(start), SWEEP_PAGE,
		       page_one, p);
}

/*
 * Visit group @grp a page at a time: drop the entries @f matches (when @f)
 * or add entry counts to @s (when @s).
 */
static int lock_pass(struct meta *m, int grp, const struct lock_filter *f,
		     struct meta_session *s, size_t ns, size_t *dropped)
{
	struct scan_page *p = calloc(1, sizeof(*p));
	uint64_t *acc = NULL;
	int rc;

	if (!p)
		return -ENOMEM;
	if (ns && !(acc = calloc(ns, sizeof(*acc)))) {
		free(p);
		return -ENOMEM;
	}
	p->esz = grp == KV_FLOCK ? FLK_LEN : PLK_LEN;
	p->f = f;
	p->s = s;
	p->ns = ns;
	do {
		rc = meta_txn(m, false, page_fn, p);
		for (size_t i = 0; rc == 0 && i < ns; i++)
			acc[i] += s[i].locks;
		for (size_t i = 0; rc == 0 && i < p->n; i++)
			rc = drop_entries(m, grp, p->ino[i], f, dropped);
	} while (rc == 0 && p->seen == SWEEP_PAGE);
	for (size_t i = 0; i < ns; i++)
		s[i].locks = acc[i];
	free(acc);
	free(p);
	return rc;
}

int meta_locks_sweep(struct meta *m, const uint64_t *live, size_t nlive,
		     size_t *n)
{
	struct lock_filter f = {LF_DEAD, 0, 0, live, nlive};
	int rc;

	*n = 0;
	rc = lock_pass(m, KV_FLOCK, &f, NULL, 0, n);
	if (rc == 0)
		rc = lock_pass(m, KV_PLOCK, &f, NULL, 0, n);
	return rc;
}

int meta_locks_drop_session(struct meta *m)
{
	struct lock_filter f = {LF_SESSION, m->sid, 0, NULL, 0};
	size_t n = 0;
	int rc;

	if (!m->sid)
		return 0;
	rc = lock_pass(m, KV_FLOCK, &f, NULL, 0, &n);
	if (rc == 0)
		rc = lock_pass(m, KV_PLOCK, &f, NULL, 0, &n);
	return rc;
}

int meta_locks_count(struct meta *m, struct meta_session *s, size_t n)
{
	uint64_t *fl = calloc(n ? n : 1, sizeof(*fl));
	int rc;

	if (!fl)
		return -ENOMEM;
	rc = lock_pass(m, KV_FLOCK, NULL, s, n, NULL);
	for (size_t i = 0; rc == 0 && i < n; i++)
		fl[i] = s[i].locks;
	if (rc == 0)
		rc = lock_pass(m, KV_PLOCK, NULL, s, n, NULL);
	for (size_t i = 0; rc == 0 && i < n; i++)
		s[i].locks += fl[i];
	free(fl);
	return rc;
}
