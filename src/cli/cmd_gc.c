/*
 * cmd_gc.c - `tessera gc VOLUME [--delete] [--json] [--threads N]
 * [--quiet]`: find objects nothing references (leaked), the deletion
 * queue (pending) and expired trash; with --delete, remove them.
 *
 * Order (DESIGN section 8), so that nothing live can look leaked:
 *   1. list the whole store under "NAME/chunks/" (every page; a failed
 *      page ends gc before anything is deleted).  Each key is parsed with
 *      chunk_key_parse; one that does not parse is reported, never
 *      deleted.  An object uploaded after the listing is simply not seen.
 *   2. read the metadata in ONE meta_view: every slice of every chunk
 *      record (all inodes, deleted-but-not-purged files too) and every
 *      slice in the deletion queue is referenced; clones share slice ids
 *      in their own chunk records and a checkpoint's slices stay in the
 *      queue (->kept) while it exists, so both count.  On Redis the view
 *      may answer -EAGAIN (something changed meanwhile): the pass is run
 *      again, a few times, then gc fails.  A corrupt record fails gc.
 *   3. an object is leaked when it is older than GC_MIN_AGE_S (younger
 *      ones may be uploads in flight, committed after the view) and its
 *      slice is referenced by nothing, or its (index, length) is not a
 *      block of the referenced slice (a failed upload's leftover).  An
 *      object whose time the store did not give is never leaked.
 *   4. --delete: leaked objects go on --threads threads.  Pending deletes
 *      and expired trash change metadata, which needs no live session
 *      (the mounts' workers do it) and, for a replicated volume, the
 *      lease: then meta_cleanup, and the queue is drained like the
 *      mounts' worker does (meta_pending_slices skips what a checkpoint
 *      keeps; meta_slices_deleted after the objects are gone).
 *
 * Replicated volumes: the local copy must be current, or slices written
 * by another host would look leaked.  Mounted on this host: the mount's
 * database is the live one; read it.  Else, when another host holds the
 * lease: read the local copy only if repl_local_check says it is not
 * behind the store, and leave metadata changes to that host.  Else open
 * for writing (cli_vol_open restores a stale copy and takes the lease).
 *
 * Hidden, for tests only: TESSERA_GC_MIN_AGE_S overrides the one-hour
 * age (S3 test servers cannot backdate an object).  Not in --help.
 */
#include "util/common.h"
#include "chunk/chunk.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "meta/meta.h"
#include "meta/meta_scan.h"
#include "object/object.h"
#include "replicate/repl.h"
#include "util/log.h"

#include <getopt.h>
#include <jansson.h>
#include <time.h>
#include <unistd.h>

#define GC_MIN_AGE_S 3600
#define GC_VIEW_TRIES 5
#define GC_SHOW_UNKNOWN 10
#define GC_PENDING_BATCH 1000

struct gc_args {
	bool del, json, quiet;
	uint64_t threads;
};

/* One listed block object. */
struct gc_obj {
	uint64_t id;
	uint32_t index, len;
	uint64_t size;
	int64_t mtime_ns;
};

struct gc_ref {
	uint64_t id;
	uint32_t size;
};

struct gc {
	struct gc_args a;
	struct meta_format f;
	const char *name;
	struct obj_store *store;
	int64_t now_ns, min_age_s;
	/* the listing */
	struct gc_obj *obj;
	size_t nobj, capobj;
	uint64_t unknown, unknown_bytes;
	char *unknown_keys[GC_SHOW_UNKNOWN];
	/* the metadata */
	struct gc_ref *ref;
	size_t nref, capref;
	uint64_t pending, pending_bytes, kept, kept_bytes;
	uint64_t trash_expired, delfiles, corrupt;
	/* findings */
	size_t *leak; /* indexes into obj */
	size_t nleak;
	uint64_t leak_bytes, bad_blocks, young, young_bytes, live, live_bytes;
	/* --delete */
	bool meta_writes;      /* pending deletes and trash are ours */
	const char *why_not;   /* ... or why not */
	uint64_t del_leaked, del_failed, del_pending, del_pending_objs;
};

static const struct option gc_opts[] = {
	{"delete", no_argument, NULL, 'd'},
	{"json", no_argument, NULL, 'j'},
	{"threads", required_argument, NULL, 't'},
	{"quiet", no_argument, NULL, 'q'},
	{NULL, 0, NULL, 0},
};

static int gc_opt(void *arg, int c, const char *optval)
{
	struct gc_args *a = arg;

	switch (c) {
	case 'd':
		a->del = true;
		return 0;
	case 'j':
		a->json = true;
		return 0;
	case 'q':
		a->quiet = true;
		return 0;
	case 't':
		if (cli_parse_uint(optval, &a->threads) < 0 ||
		    a->threads < 1 || a->threads > 64)
			return cli_usage_error("gc", "invalid --threads '%s' "
						     "(expected 1 to 64)",
					       optval);
		return 0;
	}
	return EXIT_USAGE;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	size_t c = *cap ? *cap * 2 : 1024;
	void *p;

	if (n < *cap)
		return 0;
	p = reallocarray(*v, c, size);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = c;
	return 0;
}

/* ---- 1. the listing --------------------------------------------------- */

static int list_one(void *arg, const struct obj_entry *e)
{
	struct gc *g = arg;
	struct gc_obj o = {.size = e->size, .mtime_ns = e->mtime_ns};

	if (chunk_key_parse(g->name, e->key, &o.id, &o.index, &o.len) < 0) {
		if (g->unknown < GC_SHOW_UNKNOWN &&
		    !(g->unknown_keys[g->unknown] = strdup(e->key)))
			return -ENOMEM;
		g->unknown++;
		g->unknown_bytes += e->size;
		return 0;
	}
	if (grow((void **)&g->obj, &g->capobj, g->nobj, sizeof(o)) < 0)
		return -ENOMEM;
	g->obj[g->nobj++] = o;
	return 0;
}

static int gc_list(struct gc *g)
{
	char prefix[300];

	chunk_key_prefix(g->name, prefix, sizeof(prefix));
	return cli_obj_list_all(g->store, prefix, g->a.quiet || g->a.json,
				list_one, g);
}

/* ---- 2. the metadata -------------------------------------------------- */

static int add_ref(struct gc *g, uint64_t id, uint32_t size)
{
	if (id == 0)
		return 0;
	if (grow((void **)&g->ref, &g->capref, g->nref, sizeof(*g->ref)) < 0)
		return -ENOMEM;
	g->ref[g->nref++] = (struct gc_ref){id, size};
	return 0;
}

static int chunk_one(void *arg, const struct meta_chunk *c)
{
	struct gc *g = arg;
	int rc = 0;

	if (c->corrupt) {
		g->corrupt++;
		log_error("corrupt chunk record of inode %llu (chunk %u): "
			  "nothing deleted",
			  (unsigned long long)c->ino, c->index);
		return -EIO;
	}
	for (size_t i = 0; rc == 0 && i < c->n; i++)
		rc = add_ref(g, c->s[i].id, c->s[i].size);
	return rc;
}

static int pending_one(void *arg, const struct meta_pending *p)
{
	struct gc *g = arg;

	if (p->corrupt) {
		g->corrupt++;
		log_error("corrupt deletion queue record (slice %llu): nothing "
			  "deleted",
			  (unsigned long long)p->id);
		return -EIO;
	}
	if (p->kept) {
		g->kept++;
		g->kept_bytes += p->size;
	} else {
		g->pending++;
		g->pending_bytes += p->size;
	}
	return add_ref(g, p->id, p->size);
}

static int trash_one(void *arg, const struct meta_entry *e)
{
	struct gc *g = arg;
	unsigned long long parent, ino;
	long long when;

	if (e->corrupt)
		return 0; /* meta_cleanup leaves what it cannot read */
	if (sscanf(e->name, "%llu-%llu-%lld-", &parent, &ino, &when) == 3 &&
	    when + (int64_t)g->f.trash_days * 86400 <=
		    g->now_ns / 1000000000LL)
		g->trash_expired++;
	return 0;
}

static int delfile_one(void *arg, uint64_t ino)
{
	UNUSED(ino);
	((struct gc *)arg)->delfiles++;
	return 0;
}

static int ref_cmp(const void *a, const void *b)
{
	const struct gc_ref *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return (x->size > y->size) - (x->size < y->size);
}

static void meta_reset(struct gc *g)
{
	g->nref = 0;
	g->pending = g->pending_bytes = g->kept = g->kept_bytes = 0;
	g->trash_expired = g->delfiles = g->corrupt = 0;
}

static int meta_pass(struct gc *g, struct meta *m)
{
	struct meta_view *v;
	int rc = meta_view_begin(m, &v);

	if (rc < 0)
		return rc;
	meta_reset(g);
	rc = meta_view_chunks(v, 0, chunk_one, g);
	if (rc == 0)
		rc = meta_view_pending(v, pending_one, g);
	if (rc == 0)
		rc = meta_view_index(v, META_TRASH_INO, trash_one, g);
	if (rc == 0)
		rc = meta_view_delfiles(v, delfile_one, g);
	if (rc < 0) {
		meta_view_end(v);
		return rc;
	}
	return meta_view_end(v);
}

static int gc_meta(struct gc *g, struct meta *m)
{
	size_t j = 0;
	int rc = -EAGAIN;

	for (int i = 0; i < GC_VIEW_TRIES && rc == -EAGAIN; i++)
		rc = meta_pass(g, m);
	if (rc == -EAGAIN)
		return log_fail(-EAGAIN, "the metadata of volume '%s' kept "
				"changing during gc (%d tries): nothing deleted",
				g->name, GC_VIEW_TRIES);
	if (rc < 0) {
		if (!g->corrupt)
			log_fail(rc, "cannot read the metadata of volume "
				 "'%s': nothing deleted",
				 g->name);
		return rc;
	}
	if (g->nref > 1) /* no refs: ref is NULL, which qsort forbids */
		qsort(g->ref, g->nref, sizeof(*g->ref), ref_cmp);
	for (size_t i = 0; i < g->nref; i++)
		if (j == 0 || ref_cmp(&g->ref[j - 1], &g->ref[i]) != 0)
			g->ref[j++] = g->ref[i];
	g->nref = j;
	return 0;
}

/* ---- 3. findings ------------------------------------------------------ */

/* First ref with @id, or NULL. */
static const struct gc_ref *find_ref(const struct gc *g, uint64_t id)
{
	size_t lo = 0, hi = g->nref;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (g->ref[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < g->nref && g->ref[lo].id == id ? &g->ref[lo] : NULL;
}

/* 1: a block of a referenced slice; 0: slice unknown; -1: not its block */
static int referenced(const struct gc *g, const struct gc_obj *o)
{
	const struct gc_ref *r = find_ref(g, o->id);
	uint32_t bs = g->f.block_size;

	if (!r)
		return 0;
	for (; r < g->ref + g->nref && r->id == o->id; r++)
		if (o->index < chunk_slice_blocks(r->size, bs) &&
		    o->len == chunk_slice_block_len(r->size, bs, o->index))
			return 1;
	return -1;
}

static int gc_judge(struct gc *g)
{
	int64_t min_age_ns = g->min_age_s * 1000000000LL;

	g->leak = calloc(g->nobj ? g->nobj : 1, sizeof(*g->leak));
	if (!g->leak)
		return -ENOMEM;
	for (size_t i = 0; i < g->nobj; i++) {
		const struct gc_obj *o = &g->obj[i];
		int r = referenced(g, o);

		if (r > 0) {
			g->live++;
			g->live_bytes += o->size;
		} else if (o->mtime_ns <= 0 ||
			   g->now_ns - o->mtime_ns < min_age_ns) {
			g->young++;
			g->young_bytes += o->size;
		} else {
			g->leak[g->nleak++] = i;
			g->leak_bytes += o->size;
			g->bad_blocks += r < 0;
		}
	}
	return 0;
}

/* ---- 4. deleting ------------------------------------------------------ */

static int leak_key(void *arg, size_t i, char *out, size_t n)
{
	struct gc *g = arg;
	const struct gc_obj *o = &g->obj[g->leak[i]];

	chunk_key(g->name, o->id, o->index, o->len, out, n);
	return 0;
}

static int gc_del_leaked(struct gc *g)
{
	struct cli_del d = {
		.store = g->store, .key = leak_key, .arg = g, .n = g->nleak,
		.threads = (int)g->a.threads, .what = "deleting leaked objects",
		.quiet = g->a.quiet || g->a.json,
	};
	int rc = cli_obj_delete(&d);

	g->del_leaked = d.deleted;
	g->del_failed += d.failed;
	return rc;
}

/* The blocks of a batch of queued slices, numbered in order. */
struct pend_keys {
	struct gc *g;
	const struct meta_delslice *s;
	size_t n;
	size_t *first; /* [i]: number of slice i's block 0; [n]: total */
};

static int pend_key(void *arg, size_t i, char *out, size_t n)
{
	struct pend_keys *p = arg;
	uint32_t bs = p->g->f.block_size;
	size_t lo = 0, hi = p->n;

	while (hi - lo > 1) { /* last slice whose first block <= i */
		size_t mid = lo + (hi - lo) / 2;

		if (p->first[mid] <= i)
			lo = mid;
		else
			hi = mid;
	}
	i -= p->first[lo];
	chunk_key(p->g->name, p->s[lo].id, (uint32_t)i,
		  chunk_slice_block_len(p->s[lo].size, bs, (uint32_t)i), out,
		  n);
	return 0;
}

/* One batch of the queue; *n_out: slices handed out (0: queue done). */
static int pend_batch(struct gc *g, struct meta *m, size_t *n_out)
{
	struct pend_keys p = {.g = g};
	struct meta_delslice *s = NULL;
	uint64_t *ids = NULL;
	int rc = meta_pending_slices(m, GC_PENDING_BATCH, &s, &p.n);

	*n_out = rc == 0 ? p.n : 0;
	if (rc < 0 || p.n == 0)
		goto out;
	p.s = s;
	p.first = calloc(p.n + 1, sizeof(*p.first));
	ids = calloc(p.n, sizeof(*ids));
	rc = p.first && ids ? 0 : -ENOMEM;
	for (size_t i = 0; rc == 0 && i < p.n; i++) {
		p.first[i + 1] = p.first[i] +
				 chunk_slice_blocks(s[i].size, g->f.block_size);
		ids[i] = s[i].id;
	}
	if (rc == 0) {
		struct cli_del d = {
			.store = g->store, .key = pend_key, .arg = &p,
			.n = p.first[p.n], .threads = (int)g->a.threads,
			.what = "deleting queued slices",
			.quiet = g->a.quiet || g->a.json,
		};

		rc = cli_obj_delete(&d);
		g->del_pending_objs += d.deleted;
		g->del_failed += d.failed;
	}
	/* forget the slices only once all their objects are gone */
	if (rc == 0)
		rc = meta_slices_deleted(m, ids, p.n);
	if (rc == 0)
		g->del_pending += p.n;
out:
	free(p.first);
	free(ids);
	free(s);
	return rc;
}

static int gc_del_pending(struct gc *g, struct meta *m)
{
	size_t n = 1;
	int rc = 0;

	if (g->trash_expired || g->delfiles) {
		rc = meta_cleanup(m);
		if (rc < 0)
			return log_fail(rc, "cannot expire the trash of volume "
					"'%s'",
					g->name);
	}
	/* each batch leaves the queue: bounded by its length */
	while (rc == 0 && n > 0)
		rc = pend_batch(g, m, &n);
	if (rc < 0)
		log_fail(rc, "cannot run the pending deletes of volume '%s'",
			 g->name);
	return rc;
}

/* ---- opening ---------------------------------------------------------- */

/* Live sessions (mounts) of the volume; -errno. */
static int live_sessions(struct meta *m)
{
	struct meta_session *s;
	size_t n;
	int live = 0, rc = meta_sessions(m, &s, &n);

	if (rc < 0)
		return log_fail(rc, "cannot read the sessions");
	for (size_t i = 0; i < n; i++)
		live += !s[i].stale;
	free(s);
	return live;
}

/*
 * Replicated, not writable here: usable only when the local copy is not
 * behind the store.
 */
static int check_local_current(struct cli_vol *cv, const char *name)
{
	struct repl_local st;
	int rc;

	if (!cv->store)
		return log_fail(-EIO, "volume '%s': cannot compare the local "
				"metadata with the object store: nothing deleted",
				name);
	rc = repl_local_check(cv->kv, cv->store, name, &st);
	if (rc < 0)
		return rc;
	if (st.state == REPL_LOCAL_BEHIND) {
		log_error("local metadata of volume '%s' is behind the object "
			  "store and another host holds its lease: run gc "
			  "there",
			  name);
		return -ESTALE;
	}
	return 0;
}

/* Someone else (not us) holds the lease of a replicated volume now. */
static bool lease_held(struct cli_vol *cv, const char *name)
{
	struct repl_holder h;
	int64_t until_ms;
	struct timespec ts;

	if (!cv->store || repl_lease_read(cv->store, name, &h, &until_ms) < 0)
		return false;
	clock_gettime(CLOCK_REALTIME, &ts);
	return until_ms > (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Open the volume as the top comment says; *m over it, g->meta_writes
 * and g->why_not set.  Prints one line on failure.
 */
static int gc_open(const char *arg, struct gc *g, struct cli_vol *cv,
		   struct meta **m)
{
	struct cli_open_opts o = {.quiet = true, .no_restore = true};
	bool here = false;
	int rc, fd = -1;

	rc = cli_vol_open(arg, &o, cv, &g->f);
	if (rc < 0)
		return rc;
	g->meta_writes = g->a.del;
	if (cv->replicated && cv->vol.embedded) {
		rc = cli_mount_lock(cv->vol.name, &fd);
		here = rc == -EBUSY;
		if (fd >= 0)
			close(fd);
		if (rc < 0 && rc != -EBUSY)
			return rc;
	}
	if (cv->replicated && (here || lease_held(cv, g->f.name))) {
		g->meta_writes = false;
		g->why_not = here ? "the volume is mounted on this host"
				  : "another host holds the volume's lease";
		rc = here ? 0 : check_local_current(cv, g->f.name);
	} else if (cv->replicated) {
		/* current copy and, for --delete, the lease */
		cli_vol_close(cv);
		o = (struct cli_open_opts){.write = g->a.del, .quiet = true};
		rc = cli_vol_open(arg, &o, cv, &g->f);
		if (rc == 0 && g->a.del)
			rc = cli_vol_wrap(cv);
		if (rc == 0 && !g->a.del)
			rc = check_local_current(cv, g->f.name);
	}
	if (rc == 0)
		rc = cli_vol_meta(cv, m);
	return rc;
}

/* ---- report ----------------------------------------------------------- */

static void put_u64(json_t *o, const char *key, uint64_t v)
{
	json_object_set_new(o, key, json_integer((json_int_t)v));
}

static void gc_print_json(const struct gc *g)
{
	const struct {
		const char *key;
		uint64_t v;
	} n[] = {
		{"objects", g->nobj},
		{"live_objects", g->live},
		{"live_bytes", g->live_bytes},
		{"leaked_objects", g->nleak},
		{"leaked_bytes", g->leak_bytes},
		{"leaked_stray_blocks", g->bad_blocks},
		{"young_objects", g->young},
		{"young_bytes", g->young_bytes},
		{"pending_deletes", g->pending},
		{"pending_bytes", g->pending_bytes},
		{"kept_by_checkpoints", g->kept},
		{"kept_bytes", g->kept_bytes},
		{"expired_trash", g->trash_expired},
		{"unpurged_files", g->delfiles},
		{"unknown_keys", g->unknown},
		{"min_age_s", (uint64_t)g->min_age_s},
		{"deleted_leaked_objects", g->del_leaked},
		{"deleted_pending_slices", g->del_pending},
		{"deleted_pending_objects", g->del_pending_objs},
		{"failed_deletes", g->del_failed},
	};
	json_t *o = json_object(), *u = json_array();
	char *s;

	json_object_set_new(o, "volume", json_string(g->name));
	for (size_t i = 0; i < ARRAY_SIZE(n); i++)
		put_u64(o, n[i].key, n[i].v);
	for (uint64_t i = 0; i < g->unknown && i < GC_SHOW_UNKNOWN; i++)
		json_array_append_new(u, json_string(g->unknown_keys[i]));
	json_object_set_new(o, "unknown_key_names", u);
	json_object_set_new(o, "delete", json_boolean(g->a.del));
	json_object_set_new(o, "metadata_writes",
			    json_boolean(g->a.del && g->meta_writes));
	if (g->a.del && !g->meta_writes && g->why_not)
		json_object_set_new(o, "metadata_writes_skipped",
				    json_string(g->why_not));
	s = json_dumps(o, JSON_INDENT(2));
	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(o);
}

static void gc_print(const struct gc *g)
{
	printf("volume '%s': %zu objects, %llu live, %llu younger than %llds "
	       "(kept)\n",
	       g->name, g->nobj, (unsigned long long)g->live,
	       (unsigned long long)g->young, (long long)g->min_age_s);
	printf("leaked: %zu objects, %llu bytes (%llu stray blocks of live "
	       "slices)\n",
	       g->nleak, (unsigned long long)g->leak_bytes,
	       (unsigned long long)g->bad_blocks);
	printf("pending deletes: %llu slices, %llu bytes; kept by "
	       "checkpoints: %llu slices, %llu bytes\n",
	       (unsigned long long)g->pending,
	       (unsigned long long)g->pending_bytes,
	       (unsigned long long)g->kept, (unsigned long long)g->kept_bytes);
	printf("expired trash: %llu entries; files to purge: %llu\n",
	       (unsigned long long)g->trash_expired,
	       (unsigned long long)g->delfiles);
	for (uint64_t i = 0; i < g->unknown && i < GC_SHOW_UNKNOWN; i++)
		printf("unknown key (kept): %s\n", g->unknown_keys[i]);
	if (g->unknown > GC_SHOW_UNKNOWN)
		printf("... %llu unknown keys in all\n",
		       (unsigned long long)g->unknown);
	if (!g->a.del) {
		printf("dry run: nothing deleted (use --delete)\n");
		return;
	}
	printf("deleted %llu leaked objects", (unsigned long long)g->del_leaked);
	if (g->meta_writes)
		printf(", %llu queued slices (%llu objects)\n",
		       (unsigned long long)g->del_pending,
		       (unsigned long long)g->del_pending_objs);
	else
		printf("; pending deletes and trash left to the mount(s): %s\n",
		       g->why_not);
}

static void gc_release(struct gc *g)
{
	for (uint64_t i = 0; i < g->unknown && i < GC_SHOW_UNKNOWN; i++)
		free(g->unknown_keys[i]);
	free(g->obj);
	free(g->ref);
	free(g->leak);
	obj_close(g->store);
}

static int64_t min_age_s(void)
{
	const char *e = getenv("TESSERA_GC_MIN_AGE_S"); /* tests only */
	uint64_t v;

	if (e && cli_parse_uint(e, &v) == 0 && v <= GC_MIN_AGE_S)
		return (int64_t)v;
	return GC_MIN_AGE_S;
}

static int gc_run(struct gc *g, struct meta *m)
{
	int rc, live;

	/* the listing first: anything committed after it is not in it */
	rc = gc_list(g);
	if (rc == 0)
		rc = gc_meta(g, m);
	if (rc == 0)
		rc = gc_judge(g);
	if (rc < 0 || !g->a.del)
		return rc;
	if (g->meta_writes) {
		live = live_sessions(m);
		if (live < 0)
			return live;
		if (live > 0) {
			g->meta_writes = false;
			g->why_not = "the volume has live sessions";
		}
	}
	rc = gc_del_leaked(g);
	if (rc == 0 && g->meta_writes)
		rc = gc_del_pending(g, m);
	if (rc < 0 && g->del_failed)
		log_error("gc of volume '%s': %llu deletes failed",
			  g->name, (unsigned long long)g->del_failed);
	return rc;
}

int cmd_gc(int argc, char **argv)
{
	struct gc g = {.a = {.threads = 8}};
	struct cli_vol cv;
	struct meta *m = NULL;
	const char *pos[1];
	int npos, rc;

	rc = cli_getopt("gc", argc, argv, NULL, gc_opts, gc_opt, &g.a, pos, 1,
			&npos);
	if (rc)
		return rc;
	if (npos < 1)
		return cli_usage_error("gc", "missing volume");
	g.min_age_s = min_age_s();
	rc = gc_open(pos[0], &g, &cv, &m);
	if (rc == 0) {
		g.name = g.f.name;
		rc = obj_open(cli_vol_storage(&cv, &g.f), false, &g.store);
	}
	if (rc == 0 && g.f.block_size == 0)
		rc = log_fail(-EINVAL, "volume '%s' has no block size",
			      g.f.name);
	g.now_ns = now_ns();
	if (rc == 0)
		rc = gc_run(&g, m);
	if (rc == 0 && g.a.json)
		gc_print_json(&g);
	else if (rc == 0)
		gc_print(&g);
	meta_close(m);
	cli_vol_close(&cv);
	gc_release(&g);
	return rc < 0 ? EXIT_ERR : EXIT_OK;
}
